"""The process every job runs in: `python -m ftbench.core.job_entry JOB_DIR`.

It records its own pid and process group, runs the job's target with a `JobContext`, and always ends by
writing a final state: `succeeded`, `stopped` (SIGTERM, after the target saved what it could) or `failed`
with a one-line cause and a hint. Only a SIGKILL can prevent that, and `jobs.refresh` covers that case.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from ftbench.core.errors import FtbenchError, JobStopped
from ftbench.core.events import EventWriter
from ftbench.core.jobs import CONTROL, EVENTS, SPEC, Job, now, proc_start_time, update_status
from ftbench.core.workspace import Workspace


class JobContext:
    """What a job target gets: its folder, parameters, the event stream and the stop/control signals.

    A target that cannot stop at a safe point leaves `cooperative_stop` False and is interrupted by
    `JobStopped`; a training loop sets it True and polls `stop_requested` to save a checkpoint first.
    """

    def __init__(self, job_dir: Path, spec: dict[str, Any]) -> None:
        self.job_dir = job_dir
        self.spec = spec
        self.id: str = spec["id"]
        self.kind: str = spec["kind"]
        self.params: dict[str, Any] = spec.get("params", {})
        self.attempt: int = int(spec.get("attempt", 1))
        self.workspace = Workspace.open(spec["workspace"])
        self.events = EventWriter(job_dir / EVENTS, attempt=self.attempt)
        self.cooperative_stop = False
        self._stop = threading.Event()
        self._last_progress_write = 0.0
        threading.Thread(target=self._announce_stop, name="stop-watch", daemon=True).start()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def request_stop(self) -> None:
        """Called from the SIGTERM handler: no file I/O here, the main thread may hold the status lock."""
        self._stop.set()
        if not self.cooperative_stop:
            raise JobStopped()

    def _announce_stop(self) -> None:
        self._stop.wait()
        update_status(self.job_dir, only_if_state=("starting", "running"), state="stopping")
        print("Stop requested; finishing at the next safe point.", flush=True)

    def control_requested(self, action: str) -> bool:
        """True once per request file (e.g. `checkpoint`) that `jobs.request_control` dropped."""
        path = self.job_dir / CONTROL / action
        try:
            path.unlink()
            return True
        except FileNotFoundError:
            return False

    def emit(self, type: str, **fields: Any) -> dict[str, Any]:
        return self.events.emit(type, **fields)

    def log(self, message: str, level: str = "info") -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)
        self.events.emit("log", level=level, message=message)

    def progress(self, phase: str, done: float | None = None, total: float | None = None, **extra: Any) -> None:
        """A progress event, and at most once a second the same in status.json for listings."""
        self.events.emit("progress", phase=phase, done=done, total=total, **extra)
        t = time.monotonic()
        if t - self._last_progress_write >= 1.0 or (total is not None and done == total):
            self._last_progress_write = t
            update_status(self.job_dir, progress={"phase": phase, "done": done, "total": total, **extra})

    def set_result(self, **fields: Any) -> None:
        """Outputs and final metrics: kept in status.json (`result`) and so in the registry."""
        update_status(self.job_dir, result=fields)


def main(argv: list[str]) -> int:
    job_dir = Path(argv[1]).resolve()
    spec = json.loads((job_dir / SPEC).read_text(encoding="utf-8"))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    ctx = JobContext(job_dir, spec)
    signal.signal(signal.SIGTERM, lambda *_: ctx.request_stop())
    update_status(
        job_dir, state="running", pid=os.getpid(), pgid=os.getpgid(0), proc_start=proc_start_time(os.getpid()),
        started_at=now(), attempt=ctx.attempt, python=sys.executable,
    )
    ctx.emit("state", state="running")
    _sync(ctx)
    state, error, code = "succeeded", None, 0
    try:
        module_name, func_name = spec["target"].split(":")
        target = getattr(importlib.import_module(module_name), func_name)
        target(ctx)
        if ctx.stop_requested:
            state, code = "stopped", 0
    except JobStopped:
        state, code = "stopped", 0
    except FtbenchError as exc:
        state, error, code = "failed", exc.to_dict(), 1
        print(f"error: {exc.message}\nhint: {exc.hint}", flush=True)
    except BaseException as exc:  # noqa: BLE001 - every cause must reach status.json
        traceback.print_exc()
        state, code = "failed", 1
        error = {"message": f"{type(exc).__name__}: {exc}".strip().rstrip(":"), "hint": f"The traceback is in {job_dir / 'log.txt'}."}
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    update_status(job_dir, state=state, ended_at=now(), exit_code=code, error=error)
    ctx.emit("state", state=state, error=error)
    ctx.log(f"Job {state}.")
    _sync(ctx)
    ctx.events.close()
    return code


def _sync(ctx: JobContext) -> None:
    """Keep the registry index in step; the job folder stays the truth if this fails."""
    try:
        from ftbench.core.jobs import read_status
        from ftbench.core.registry import Registry

        Registry(ctx.workspace).sync_job(Job(ctx.job_dir, read_status(ctx.job_dir)))
    except Exception as exc:  # noqa: BLE001
        print(f"warning: registry not updated: {exc}", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
