"""Detached jobs: a folder plus a process that outlives the TUI, the CLI and the SSH session.

`start_job` writes `job.json` (what to run) and `status.json` (state `starting`), then starts
`python -m ftbench.core.job_entry JOB_DIR` in a new session with stdin closed and output in `log.txt`, so a
SIGHUP to the launching terminal never reaches it. The job process owns its status from then on; everyone
else only reads, except `refresh` (a vanished process becomes `failed`) and `stop_job` (core/job_stop.py)
after the grace period.
Status updates go through a file lock and an atomic rename, so two writers never lose each other's fields.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from ftbench.core.artifacts import AmbiguousReference, resolve
from ftbench.core.atomic import atomic_write_json
from ftbench.core.disk_full import disk_full_error, is_disk_full, reserve_space
from ftbench.core.errors import FtbenchError
from ftbench.core.handles import job_dirs  # noqa: F401 - callers import it from here
from ftbench.core.layout import JobLayout
from ftbench.core.workspace import Workspace

# `queued`: the job's process (or Slurm) is waiting for GPUs or an allocation; it starts by itself.
ACTIVE_STATES = ("queued", "starting", "running", "stopping")
FINAL_STATES = ("succeeded", "failed", "stopped")
STATES = ACTIVE_STATES + FINAL_STATES

# What each kind of job runs, as "module:function" taking a JobContext; imported only inside the job.
JOB_TARGETS = {
    "train": "ftbench.train.worker:run",
    "export": "ftbench.export.job:run",
    "demo": "ftbench.demo.job:run",
    "serve": "ftbench.serve.job:run",
    "eval": "ftbench.evaluate.job:run",
    "pull": "ftbench.hub.pull:run",
    "push": "ftbench.hub.push:run",
}

# File names inside a job folder; JobLayout owns them, these short aliases keep this module readable.
STATUS = JobLayout.STATUS
SPEC = JobLayout.SPEC
LOG = JobLayout.LOG
EVENTS = JobLayout.EVENTS
CONTROL = JobLayout.CONTROL
JOB_KINDS = ("run", "export", "job")
STARTING_TIMEOUT_S = 120.0


def now() -> float:
    return round(time.time(), 3)


def new_job_id(kind: str, name: str = "") -> str:
    """Sortable, readable and unique: 20261122-141503-sft-sentiment-3f2a."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    slug = "-".join(part for part in "".join(c if c.isalnum() else "-" for c in name.lower()).split("-") if part)
    middle = "-".join(p for p in (kind if kind != "train" else "", slug[:40]) if p)
    return f"{stamp}-{middle}-{secrets.token_hex(2)}" if middle else f"{stamp}-{secrets.token_hex(2)}"


def waiting_note(status: dict[str, Any]) -> str:
    """Why a queued job has not started: its place in the GPU queue or Slurm's state, in one line."""
    if status.get("state") != "queued":
        return ""
    queue, slurm = status.get("queue") or {}, status.get("slurm") or {}
    if slurm.get("job_id"):
        reason = slurm.get("reason")
        state = slurm.get("state") or "submitted"
        return f"Slurm job {slurm['job_id']}: {state}" + (f" ({reason})" if reason and reason != "None" else "")
    if queue.get("reason"):
        return f"{queue.get('position')} of {queue.get('queued')} in the GPU queue: {queue['reason']}"
    return "waiting to start"


def read_status(job_dir: Path) -> dict[str, Any]:
    try:
        status = json.loads((job_dir / STATUS).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise FtbenchError(
            f"{job_dir} has no {STATUS}; it is not a job folder.", "List jobs with `ftbench runs`."
        ) from exc
    except ValueError as exc:  # atomic writes make this near impossible; say so rather than crash
        raise FtbenchError(
            f"{job_dir / STATUS} is not valid JSON.", "The job folder was edited by hand; restore or delete it."
        ) from exc
    if not isinstance(status, dict):
        raise FtbenchError(
            f"{job_dir / STATUS} holds a JSON {type(status).__name__}, not a job's status object.",
            "The job folder was edited by hand; restore or delete it.",
        )
    return status


def update_status(job_dir: Path, only_if_state: tuple[str, ...] | None = None, **changes: Any) -> dict[str, Any]:
    """Merge `changes` into status.json under the job's lock; dict values are merged one level deep.

    With `only_if_state`, nothing changes unless the current state is one of those: a late `stopping` must
    never overwrite the final state the job wrote a moment before.
    """
    with FileLock(str(JobLayout(job_dir).lock)):
        try:
            status = json.loads((job_dir / STATUS).read_text(encoding="utf-8"))
        except FileNotFoundError:
            status = {}
        if only_if_state is not None and status.get("state") not in only_if_state:
            return status
        for key, value in changes.items():
            if isinstance(value, dict) and isinstance(status.get(key), dict):
                status[key] = {**status[key], **value}
            else:
                status[key] = value
        status["updated_at"] = now()
        atomic_write_json(job_dir / STATUS, status)
        return status


def proc_start_time(pid: int) -> int | None:
    """Kernel start time of a process (clock ticks since boot), to tell a reused pid from the original."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def pid_alive(pid: int | None, start_time: int | None = None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True  # no /proc (macOS): kill(0) is all we have
    if state in ("Z", "X"):
        return False
    return start_time is None or proc_start_time(pid) == start_time


def tail_lines(path: Path, n: int = 20, max_bytes: int = 64 * 1024) -> list[str]:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            data = handle.read()
    except FileNotFoundError:
        return []
    return data.decode("utf-8", "replace").splitlines()[-n:]


@dataclass(frozen=True)
class Job:
    """A job folder and a snapshot of its status."""

    dir: Path
    status: dict[str, Any]

    @property
    def id(self) -> str:
        return self.status.get("id", self.dir.name)

    @property
    def state(self) -> str:
        return self.status.get("state", "failed")

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def layout(self) -> JobLayout:
        return JobLayout(self.dir)

    @property
    def log_path(self) -> Path:
        return self.dir / LOG

    @property
    def events_path(self) -> Path:
        return self.dir / EVENTS


def start_job(
    ws: Workspace,
    kind: str,
    name: str = "",
    params: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
    target: str | None = None,
    env: dict[str, str] | None = None,
    job_id: str | None = None,
    on_launch: Callable[[Job], None] | None = None,
    slurm: dict[str, Any] | None = None,
) -> Job:
    """Create a job folder and start its detached process (or, with `slurm` options, submit it); returns at once.

    `on_launch` sees the new job first (callers pass `Registry(ws).sync_job` so listings show it while it is
    still starting); it is a parameter so this module does not import the registry that indexes it.
    """
    job_id = job_id or new_job_id(kind, name)
    job_dir = ws.jobs_parent(kind) / job_id
    try:
        job_dir.mkdir(parents=True)
    except FileExistsError as exc:
        raise FtbenchError(f"Job folder {job_dir} already exists.", "Pick another name or remove the folder.") from exc
    except OSError as exc:
        raise FtbenchError(
            f"Cannot create job folder {job_dir}: {exc.strerror}.", "Check the workspace is writable."
        ) from exc
    spec = {
        "id": job_id,
        "kind": kind,
        "name": name or job_id,
        "target": target or JOB_TARGETS[kind],
        "workspace": str(ws.root),
        "params": params or {},
        "attempt": 1,
        **({"slurm": slurm} if slurm else {}),
    }
    try:
        reserve_space(job_dir)  # what the job needs to record its end, held before anything else is written
        atomic_write_json(job_dir / SPEC, spec)
        update_status(
            job_dir,
            id=job_id,
            kind=kind,
            name=spec["name"],
            state="starting",
            attempt=1,
            host=socket.gethostname(),
            created_at=now(),
            meta=meta or {},
        )
    except OSError as exc:  # nothing started: leave no folder behind
        shutil.rmtree(job_dir, ignore_errors=True)
        if is_disk_full(exc):
            raise disk_full_error(exc, job_dir.parent) from exc
        raise
    _start(job_dir, spec, env)
    job = Job(job_dir, read_status(job_dir))
    if on_launch:
        on_launch(job)
    return job


def restart_job(
    job: Job,
    params_update: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    on_launch: Callable[[Job], None] | None = None,
) -> Job:
    """A new attempt of a finished job in the same folder (resume): events continue, marked with the attempt."""
    if job.active:
        raise FtbenchError(f"Job {job.id} is still {job.state}.", f"Stop it first with `ftbench stop {job.id}`.")
    spec = json.loads((job.dir / SPEC).read_text(encoding="utf-8"))
    try:
        reserve_space(job.dir)
    except OSError as exc:
        if is_disk_full(exc):
            raise disk_full_error(exc, job.dir) from exc
        raise
    spec["attempt"] = int(spec.get("attempt", 1)) + 1
    spec["params"] = {**spec.get("params", {}), **(params_update or {})}
    atomic_write_json(job.dir / SPEC, spec)
    update_status(
        job.dir,
        state="starting",
        attempt=spec["attempt"],
        error=None,
        exit_code=None,
        ended_at=None,
        pid=None,
        created_at=job.status.get("created_at", now()),
        restarted_at=now(),
    )
    (job.dir / CONTROL / "stop").unlink(missing_ok=True)  # the last attempt's stop request is not this one's
    _start(job.dir, spec, env)
    job = Job(job.dir, read_status(job.dir))
    if on_launch:
        on_launch(job)
    return job


def _start(job_dir: Path, spec: dict[str, Any], env: dict[str, str] | None) -> None:
    if spec.get("slurm"):
        _submit_slurm(job_dir, spec, env)
    else:
        _launch(job_dir, env)


def _submit_slurm(job_dir: Path, spec: dict[str, Any], env: dict[str, str] | None) -> None:
    """Write the sbatch script and submit it; the job waits `queued` until Slurm starts its process.

    `env` (this attempt's live trust flags) reaches the job through sbatch's default `--export=ALL`.
    """
    from ftbench.core import slurm
    from ftbench.core.recipe import validate_recipe

    options = slurm.SlurmOptions(**spec["slurm"])
    recipe = validate_recipe(spec["params"]["recipe"]) if "recipe" in spec.get("params", {}) else None
    slurm.write_scripts(job_dir, spec["id"], options, recipe)
    try:
        slurm_id = slurm.submit(job_dir, env)
    except FtbenchError as exc:
        update_status(job_dir, state="failed", ended_at=now(), error=exc.to_dict())
        raise
    update_status(
        job_dir, state="queued", slurm={"job_id": slurm_id, "state": "PENDING", "reason": "", "checked_at": now()}
    )


def _launch(job_dir: Path, env: dict[str, str] | None) -> None:
    from ftbench.core.logind import systemd_run_prefix

    with open(job_dir / LOG, "ab") as log:
        proc = subprocess.Popen(
            [
                *systemd_run_prefix(f"ftbench-{job_dir.name}"),
                sys.executable,
                "-m",
                "ftbench.core.job_entry",
                str(job_dir),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            cwd=str(job_dir),
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
    update_status(job_dir, launcher_pid=proc.pid, pid=proc.pid, pgid=proc.pid, proc_start=proc_start_time(proc.pid))
    # Reap the child when it ends so a long-lived TUI never collects zombies; the job does not depend on us.
    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()


def find_job(ws: Workspace, ref: str) -> Job:
    """A job of this workspace by id, unique id prefix, `last`/`last~N`, or path to its folder (the artifacts
    lookup order). Never a substring match and never a folder outside this workspace's job folders: `stop` acts
    on what this returns."""
    try:
        path = resolve(ws, ref, want=JOB_KINDS).path
    except AmbiguousReference:
        raise
    except FtbenchError as exc:
        raise FtbenchError(
            f"No job matches '{ref}' in {ws.root} (a job id, a unique prefix of one, or last~N).",
            "List jobs with `ftbench runs` (add --all for demo and other jobs).",
        ) from exc
    parents = {parent.resolve() for parent in ws.job_parents()}
    if path.resolve().parent not in parents:
        raise FtbenchError(
            f"{path} is not a job of the workspace {ws.root}.",
            "Give a job id from `ftbench runs`, or pass that workspace with -w.",
        )
    return refresh(Job(path, read_status(path)))


def refresh(job: Job) -> Job:
    """Re-read status and turn a job whose process is gone into `failed` with its log tail."""
    status = read_status(job.dir)
    if status.get("state") in ACTIVE_STATES and (status.get("slurm") or {}).get("job_id"):
        return _refresh_slurm(job.dir, status)
    if status.get("state") not in ACTIVE_STATES or status.get("host") not in (None, socket.gethostname()):
        return Job(job.dir, status)
    pid = status.get("pid")
    if pid_alive(pid, status.get("proc_start")):
        return Job(job.dir, status)
    if not pid and time.time() - status.get("created_at", 0) < STARTING_TIMEOUT_S:
        return Job(job.dir, status)
    time.sleep(0.05)  # the job may be writing its final state right now
    status = read_status(job.dir)
    if status.get("state") not in ACTIVE_STATES:
        return Job(job.dir, status)
    tail = tail_lines(job.dir / LOG, 15)
    last = next((line for line in reversed(tail) if line.strip()), "")
    ending = {
        "state": "failed",
        "ended_at": now(),
        "error": {
            "message": f"The job's process vanished (pid {pid}) without recording how it ended.",
            "hint": f"Last log line: {last}" if last else "The log is empty; the process was killed before it started.",
            "log_tail": tail,
        },
    }
    try:
        status = update_status(job.dir, only_if_state=ACTIVE_STATES, **ending)
    except OSError:  # a full or read-only disk: report the ending now, record it when the disk allows
        return Job(job.dir, {**status, **ending})
    remove_scratch(job.dir)
    return Job(job.dir, status)


SLURM_POLL_S = 2.0


def _refresh_slurm(job_dir: Path, status: dict[str, Any]) -> Job:
    """Ask Slurm (at most every SLURM_POLL_S) what became of an active job: pending reason, or an end it
    did not record itself (time limit, node failure, preemption while the worker could not write)."""
    from ftbench.core import slurm

    info = status["slurm"]
    if time.time() - (info.get("checked_at") or 0) < SLURM_POLL_S:
        return Job(job_dir, status)
    try:
        state = slurm.query(info["job_id"])
    except FtbenchError:  # the controller is busy or down: no news is not an ending
        state = None
    if state is None or state.live:
        fields = {"checked_at": now(), **({"state": state.state, "reason": state.reason} if state else {})}
        return Job(job_dir, update_status(job_dir, slurm=fields))
    time.sleep(0.05)  # the worker may be writing its final state right now
    return Job(
        job_dir,
        update_status(
            job_dir,
            only_if_state=ACTIVE_STATES,
            state="failed",
            ended_at=now(),
            error=slurm.ended_by_slurm(state),
            slurm={"state": state.state, "reason": state.reason, "checked_at": now()},
        ),
    )


def remove_scratch(job_dir: Path) -> None:
    """Delete what an ended job left half made (`JobLayout.scratch`): it can never become a result."""
    for path in JobLayout(job_dir).scratch():
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def request_control(job: Job, action: str) -> Path:
    """Ask a running job to do something at its next poll (e.g. `checkpoint`); the job deletes the file."""
    if not job.active:
        raise FtbenchError(f"Job {job.id} is {job.state}, not running.", "Only running jobs take requests.")
    path = job.dir / CONTROL / action
    path.parent.mkdir(exist_ok=True)
    path.write_text(str(now()))
    return path


def wait_job(job: Job, timeout_s: float | None = None, poll_s: float = 0.2) -> Job:
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        job = refresh(job)
        if not job.active:
            return job
        if deadline is not None and time.monotonic() > deadline:
            return job
        time.sleep(poll_s)
