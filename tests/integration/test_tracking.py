"""`training.report_to: [tensorboard]`: a real run leaves event files in RUN/tensorboard that TensorBoard's own
reader loads, with the same training losses, at the same steps, as ftbench's events.jsonl."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hubstandin import HubStandIn
from test_train_tasks import base_recipe, run_inline, tiny_lm, toy_data  # noqa: F401 (fixtures)

from ftbench.core.errors import FtbenchError
from ftbench.core.events import read_events
from ftbench.core.layout import JobLayout

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the backport pyproject declares for it
    import tomli as tomllib


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


@pytest.mark.parametrize("tracker", ["tensorboard", "trackio"])
def test_report_to_without_the_package_names_the_extra(workspace, tiny_lm, toy_data, monkeypatch, tracker):  # noqa: F811
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == tracker else real_find_spec(name, *a)
    )
    recipe = base_recipe(tiny_lm, toy_data["alpaca"], training={"max_steps": 2, "report_to": [tracker]})
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


def test_every_tracker_a_recipe_accepts_has_a_builder_and_a_package_in_the_tracking_extra():
    """The recipe's list, the builders and the packages checked at start agree, and the `tracking` extra
    (which the test extra, and so CI, installs) provides every tracker's package."""
    from importlib.metadata import packages_distributions
    from typing import get_args

    from ftbench.core.recipe import TrainingSection
    from ftbench.train.tracking import BUILDERS, TRACKER_PACKAGES

    (accepted,) = get_args(TrainingSection.model_fields["report_to"].annotation)
    assert set(get_args(accepted)) == set(BUILDERS) == set(TRACKER_PACKAGES)
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    extra = {
        re.match(r"[\w.-]+", req).group(0).lower() for req in pyproject["project"]["optional-dependencies"]["tracking"]
    }
    installed = packages_distributions()
    for package in TRACKER_PACKAGES.values():
        assert {d.lower() for d in installed.get(package, [])} & extra, package


def test_trackio_refuses_a_store_it_cannot_reach_any_more(tmp_path, monkeypatch):
    """trackio already imported in this process (its store folder fixed then) for another run: refused, not
    logged into that other run's folder."""
    from types import SimpleNamespace

    from ftbench.train.tracking import _trackio

    monkeypatch.setitem(sys.modules, "trackio.utils", SimpleNamespace(TRACKIO_DIR=tmp_path / "other-run" / "trackio"))
    monkeypatch.delenv("TRACKIO_DIR", raising=False)
    with pytest.raises(FtbenchError) as info:
        _trackio(tmp_path / "this-run", "this-run")
    assert str(tmp_path / "other-run" / "trackio") in info.value.message
    assert "TRACKIO_DIR" not in os.environ


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
    import wandb

    wandb.finish()  # a job process finishes its run at exit; this test process goes on
    (offline,) = (job_dir / "wandb").glob("offline-run-*")
    (history,) = offline.glob("run-*.wandb")
    logged = {}
    for record in wandb_records(history):
        if record.WhichOneof("record_type") == "history":
            items = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item}
            if "train/loss" in items:
                logged[items["train/global_step"]] = items["train/loss"]
    from_events = {e["step"]: e["loss"] for e in read_events(job_dir / "events.jsonl", ["train"])}
    assert from_events and logged == pytest.approx(from_events, rel=1e-6)


def wandb_records(path):
    """The protobuf records of a W&B offline run file: a LevelDB-style log (a 7-byte file header, then 32 KiB
    blocks of chunks, each with a CRC, a length and a full/first/middle/last type). wandb 0.2x+ reads it in
    its Go core only, so the test reads it itself."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", data[:8]
    pos, block, chunks = 7, 32768, b""
    while pos + 7 <= len(data):
        room = block - pos % block
        if room < 7:  # a block's tail too short for a chunk header is padding
            pos += room
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        payload = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        chunks = payload if kind in (1, 2) else chunks + payload
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunks)
            yield record


def test_trackio_store_in_the_run_folder_holds_the_losses_without_the_network(workspace, tiny_lm, toy_data, tmp_path):  # noqa: F811
    """A detached `ftbench train` job (trackio fixes its store folder when first imported, so a job process of its
    own is the real case) with a Hub token, a Hub endpoint and trackio's Space / server / bucket / dataset variables
    in its environment: the run stays local - in RUN/trackio, no request to the Hub - and trackio's own CLI reads
    back events.jsonl's losses, the final evaluation's included."""
    if importlib.util.find_spec("trackio") is None:
        pytest.skip("trackio is not installed (the `tracking` extra)")
    recipe = base_recipe(
        tiny_lm, toy_data["alpaca"], training={"max_steps": 6, "logging_steps": 2, "report_to": ["trackio"]}
    )
    recipe_file = tmp_path / "trackio.yaml"
    recipe_file.write_text(yaml.safe_dump(recipe))
    repo = Path(__file__).resolve().parents[2]
    with HubStandIn() as hub:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")])),
            "HF_ENDPOINT": hub.url,
            "HF_HUB_OFFLINE": "0",  # the tests' default is offline; a user's shell is not
            "HF_TOKEN": "hf_test_token",  # with a token stored, trackio asks the Hub who the user is
            "TRACKIO_SPACE_ID": "tester/dashboard",
            "TRACKIO_SERVER_URL": hub.url,
            "TRACKIO_BUCKET_ID": "tester/bucket",
            "TRACKIO_DATASET_ID": "tester/metrics",  # with SPACE_REPO_NAME: commits the store to a dataset
            "SPACE_REPO_NAME": "dashboard",
        }
        train = [sys.executable, "-m", "ftbench.cli", "-w", str(workspace.root), "train", str(recipe_file), "--wait"]
        done = subprocess.run(train, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        assert hub.requests == []
    (job_dir,) = (workspace.root / "runs").iterdir()
    assert (job_dir / "trackio" / "ftbench.db").is_file()

    def trackio_cli(*args: str) -> str:
        read = [str(Path(sys.executable).with_name("trackio")), *args]
        out = subprocess.run(
            read, env={**os.environ, "TRACKIO_DIR": str(job_dir / "trackio")}, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    def assert_logged(metric: str, events: list[dict], key: str) -> None:
        printed = trackio_cli(
            "get", "metric", "--project", "ftbench", "--run", job_dir.name, "--metric", metric, "--json"
        )
        values = json.loads(printed)["values"]
        assert [v["step"] for v in values] == [e["step"] for e in events], metric
        assert [v["value"] for v in values] == pytest.approx([e[key] for e in events], rel=1e-6), metric

    listed = trackio_cli("list", "runs", "--project", "ftbench").splitlines()
    assert [line.split("- ", 1)[1] for line in listed if line.startswith("  - ")] == [job_dir.name]
    train = read_events(job_dir / "events.jsonl", ["train"])
    assert len(train) >= 3
    assert_logged("train/loss", train, "loss")
    evals = read_events(job_dir / "events.jsonl", ["eval"])
    assert len(evals) == 2  # at the last step: the trainer's evaluation, and the final one after training
    assert_logged("eval/loss", evals, "eval_loss")
