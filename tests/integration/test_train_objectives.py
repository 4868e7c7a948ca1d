"""ORPO, SimPO, KTO and GRPO through TRL, end to end on the tiny random llama, in-process (a few steps each).

Each run goes through ftbench's job target, so besides the objective's own numbers it checks what the monitor
reads: `train` events with step and max_steps, and `objective` events with the objective's key metric.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from test_train_tasks import base_recipe, losses, run_inline, tiny_lm, toy_preferences, write_jsonl  # noqa: F401

from ftbench.core.events import read_events
from ftbench.core.objectives import REWARD_CODE_ENV

STEPS = 6  # logged at steps 1, 2, 4, 6


def short(recipe: dict[str, Any], steps: int = STEPS, **training: Any) -> dict[str, Any]:
    recipe["data"]["eval_split"] = 0.0
    recipe["training"].update(
        {"max_steps": steps, "logging_steps": 2, "eval_steps": None, "save_steps": steps, **training}
    )
    return recipe


def monitor_data(
    job_dir: Path, objective: str, metric: str, steps: int = STEPS, every: int = 2
) -> list[dict[str, Any]]:
    """The events the monitor folds: every train event has step/max_steps, every objective event its metric."""
    train = read_events(job_dir / "events.jsonl", ["train"])
    logged = sorted({1, *range(every, steps + 1, every), steps})
    assert [e["step"] for e in train] == logged and {e["max_steps"] for e in train} == {steps}
    found = read_events(job_dir / "events.jsonl", ["objective"])
    assert [e["step"] for e in found] == [e["step"] for e in train]
    assert {e["objective"] for e in found} == {objective} and {e["metric"] for e in found} == {metric}
    assert all(e["value"] == e[metric] and math.isfinite(e["value"]) for e in found)
    return found


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("objectives")
    pairs = toy_preferences()
    unpaired = [
        {"prompt": p["prompt"], "completion": p[key], "label": key == "chosen"}
        for p in pairs
        for key in ("chosen", "rejected")
    ]
    prompts = [{"prompt": f"Name a colour, number {i}.", "answer": "red"} for i in range(16)]
    return {
        "pref": write_jsonl(d / "pref.jsonl", pairs),
        "unpaired": write_jsonl(d / "unpaired.jsonl", unpaired),
        "prompts": write_jsonl(d / "prompts.jsonl", prompts),
    }


def test_orpo_lowers_its_loss_and_reports_margins(workspace, tiny_lm, data):  # noqa: F811
    job_dir, result = run_inline(workspace, short(base_recipe(tiny_lm, data["pref"], task="orpo")))
    curve = losses(job_dir)
    assert curve[-1] < curve[0] * 0.8, curve  # the NLL part of ORPO learns the answer format quickly
    found = monitor_data(job_dir, "orpo", "margin")
    assert all(0.0 <= e["accuracy"] <= 1.0 for e in found)
    assert result["steps"] == STEPS and result["tokens"] > 0 and "rewards/margins" in result
    assert json.loads((job_dir / "adapter" / "adapter_config.json").read_text())["peft_type"] == "LORA"


def test_simpo_starts_at_softplus_gamma_and_falls(workspace, tiny_lm, data):  # noqa: F811
    recipe = short(base_recipe(tiny_lm, data["pref"], task="simpo", simpo={"beta": 2.0, "gamma": 0.5}))
    job_dir, result = run_inline(workspace, recipe)
    curve = losses(job_dir)
    # -log sigmoid(beta * margin - gamma) with a near-zero margin at step 1: log(1 + e^0.5) = 0.974
    assert curve[0] == pytest.approx(math.log1p(math.exp(0.5)), abs=0.1), curve
    assert curve[-1] < curve[0], curve
    found = monitor_data(job_dir, "simpo", "margin")
    assert found[-1]["margin"] > found[0]["margin"]
    assert result["steps"] == STEPS


def test_kto_starts_at_half_and_separates_good_from_bad(workspace, tiny_lm, data):  # noqa: F811
    job_dir, result = run_inline(workspace, short(base_recipe(tiny_lm, data["unpaired"], task="kto")))
    curve = losses(job_dir)
    assert curve[0] == pytest.approx(0.5, abs=0.02), curve  # policy == reference: 1 - sigmoid(0)
    assert min(curve[1:]) < 0.5, curve
    found = monitor_data(job_dir, "kto", "margin")
    assert all(e["kl"] is not None and e["kl"] >= 0 for e in found)
    assert result["steps"] == STEPS and "kto:" in (job_dir / "recipe.yaml").read_text()


def test_grpo_samples_scores_and_moves_the_reward(workspace, tiny_lm, data, tmp_path, monkeypatch):  # noqa: F811
    code = tmp_path / "my_rewards.py"
    code.write_text(
        "def few_spaces(prompts, completions, **kw):\n    return [-c.count(' ') / 10 for c in completions]\n"
    )
    monkeypatch.setenv(REWARD_CODE_ENV, "1")  # what `ftbench train --allow-reward-code` sets for the job
    grpo = {
        "reward_file": str(code),
        "reward_functions": ["few_spaces"],
        "rewards": [{"kind": "length", "target": 24}, {"kind": "answer", "weight": 0.5}],
        "num_generations": 4,
        "max_completion_length": 8,
    }
    recipe = short(base_recipe(tiny_lm, data["prompts"], task="grpo", grpo=grpo), 4, batch_size=8, lr=2e-2)
    recipe["training"]["logging_steps"] = 1
    job_dir, result = run_inline(workspace, recipe)
    found = monitor_data(job_dir, "grpo", "reward", steps=4, every=1)
    rewards = [e["reward"] for e in found]
    assert all(-10.0 <= r <= 1.5 for r in rewards), rewards
    assert len({round(r, 6) for r in rewards}) > 1, f"the reward never moved: {rewards}"
    assert any(e["reward_std"] > 0 for e in found) and all(0 < e["completion_length"] <= 8 for e in found)
    train = read_events(job_dir / "events.jsonl", ["train"])
    assert all("rewards/length/mean" in e and "rewards/few_spaces/mean" in e for e in train)
    assert result["steps"] == 4 and result["tokens"] > 0 and (job_dir / "adapter" / "adapter_config.json").is_file()


def test_checkpoint_now_and_stop_work_inside_a_trl_trainer(workspace, tiny_lm, data, monkeypatch):  # noqa: F811
    """ftbench's control callback drives TRL's loop: a checkpoint request saves at the next step, a stop saves a
    checkpoint and ends the run early, as for sft and dpo."""
    import threading
    import time

    from ftbench.core.job_entry import JobStopped, ProcessJobContext
    from ftbench.core.jobs import new_job_id

    contexts: list[ProcessJobContext] = []
    original = ProcessJobContext.__init__

    def keep(self: ProcessJobContext, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        contexts.append(self)

    monkeypatch.setattr(ProcessJobContext, "__init__", keep)
    job_dir = workspace.root / "runs" / new_job_id("train", "t")
    (job_dir / "control").mkdir(parents=True)
    (job_dir / "control" / "checkpoint").write_text("")  # `ftbench checkpoint RUN` before the first step

    def stop_after_step_two() -> None:
        while not any(e["step"] >= 2 for e in _train_events(job_dir)):
            time.sleep(0.05)
        try:
            contexts[0].request_stop()  # what the job's SIGTERM handler calls
        except JobStopped:  # raised only outside a cooperative phase
            pass

    watcher = threading.Thread(target=stop_after_step_two, daemon=True)
    watcher.start()
    recipe = short(base_recipe(tiny_lm, data["pref"], task="orpo"), 40, logging_steps=1)
    job_dir, result = run_inline(workspace, recipe, job_dir=job_dir)
    watcher.join(timeout=5)
    saved = [e["step"] for e in read_events(job_dir / "events.jsonl", ["checkpoint"])]
    assert saved[0] == 1 and (job_dir / "checkpoints" / "checkpoint-1" / "trainer_state.json").is_file()
    assert 2 <= result["steps"] < 40 and saved[-1] == result["steps"]  # stopped early, with a checkpoint
    assert contexts[0].stop_requested


def _train_events(job_dir: Path) -> list[dict[str, Any]]:
    path = job_dir / "events.jsonl"
    return read_events(path, ["train"]) if path.exists() else []
