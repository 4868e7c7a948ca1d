"""Fault injection, training: kill -9 of the training job before its first checkpoint and while a checkpoint is
being written. Afterwards the run is `failed` (its process vanished), nothing it saved whole is lost, and
`ftbench resume` continues from the newest complete checkpoint (or from step 0 when there is none).

Real detached runs of the tiny llama through the CLI: about a minute each on 2 cores, so marked slow.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest
import yaml

from ftbench.cli import main
from ftbench.core.checkpoint_trust import is_ours
from ftbench.core.events import read_events
from ftbench.core.job_stop import stop_job
from ftbench.core.jobs import find_job, read_status, refresh
from ftbench.core.layout import JobLayout

pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from test_train_tasks import toy_alpaca, write_jsonl  # noqa: E402


def wait_for(predicate, timeout: float = 300.0, poll: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError("timed out")


def train_steps(job_dir: Path, attempt: int) -> list[int]:
    return [e["step"] for e in read_events(job_dir / "events.jsonl", ["train"]) if e["attempt"] == attempt]


def writing_checkpoint(layout: JobLayout):
    """A checkpoint folder that exists but is not complete yet: the Trainer is writing it now."""
    return next((c for c in layout.checkpoints() if not c.complete), None)


@pytest.mark.slow
@pytest.mark.parametrize("when", ["before_first_checkpoint", "mid_checkpoint"])
def test_kill_9_then_resume(workspace, tiny_llama, tmp_path, capsys, when: str) -> None:
    data = write_jsonl(tmp_path / "toy.jsonl", toy_alpaca(32))
    recipe = {
        "task": "sft",
        "model": str(tiny_llama),
        "data": {"train": str(data), "max_length": 48},
        # before the first checkpoint: one far enough away that the kill cannot race it
        "training": {
            "max_steps": 100000,
            "batch_size": 2,
            "logging_steps": 1,
            "save_steps": 3 if when == "mid_checkpoint" else 100000,
        },
    }
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert main(["-w", str(workspace.root), "train", str(path)]) == 0
    job_dir = next(workspace.runs_dir.iterdir())
    layout = JobLayout(job_dir)
    if when == "before_first_checkpoint":
        wait_for(lambda: train_steps(job_dir, 1))
        assert layout.checkpoints() == []
    else:  # one checkpoint saved, then kill while the next one is being written
        wait_for(lambda: any(c.complete for c in layout.checkpoints()))
        wait_for(lambda: writing_checkpoint(layout), poll=0.002)
    os.kill(read_status(job_dir)["pid"], signal.SIGKILL)
    failed = wait_for(lambda: (j := refresh(find_job(workspace, job_dir.name))).state == "failed" and j, timeout=30)
    assert "vanished" in failed.status["error"]["message"]
    signed = [c.step for c in layout.checkpoints() if c.complete and is_ours(job_dir, c.path)]
    resume_from = signed[-1] if signed else 0
    assert resume_from or when == "before_first_checkpoint"

    capsys.readouterr()
    assert main(["-w", str(workspace.root), "resume", job_dir.name]) == 0
    wait_for(lambda: train_steps(job_dir, 2))
    assert train_steps(job_dir, 2)[0] == resume_from + 1
    logs = [e["message"] for e in read_events(job_dir / "events.jsonl", ["log"]) if e["attempt"] == 2]
    if resume_from:
        assert f"Resuming from checkpoint-{resume_from} (attempt 2)." in logs
    else:
        assert "No checkpoint to resume from; starting again from step 0." in logs
    assert all(c.complete for c in layout.checkpoints() if c.step <= resume_from)
    ended = stop_job(find_job(workspace, job_dir.name), grace_s=60)
    assert ended.state == "stopped"
