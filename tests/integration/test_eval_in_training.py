"""The recipe's `eval:` section: generation metrics every N steps and at the end, as events and in the result."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from test_train_tasks import base_recipe, run_inline, tiny_lm, toy_data  # noqa: E402,F401

from ftbench.core.events import read_events  # noqa: E402


@pytest.mark.slow  # four minutes on 2 busy cores
def test_generation_eval_during_sft_reports_scores_as_events_and_result(workspace, tiny_lm, toy_data):  # noqa: F811
    recipe = base_recipe(
        tiny_lm,
        toy_data["alpaca"],
        eval={
            "generate": True,
            "label_pattern": r"Sentiment: (\w+)",
            "every_steps": 10,
            "max_new_tokens": 6,
            "max_prompts": 6,
        },
    )
    job_dir, result = run_inline(workspace, recipe)
    events = [e for e in read_events(job_dir / "events.jsonl", ["eval"]) if "gen_label_accuracy" in e]
    assert [e["step"] for e in events] == [10, 20, 30]  # every 10 steps; the end (30) is not scored twice
    final = result["generation"]
    assert final["step"] == 30 and final["examples"] == 6
    assert events[-1]["gen_label_accuracy"] == final["label_accuracy"] and events[-1]["gen_rougeL"] == final["rougeL"]
    assert 0.0 < final["chrf"] <= 100.0 and final["length"]["max"] > 0  # answers were generated and scored


def test_generation_eval_is_off_by_default(workspace, tiny_lm, toy_data):  # noqa: F811
    recipe = base_recipe(tiny_lm, toy_data["alpaca"], training={"max_steps": 4, "eval_steps": 4, "save_steps": 4})
    job_dir, result = run_inline(workspace, recipe)
    assert "generation" not in result
    assert not [e for e in read_events(job_dir / "events.jsonl", ["eval"]) if any(k.startswith("gen_") for k in e)]
