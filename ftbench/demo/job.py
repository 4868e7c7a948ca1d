"""The job target for kind "demo": builds the demo workspace inside a detached job process.

Running it as a job (not in the CLI process) means the TUI never imports torch, the build survives a closed
terminal, and its progress reaches every viewer through events.jsonl like any other job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ftbench.demo.build import build_demo

if TYPE_CHECKING:
    from ftbench.core.job_context import JobContext


def run(ctx: JobContext) -> None:
    """Build (or verify) the demo in the job's workspace and record what is there as the job's result."""
    summary = build_demo(
        ctx.workspace.root,
        progress=lambda phase, done, total: ctx.progress(phase, done, total),
        log=ctx.log,
    )
    ctx.log(
        f"Demo ready in {summary['seconds']:.1f} s (built: {', '.join(summary['built']) or 'nothing, all present'})."
    )
    ctx.set_result(
        seconds=summary["seconds"],
        built=summary["built"],
        skipped=summary["skipped"],
        datasets=summary["datasets"],
        models=summary["models"],
    )
