"""A job target for TUI tests: a cooperative "training loop" that emits train events until stopped.

Runs in a real detached job process (started with `jobs.start_job(..., target="fakejob:run")` and
PYTHONPATH pointing here), so the TUI's stop and checkpoint actions go through the real plumbing.
"""

from __future__ import annotations

import time


def run(ctx) -> None:
    ctx.cooperative_stop = True
    total = int(ctx.params.get("steps", 600))
    for step in range(1, total + 1):
        if ctx.stop_requested:
            ctx.emit("checkpoint", step=step, path=str(ctx.job_dir / f"checkpoints/checkpoint-{step}"))
            ctx.log(f"stopped at step {step}")
            return
        if ctx.control_requested("checkpoint"):
            ctx.emit("checkpoint", step=step, path=str(ctx.job_dir / f"checkpoints/checkpoint-{step}"))
            ctx.log(f"checkpoint saved at step {step}")
        ctx.emit("train", step=step, epoch=step / total, loss=2.0 / (1 + step / 10), lr=1e-4, grad_norm=1.0,
                 tokens=step * 64, tokens_per_s=640.0, eta_s=(total - step) * 0.05)
        if step % 20 == 0:
            ctx.progress("train", step, total)
        time.sleep(0.05)
    ctx.set_result(final_loss=2.0 / (1 + total / 10))
