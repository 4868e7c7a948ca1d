"""The process every job runs in: `python -m ftbench.core.job_entry JOB_DIR`.

It records its own pid and process group, runs the job's target with a `ProcessJobContext` (the
`JobContext` protocol of core/job_context.py), and always ends by
writing a final state: `succeeded`, `stopped` (SIGTERM, after the target saved what it could) or `failed`
with a one-line cause and a hint. Only a SIGKILL can prevent that, and `jobs.refresh` covers that case.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import socket
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from ftbench.core.disk_full import disk_full_error, is_disk_full, release_space
from ftbench.core.errors import FtbenchError, JobStopped
from ftbench.core.events import EventWriter
from ftbench.core.jobs import CONTROL, EVENTS, SPEC, Job, now, proc_start_time, remove_scratch, update_status
from ftbench.core.workspace import Workspace


class ProcessJobContext:
    """The JobContext of a job process: its folder, parameters, the event stream and the stop/control signals.

    A target that cannot stop at a safe point leaves `cooperative_stop` False and is interrupted by
    `JobStopped`; a training loop sets it True and polls `stop_requested` to save a checkpoint first.
    """

    rank = 0

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
        self.completed = False
        self.stop_by_user = False
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

    def sleep(self, seconds: float) -> None:
        """Sleep, waking at once when a stop arrives."""
        self._stop.wait(seconds)

    def _announce_stop(self) -> None:
        self._stop.wait()
        # `ftbench stop` leaves control/stop before its SIGTERM; a SIGTERM without it came from elsewhere
        # (Slurm's time limit, a shutdown). Either way the file is how a distributed run's ranks hear it.
        stop_file = self.job_dir / CONTROL / "stop"
        self.stop_by_user = stop_file.exists()
        if not self.stop_by_user:
            stop_file.parent.mkdir(exist_ok=True)
            stop_file.write_text("signal")
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
    ctx = ProcessJobContext(job_dir, spec)
    signal.signal(signal.SIGTERM, lambda *_: ctx.request_stop())
    if ctx.params.get("gpu_request") and not _wait_for_gpus(ctx):
        update_status(
            job_dir,
            state="stopped",
            ended_at=now(),
            exit_code=0,
            queue=None,
            error={"message": "Cancelled while waiting for GPUs.", "hint": "Start it again with `ftbench resume`."},
        )
        _sync(ctx)
        release_space(job_dir)
        return 0
    state, error, code = "succeeded", None, 0
    try:
        update_status(
            job_dir,
            state="running",
            pid=os.getpid(),
            pgid=os.getpgid(0),
            proc_start=proc_start_time(os.getpid()),
            started_at=now(),
            attempt=ctx.attempt,
            python=sys.executable,
            host=socket.gethostname(),
        )
        ctx.emit("state", state="running")
        _sync(ctx)
        module_name, func_name = spec["target"].split(":")
        target = getattr(importlib.import_module(module_name), func_name)
        target(ctx)
        if ctx.stop_requested and not ctx.completed:
            state, code = "stopped", 0
    except JobStopped:
        state, code = "stopped", 0
    except FtbenchError as exc:
        state, error, code = "failed", exc.to_dict(), 1
        _say(f"error: {exc.message}\nhint: {exc.hint}")
    except BaseException as exc:  # noqa: BLE001 - every cause must reach status.json
        state, error, code = "failed", _failure(exc, job_dir), 1
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if state == "stopped" and os.environ.get("SLURM_JOB_ID") and not ctx.stop_by_user:
        state, error, code = "failed", _slurm_end(os.environ["SLURM_JOB_ID"]), 1
    if ctx.params.get("gpu_request"):
        from ftbench.core.gpu_queue import GpuQueue

        GpuQueue(ctx.workspace.root).release(ctx.id)
    _finish(ctx, state, error, code)
    return code


def _say(text: str) -> None:
    """A line in log.txt, which may sit on the very disk that just filled up."""
    try:
        print(text, flush=True)
    except OSError:
        pass


def _failure(exc: BaseException, job_dir: Path) -> dict[str, Any]:
    """status.json's `error` for an unexpected exception: a full disk in one sentence, anything else by name."""
    _say(traceback.format_exc().rstrip())
    if is_disk_full(exc, job_dir):
        return disk_full_error(exc, job_dir).to_dict()
    return {
        "message": f"{type(exc).__name__}: {exc}".strip().rstrip(":"),
        "hint": f"The traceback is in {job_dir / 'log.txt'}.",
    }


def _finish(ctx: ProcessJobContext, state: str, error: dict[str, Any] | None, code: int) -> None:
    """Write the final state. The folder's reserve is freed first, so this fits even on a disk that filled up."""
    release_space(ctx.job_dir)
    remove_scratch(ctx.job_dir)
    update_status(ctx.job_dir, state=state, ended_at=now(), exit_code=code, error=error)
    try:
        ctx.emit("state", state=state, error=error)
        ctx.log(f"Job {state}.")
    except OSError:
        pass  # status.json holds the state; the event stream and the log are best effort on a full disk
    _sync(ctx)
    ctx.events.close()


def _slurm_end(slurm_id: str) -> dict[str, str]:
    """Why Slurm sent SIGTERM when nobody asked ftbench to stop: time limit, preemption, node failure."""
    from ftbench.core import slurm

    for _ in range(5):
        try:
            state = slurm.query(slurm_id)
        except FtbenchError:
            state = None
        if state is not None and state.state in slurm.ENDED_BY_SLURM:
            return slurm.ended_by_slurm(state)
        time.sleep(1.0)
    return {
        "message": f"Slurm ended job {slurm_id} before it finished (time limit, preemption or node failure).",
        "hint": "The checkpoint saved on the way out is kept: `ftbench resume ID` continues from it.",
    }


def _wait_for_gpus(ctx: ProcessJobContext) -> bool:
    """Wait in the workspace's GPU queue as `queued`; on a grant, show the job only its GPUs. False: cancelled."""
    from ftbench.core.gpu_queue import GpuQueue, GpuRequest, visible_devices_env, wait_for_gpus

    request = GpuRequest.from_dict(ctx.params["gpu_request"])
    ctx.cooperative_stop = True  # a stop while waiting just leaves the queue; nothing to interrupt
    update_status(
        ctx.job_dir, state="queued", pid=os.getpid(), pgid=os.getpgid(0), proc_start=proc_start_time(os.getpid())
    )
    _sync(ctx)

    def on_wait(decision) -> None:
        update_status(
            ctx.job_dir, queue={"position": decision.position, "queued": decision.queued, "reason": decision.reason}
        )
        ctx.log(f"Queued ({decision.position} of {decision.queued}): {decision.reason}.")

    gpus = wait_for_gpus(
        GpuQueue(ctx.workspace.root), ctx.id, request, lambda: ctx.stop_requested, on_wait, sleep=ctx.sleep
    )
    ctx.cooperative_stop = False
    if gpus is None:
        return False
    os.environ.update(visible_devices_env(gpus))
    update_status(ctx.job_dir, gpus=gpus, queue=None)
    ctx.log(
        f"Using GPU{'s' if len(gpus) != 1 else ''} {', '.join(map(str, gpus))} (CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']})."
    )
    return True


def _sync(ctx: ProcessJobContext) -> None:
    """Keep the registry index in step; the job folder stays the truth if this fails."""
    try:
        from ftbench.core.jobs import read_status
        from ftbench.core.registry import Registry

        Registry(ctx.workspace).sync_job(Job(ctx.job_dir, read_status(ctx.job_dir)))
    except Exception as exc:  # noqa: BLE001
        print(f"warning: registry not updated: {exc}", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
