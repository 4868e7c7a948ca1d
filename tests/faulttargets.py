"""Job targets for the fault tests (tests/reliability/test_disk_full.py ...); imported by the job process
through PYTHONPATH=tests/. Each does what a real job does to the disk, without loading a model."""

from __future__ import annotations

import time
from pathlib import Path


def checkpoints_until_full(ctx) -> None:
    """Steps with events, and a `checkpoints/checkpoint-N` file every step, until the disk says no."""
    ctx.cooperative_stop = True
    chunk = int(ctx.params.get("chunk", 256 * 1024))
    step = 0
    while not ctx.stop_requested:
        step += 1
        ctx.emit("train", step=step, loss=1.0 / step)
        folder = Path(ctx.job_dir) / "checkpoints" / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        with open(folder / "optimizer.pt", "wb") as handle:
            handle.write(b"\1" * chunk)
        (Path(ctx.job_dir) / "started").write_text(str(step))


def waits_for_fill(ctx) -> None:
    """Emits an event once the test has filled the disk (it drops `filled` in the job folder)."""
    ctx.cooperative_stop = True
    (Path(ctx.job_dir) / "started").write_text("yes")
    while not (Path(ctx.job_dir) / "filled").exists():
        time.sleep(0.05)
    ctx.emit("log", level="info", message="y" * int(ctx.params.get("size", 4096)))


def finishes_after_stop(ctx) -> None:
    """Cooperative: waits for a stop, then reports that its work was complete anyway (or not, if told so)."""
    ctx.cooperative_stop = True
    (Path(ctx.job_dir) / "started").write_text("yes")
    while not ctx.stop_requested:
        time.sleep(0.05)
    ctx.completed = bool(ctx.params.get("complete"))
