"""Job targets for the job-runner tests; the job process imports them via PYTHONPATH=tests/."""

from __future__ import annotations

import time

from ftbench.core.errors import FtbenchError


def quick(ctx) -> None:
    for i in range(3):
        ctx.progress("counting", i + 1, 3)
    ctx.emit("train", step=1, loss=2.5)
    ctx.set_result(answer=42)


def sleeper(ctx) -> None:
    """Not cooperative: SIGTERM interrupts it with JobStopped."""
    deadline = time.time() + float(ctx.params.get("seconds", 30))
    (ctx.job_dir / "started").write_text("yes")
    while time.time() < deadline:
        time.sleep(0.05)
    (ctx.job_dir / "finished").write_text("yes")


def cooperative(ctx) -> None:
    """Polls like a training loop: saves a 'checkpoint' on request and on stop."""
    ctx.cooperative_stop = True
    (ctx.job_dir / "started").write_text("yes")
    step = 0
    while not ctx.stop_requested:
        step += 1
        if ctx.control_requested("checkpoint"):
            (ctx.job_dir / f"checkpoint-{step}").write_text("ckpt")
            ctx.emit("checkpoint", step=step)
        time.sleep(0.05)
    (ctx.job_dir / "saved-on-stop").write_text(str(step))


def stubborn(ctx) -> None:
    """Ignores stop requests, so the stopper must SIGKILL it after the grace period."""
    ctx.cooperative_stop = True
    (ctx.job_dir / "started").write_text("yes")
    while True:
        time.sleep(0.05)


def user_error(ctx) -> None:
    raise FtbenchError("data.train: datasets/x.jsonl has no rows.", "Point data.train at a file with examples.")


def crash(ctx) -> None:
    raise ValueError("boom")
