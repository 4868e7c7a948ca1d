"""A job target for TUI tests: a cooperative "training loop" that emits train events until stopped.

Runs in a real detached job process (started with `jobs.start_job(..., target="fakejob:run")` and
PYTHONPATH pointing here), so the TUI's stop and checkpoint actions go through the real plumbing. Like the
real trainer, a later attempt continues after the newest checkpoint recorded in events.jsonl.
"""

from __future__ import annotations

import time

from ftbench.core.events import read_events


def run(ctx) -> None:
    ctx.cooperative_stop = True
    total = int(ctx.params.get("steps", 600))
    checkpoints = [e["step"] for e in read_events(ctx.job_dir / "events.jsonl", ["checkpoint"])]
    start = max(checkpoints, default=0) + 1 if ctx.attempt > 1 else 1
    begun = time.monotonic()
    for step in range(start, total + 1):
        if ctx.stop_requested:
            ctx.emit("checkpoint", step=step, path=f"checkpoints/checkpoint-{step}")
            ctx.log(f"stopped at step {step}")
            return
        if ctx.control_requested("checkpoint"):
            ctx.emit("checkpoint", step=step, path=f"checkpoints/checkpoint-{step}")
            ctx.log(f"checkpoint saved at step {step}")
        eta = (time.monotonic() - begun) / (step - start + 1) * (total - step)
        ctx.emit(
            "train",
            step=step,
            max_steps=total,
            epoch=step / total,
            loss=2.0 / (1 + step / 10),
            lr=1e-4,
            grad_norm=1.0,
            tokens=step * 64,
            tokens_per_s=640.0,
            eta_s=round(eta, 1),
        )
        if step % 20 == 0:
            ctx.progress("training", step, total, eta_s=round(eta, 1))
        time.sleep(0.05)
    ctx.set_result(final_loss=2.0 / (1 + total / 10))
