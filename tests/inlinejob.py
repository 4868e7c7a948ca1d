"""A job target run in this test process, as `job_entry` runs it in its own: spec and status written, a real
ProcessJobContext. Inline runs keep module-scoped fixtures (a trained tiny run) cheap to share between tests."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from ftbench.core.atomic import atomic_write_json
from ftbench.core.jobs import SPEC, update_status


def run_job_inline(
    ws_root: Path, job_dir: Path, kind: str, target: str, params: dict[str, Any], attempt: int = 1
) -> None:
    """Run `target` ("module:function") on `job_dir` (created if missing) as attempt `attempt`; its errors propagate."""
    from ftbench.core.job_entry import ProcessJobContext

    job_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "id": job_dir.name,
        "kind": kind,
        "target": target,
        "workspace": str(ws_root),
        "params": params,
        "attempt": attempt,
    }
    atomic_write_json(job_dir / SPEC, spec)
    update_status(job_dir, id=job_dir.name, kind=kind, state="running", attempt=attempt)
    module_name, func_name = target.split(":")
    ctx = ProcessJobContext(job_dir, spec)
    try:
        getattr(importlib.import_module(module_name), func_name)(ctx)
    finally:
        ctx.events.close()
