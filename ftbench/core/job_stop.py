"""Stopping a job: SIGTERM, a grace period, then SIGKILL (or scancel for a Slurm job).

Kept apart from jobs.py, which starts jobs and reads their state: this is the one place that sends signals,
and it trusts status.json only as a claim. A process group is signalled only while its leader is verifiably
the job's process (`verified_group`), so a reused pid or an edited status never gets a stranger killed.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from ftbench.core.jobs import ACTIVE_STATES, CONTROL, Job, now, pid_alive, read_status, refresh, update_status


def stop_job(job: Job, grace_s: float = 60.0, wait: bool = True) -> Job:
    """SIGTERM the job's process group; SIGKILL it if it is still there after `grace_s`.

    status.json is only a claim: the group is signalled only while its leader is verifiably the job's process
    (same pid, same kernel start time, still leading that group). Otherwise only the cooperative stop file is
    written, so a reused pid or an edited status never gets a stranger's processes killed."""
    job = refresh(job)
    if not job.active:
        return job
    (job.dir / CONTROL).mkdir(exist_ok=True)
    (job.dir / CONTROL / "stop").write_text(str(now()))
    if (job.status.get("slurm") or {}).get("job_id"):
        return _stop_slurm(job, grace_s, wait)
    if not _signal_job(job.status, signal.SIGTERM):
        return refresh(job)
    if not wait:
        return Job(job.dir, read_status(job.dir))
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not pid_alive(job.status.get("pid"), job.status.get("proc_start")):
            break
        time.sleep(0.1)
    else:
        _signal_job(job.status, signal.SIGKILL)
        time.sleep(0.2)
        status = read_status(job.dir)
        if status.get("state") in ACTIVE_STATES:
            update_status(
                job.dir,
                only_if_state=ACTIVE_STATES,
                state="stopped",
                ended_at=now(),
                error={
                    "message": f"Killed after not stopping within {grace_s:g} s.",
                    "hint": "Any checkpoint saved before is kept.",
                },
            )
    return refresh(Job(job.dir, read_status(job.dir)))


def _stop_slurm(job: Job, grace_s: float, wait: bool) -> Job:
    """A pending job is just cancelled; a running one gets SIGTERM (it saves a checkpoint), then scancel."""
    from ftbench.core import slurm

    slurm_id = job.status["slurm"]["job_id"]
    if job.state == "queued":
        slurm.cancel(slurm_id)
        update_status(
            job.dir,
            only_if_state=("queued",),
            state="stopped",
            ended_at=now(),
            error={
                "message": f"Cancelled before Slurm started it (job {slurm_id}).",
                "hint": "Start it again with `ftbench resume`.",
            },
        )
        return Job(job.dir, read_status(job.dir))
    slurm.cancel(slurm_id, "TERM")
    if not wait:
        return Job(job.dir, read_status(job.dir))
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and read_status(job.dir).get("state") in ACTIVE_STATES:
        time.sleep(0.2)
    slurm.cancel(slurm_id)
    update_status(
        job.dir,
        only_if_state=ACTIVE_STATES,
        state="stopped",
        ended_at=now(),
        error={
            "message": f"Cancelled after not stopping within {grace_s:g} s.",
            "hint": "Any checkpoint saved before is kept.",
        },
    )
    return Job(job.dir, read_status(job.dir))


def verified_group(status: dict[str, Any]) -> int | None:
    """The job's process group id, if its recorded leader is alive, is the process that was recorded (start
    time) and leads that group; None when any of that cannot be verified."""
    pid, start = status.get("pid"), status.get("proc_start")
    pgid = status.get("pgid") or pid
    if not isinstance(pid, int) or not isinstance(start, int) or pid <= 1 or not pid_alive(pid, start):
        return None
    try:
        actual = os.getpgid(pid)
    except ProcessLookupError:
        return None
    return actual if actual == pgid == pid else None


def _signal_job(status: dict[str, Any], sig: int) -> bool:
    pgid = verified_group(status)
    if pgid is None:
        return False
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False
