"""The detached training job through the CLI: SIGHUP of the launching shell, checkpoint-now, kill -9 of the
worker, resume (one loss curve: it continues from the checkpoint's step and loss, the killed attempt's later
steps superseded, events marked with the attempt), and stop (saves a checkpoint, ends `stopped`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from test_train_tasks import toy_alpaca, write_jsonl

from ftbench.core.events import read_events
from ftbench.core.jobs import find_job, read_status, refresh

REPO = Path(__file__).resolve().parents[2]


def cli(ws, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "ftbench.cli", "-w", str(ws.root), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def wait_for(predicate, timeout: float = 90.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def train_events(job_dir: Path, attempt: int | None = None) -> list[dict]:
    events = read_events(job_dir / "events.jsonl", ["train"])
    return [e for e in events if attempt is None or e["attempt"] == attempt]


@pytest.fixture
def long_recipe(workspace, tiny_llama, tmp_path) -> Path:
    data = write_jsonl(tmp_path / "toy.jsonl", toy_alpaca(32))
    recipe = {
        "task": "sft",
        "model": str(tiny_llama),
        "data": {"train": str(data), "max_length": 64},
        "training": {
            "max_steps": 100000,
            "batch_size": 2,
            "logging_steps": 1,
            "save_steps": 100000,
            "lr": 5e-3,
            "scheduler": "constant",
            "warmup_steps": 0,
        },
    }
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_sighup_checkpoint_kill_resume_stop(workspace, long_recipe):
    # Launch from a shell in its own session that follows the run, then hang that session up.
    shell = subprocess.Popen(
        [sys.executable, "-m", "ftbench.cli", "-w", str(workspace.root), "train", str(long_recipe), "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        start_new_session=True,
    )
    run_id = shell.stdout.readline().strip()
    job = find_job(workspace, run_id)
    wait_for(lambda: len(train_events(job.dir)) >= 3, what="first train events")
    os.killpg(shell.pid, signal.SIGHUP)
    shell.wait(timeout=10)
    seen = len(train_events(job.dir))
    wait_for(lambda: len(train_events(job.dir)) >= seen + 3, what="training to go on after SIGHUP")
    assert refresh(job).state == "running"

    # Checkpoint now, through the control file.
    cli(workspace, "checkpoint", run_id)
    ckpt = wait_for(lambda: read_events(job.dir / "events.jsonl", ["checkpoint"]), what="checkpoint event")[-1]
    assert (job.dir / ckpt["path"] / "trainer_state.json").is_file()
    assert (job.dir / ckpt["path"] / "optimizer.pt").is_file()

    # kill -9 the worker a few steps after the checkpoint: the run shows as failed (process vanished), and
    # resume continues from the checkpoint.
    wait_for(lambda: train_events(job.dir)[-1]["step"] >= ckpt["step"] + 3, what="steps past the checkpoint")
    status = read_status(job.dir)
    os.kill(status["pid"], signal.SIGKILL)
    failed = wait_for(lambda: (j := refresh(find_job(workspace, run_id))).state == "failed" and j, what="failed state")
    assert "vanished" in failed.status["error"]["message"]
    last_step_1 = train_events(job.dir, 1)[-1]["step"]
    assert last_step_1 >= ckpt["step"] + 3

    out = cli(workspace, "resume", run_id)
    assert "attempt 2" in out.stdout
    resumed = wait_for(lambda: train_events(job.dir, 2), what="attempt 2 train events")
    assert resumed[0]["step"] == ckpt["step"] + 1  # continues from the checkpoint's step, not from 0
    assert refresh(job).status["attempt"] == 2
    wait_for(lambda: train_events(job.dir, 2)[-1]["step"] > last_step_1, what="attempt 2 to pass attempt 1's last step")
    check_one_curve(job.dir, ckpt["step"], last_step_1)

    # Stop: saves a checkpoint at the current step and ends `stopped`.
    out = cli(workspace, "stop", run_id)
    final = refresh(find_job(workspace, run_id))
    assert final.state == "stopped", final.status
    stop_ckpt = read_events(job.dir / "events.jsonl", ["checkpoint"])[-1]
    assert stop_ckpt["attempt"] == 2 and stop_ckpt["step"] > ckpt["step"]
    state = json.loads((job.dir / stop_ckpt["path"] / "trainer_state.json").read_text())
    assert state["global_step"] == stop_ckpt["step"]
    assert final.status["result"]["steps"] == stop_ckpt["step"]
    assert not (job.dir / "adapter").exists()  # a stopped run keeps its checkpoint; outputs come on completion


def check_one_curve(job_dir: Path, ckpt_step: int, last_step_1: int) -> None:
    """What the monitor draws after kill -9 and resume: one curve, monotone in step, the newest attempt per step,
    and the resumed loss continuing from the checkpoint's weights and optimizer, not from the start."""
    from ftbench.tui.widgets.run_data import RunView

    events = read_events(job_dir / "events.jsonl")
    view = RunView()
    view.add_all(events)
    steps = [s for s, _ in view.loss]
    assert steps == sorted(set(steps)) and len(view.loss_ema) == len(steps)  # monotone, no duplicate steps
    first, second = (dict((e["step"], e["loss"]) for e in train_events(job_dir, a)) for a in (1, 2))
    assert set(first) & set(second) == set(range(ckpt_step + 1, last_step_1 + 1))  # the re-logged steps
    assert dict(view.loss) == {**first, **second}  # ...where attempt 2's values win
    initial, at_ckpt, resumed = first[min(first)], first[ckpt_step], second[ckpt_step + 1]
    assert initial - at_ckpt > 0.5, "the run must have learned before the checkpoint for this check to mean anything"
    assert abs(resumed - at_ckpt) < 0.25 * (initial - at_ckpt), (initial, at_ckpt, resumed)
    # the same batch at the same step, from restored weights and optimizer: the killed attempt's own loss there
    assert resumed == pytest.approx(first[ckpt_step + 1], rel=0.05)


def test_train_wait_reports_success_and_outputs(workspace, tiny_llama, tmp_path):
    data = write_jsonl(tmp_path / "toy.jsonl", toy_alpaca(16))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"task: sft\nmodel: {tiny_llama}\ndata: {data}\n")
    out = cli(
        workspace, "train", str(recipe), "--wait", "--set", "training.max_steps=3", "--set", "data.eval_split=0.25"
    )
    run_id = out.stdout.splitlines()[0]
    job = find_job(workspace, run_id)
    assert job.state == "succeeded"
    result = job.status["result"]
    assert result["steps"] == 3 and result["eval_loss"] > 0
    frozen = yaml.safe_load((job.dir / "recipe.yaml").read_text())
    assert frozen["training"]["max_steps"] == 3 and frozen["data"]["eval_split"] == 0.25 and frozen["method"]["r"] == 16
    assert (job.dir / "adapter" / "adapter_model.safetensors").is_file()
    assert (
        "chat_template" in json.loads((job.dir / "adapter" / "tokenizer_config.json").read_text())
        or (job.dir / "adapter" / "chat_template.jinja").is_file()
    )
    card = (job.dir / "README.md").read_text()
    assert str(tiny_llama) in card and "| eval_loss |" in card
    from ftbench.core.registry import Registry

    record = next(r for r in Registry(workspace).jobs() if r.get("id") == run_id)
    assert record["state"] == "succeeded"
