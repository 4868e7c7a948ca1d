"""Faults, multi-process: a run that completed every step when `stop` arrived ends `succeeded`; kill -9 of the
job process or of the launcher leaves no rank process behind (train/parent_watch.py).

The two-process runs are real CPU DDP runs (gloo) of the tiny llama, started like tests/reliability/
test_ddp_loopback.py; they take about a minute each on 2 cores, so they are marked slow.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest
import yaml
from proctree import descendants

from ftbench.cli import main
from ftbench.core.events import read_events
from ftbench.core.job_stop import stop_job
from ftbench.core.jobs import find_job, read_status, refresh, start_job, wait_job

TESTS = str(Path(__file__).resolve().parents[1])
ENV = {"PYTHONPATH": os.pathsep.join([TESTS, str(Path(TESTS).parent)])}


@pytest.mark.parametrize("complete", [True, False])
def test_a_stop_that_came_after_the_work_was_done_ends_succeeded(workspace, complete: bool) -> None:
    job = start_job(
        workspace,
        "train",
        "late-stop",
        params={"complete": complete},
        target="faulttargets:finishes_after_stop",
        env=ENV,
    )
    deadline = time.monotonic() + 30
    while not (job.dir / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    ended = stop_job(refresh(job), grace_s=20)
    assert ended.state == ("succeeded" if complete else "stopped")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def start_ddp(workspace, tiny_llama, tmp_path, monkeypatch, max_steps: int):
    from test_train_tasks import toy_alpaca, write_jsonl

    monkeypatch.setenv("FTBENCH_DDP_CPU", "1")
    data = write_jsonl(tmp_path / "toy.jsonl", toy_alpaca(40))
    recipe = {
        "task": "sft",
        "model": str(tiny_llama),
        "data": {"train": str(data), "max_length": 48, "packing": False},
        "training": {"max_steps": max_steps, "batch_size": 2, "logging_steps": 1, "devices": 2, "save_steps": 1000},
    }
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert main(["-w", str(workspace.root), "train", str(path)]) == 0
    return next(workspace.runs_dir.iterdir())


def wait_for_step(job_dir: Path, step: int, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        steps = [e["step"] for e in read_events(job_dir / "events.jsonl", ["train"])]
        if steps and steps[-1] >= step:
            return
        assert read_status(job_dir)["state"] in ("starting", "running"), (job_dir / "log.txt").read_text()[-3000:]
        time.sleep(0.1)
    raise AssertionError(f"no step {step}")


@pytest.fixture
def ddp_modules():
    pytest.importorskip("torch")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))


@pytest.mark.slow
def test_ddp_stop_after_the_last_step_ends_succeeded(ddp_modules, workspace, tiny_llama, tmp_path, monkeypatch):
    job_dir = start_ddp(workspace, tiny_llama, tmp_path, monkeypatch, max_steps=3)
    wait_for_step(job_dir, 3)
    ended = wait_job(stop_job(find_job(workspace, job_dir.name), grace_s=120), timeout_s=120)
    assert ended.state == "succeeded", ended.status
    assert (job_dir / "adapter" / "adapter_config.json").is_file()
    assert ended.status["result"]["steps"] == 3


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["job", "launcher"])
def test_kill_9_leaves_no_rank_behind(ddp_modules, workspace, tiny_llama, tmp_path, monkeypatch, victim: str):
    job_dir = start_ddp(workspace, tiny_llama, tmp_path, monkeypatch, max_steps=100000)
    wait_for_step(job_dir, 1)
    job_pid = read_status(job_dir)["pid"]
    tree = descendants(job_pid)
    ranks = {p for p in tree if "ftbench.train.rank" in cmdline(p) and "loopback_launch" not in cmdline(p)}
    launcher = next(p for p in tree if "ftbench.train.loopback_launch" in cmdline(p))
    assert len(ranks) == 2, {p: cmdline(p) for p in tree}
    os.kill(job_pid if victim == "job" else launcher, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(alive(p) for p in tree):
        time.sleep(0.1)
    assert not [p for p in tree if alive(p)], {p: cmdline(p) for p in tree if alive(p)}
    ended = wait_job(find_job(workspace, job_dir.name), timeout_s=60)
    assert ended.state == "failed"
    if victim == "launcher":  # the job process saw its ranks fail and says so
        assert "distributed training processes failed" in ended.status["error"]["message"]
