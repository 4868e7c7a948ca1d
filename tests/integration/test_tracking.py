"""`training.report_to: [tensorboard]`: a real run leaves event files in RUN/tensorboard that TensorBoard's own
reader loads, with the same training losses, at the same steps, as ftbench's events.jsonl."""

from __future__ import annotations

import importlib.util
import json

import pytest
from test_train_tasks import base_recipe, run_inline, tiny_lm, toy_data  # noqa: F401 (fixtures)

from ftbench.core.errors import FtbenchError
from ftbench.core.events import read_events
from ftbench.core.layout import JobLayout


def test_tensorboard_event_files_hold_the_losses_of_events_jsonl(workspace, tiny_lm, toy_data, capsys):  # noqa: F811
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

    from ftbench.cli import main
    from ftbench.core.jobs import find_job
    from ftbench.core.registry import Registry

    Registry(workspace).sync_job(find_job(workspace, job_dir.name))  # run inline: the registry has not seen it
    capsys.readouterr()  # the run's own log lines
    assert main(["--workspace", str(workspace.root), "runs", "--tensorboard"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed[:2] == ["tensorboard", "--logdir_spec"] and printed[2].endswith(f":{logdir}")
    assert printed[3:] == ["--host", "127.0.0.1"]


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


def test_mlflow_store_in_the_run_folder_holds_the_losses(workspace, tiny_lm, toy_data, monkeypatch):  # noqa: F811
    mlflow = pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # restored after the test (the job sets it for good)

    recipe = base_recipe(
        tiny_lm, toy_data["alpaca"], training={"max_steps": 6, "logging_steps": 2, "report_to": ["mlflow"]}
    )
    job_dir, _ = run_inline(workspace, recipe)
    assert mlflow.get_tracking_uri() == (job_dir / "mlflow").resolve().as_uri()
    mlflow.end_run()  # the job process would end it at exit
    mlflow.set_tracking_uri(None)
    client = MlflowClient(tracking_uri=(job_dir / "mlflow").resolve().as_uri())
    (experiment,) = [e for e in client.search_experiments() if e.name == "ftbench"]
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1, [(r.info.run_name, r.data.metrics) for r in runs]
    run = runs[0]
    from_mlflow = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "loss")}
    from_events = {e["step"]: e["loss"] for e in read_events(job_dir / "events.jsonl", ["train"])}
    assert len(from_events) >= 3 and sorted(from_mlflow) == sorted(from_events)
    for step, loss in from_events.items():
        assert from_mlflow[step] == pytest.approx(loss, rel=1e-6), step


@pytest.mark.slow
def test_wandb_offline_run_lands_in_the_run_folder_with_the_losses(workspace, tiny_lm, toy_data):  # noqa: F811
    pytest.importorskip("wandb")
    recipe = base_recipe(
        tiny_lm, toy_data["alpaca"], training={"max_steps": 4, "logging_steps": 2, "report_to": ["wandb"]}
    )
    job_dir, _ = run_inline(workspace, recipe)
    (offline,) = (job_dir / "wandb").glob("offline-run-*")
    (history,) = offline.glob("run-*.wandb")
    from wandb.proto import wandb_internal_pb2
    from wandb.sdk.internal.datastore import DataStore

    store = DataStore()
    store.open_for_scan(str(history))
    logged = {}
    while (data := store.scan_data()) is not None:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        if record.WhichOneof("record_type") == "history":
            items = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item}
            if "train/loss" in items:
                logged[items["train/global_step"]] = items["train/loss"]
    from_events = {e["step"]: e["loss"] for e in read_events(job_dir / "events.jsonl", ["train"])}
    assert from_events and logged == pytest.approx(from_events, rel=1e-6)
