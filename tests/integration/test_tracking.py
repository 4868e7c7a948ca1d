"""`training.report_to: [tensorboard]`: a real run leaves event files in RUN/tensorboard that TensorBoard's own
reader loads, with the same training losses, at the same steps, as ftbench's events.jsonl."""

from __future__ import annotations

import importlib.util

import pytest
from test_train_tasks import base_recipe, run_inline, tiny_lm, toy_data  # noqa: F401 (fixtures)

from ftbench.core.errors import FtbenchError
from ftbench.core.events import read_events
from ftbench.core.layout import JobLayout


def test_tensorboard_event_files_hold_the_losses_of_events_jsonl(workspace, tiny_lm, toy_data):  # noqa: F811
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    recipe = base_recipe(
        tiny_lm, toy_data["alpaca"], training={"max_steps": 12, "logging_steps": 3, "report_to": ["tensorboard"]}
    )
    job_dir, result = run_inline(workspace, recipe)
    assert result["steps"] == 12

    logdir = job_dir / JobLayout.TENSORBOARD
    assert list(logdir.glob("events.out.tfevents.*")), f"no event file in {logdir}"
    reader = event_accumulator.EventAccumulator(str(logdir))
    reader.Reload()
    from_tensorboard = {e.step: e.value for e in reader.Scalars("train/loss")}
    from_events = {e["step"]: e["loss"] for e in read_events(job_dir / "events.jsonl", ["train"])}
    assert len(from_events) >= 4  # steps 1, 3, 6, 9, 12
    assert sorted(from_tensorboard) == sorted(from_events)
    for step, loss in from_events.items():
        assert from_tensorboard[step] == pytest.approx(loss, rel=1e-6), step
    assert "eval/loss" in reader.Tags()["scalars"]
    assert not (job_dir / "checkpoints" / "runs").exists()  # not transformers' default place


def test_report_to_tensorboard_without_the_package_names_the_extra(workspace, tiny_lm, toy_data, monkeypatch):  # noqa: F811
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real_find_spec(name, *a)
    )
    recipe = base_recipe(tiny_lm, toy_data["alpaca"], training={"max_steps": 2, "report_to": ["tensorboard"]})
    with pytest.raises(FtbenchError) as info:
        run_inline(workspace, recipe)
    assert "`tracking` extra" in info.value.message and info.value.message.count(". ") == 0
    assert "pip install 'ftbench[tracking]'" in info.value.hint


def test_report_to_rejects_an_unknown_tracker():
    from ftbench.core.recipe import validate_recipe

    with pytest.raises(FtbenchError) as info:
        validate_recipe(
            {"task": "sft", "model": "m", "data": {"train": "d.jsonl"}, "training": {"report_to": ["tensorbord"]}}
        )
    assert "report_to" in info.value.message
