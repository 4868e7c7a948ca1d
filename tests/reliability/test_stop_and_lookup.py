"""Attack 5: `stop` trusts status.json. It must signal only a process group it verifies is the job's, and job
lookup must be an exact id or unique prefix inside this workspace (no substrings, no other workspace)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ftbench.core.errors import FtbenchError
from ftbench.core.job_stop import stop_job
from ftbench.core.jobs import find_job, proc_start_time
from ftbench.core.workspace import Workspace

JOB_ID = "20261122-000000-sft-victim-ab12"


@pytest.fixture
def victim():
    """A process in its own group, standing in for whatever now owns a recycled pid."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    time.sleep(0.2)
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def fake_running_job(ws: Workspace, job_id: str = JOB_ID, **status) -> Path:
    folder = ws.runs_dir / job_id
    folder.mkdir(parents=True)
    (folder / "status.json").write_text(
        json.dumps(
            {
                "id": job_id,
                "kind": "train",
                "state": "running",
                "created_at": time.time(),
                "host": socket.gethostname(),
                **status,
            }
        )
    )
    return folder


@pytest.mark.parametrize("claim", ["wrong_start", "no_start", "other_group"])
def test_stop_does_not_kill_an_unverified_group(claim: str, victim, workspace: Workspace) -> None:
    start = proc_start_time(victim.pid)
    status = {
        "wrong_start": {"pid": victim.pid, "pgid": victim.pid, "proc_start": start + 1},
        "no_start": {"pid": victim.pid, "pgid": victim.pid},
        # a verified process of ours, but status.json names someone else's group
        "other_group": {"pid": victim.pid, "pgid": victim.pid + 100000, "proc_start": start},
    }[claim]
    fake_running_job(workspace, **status)
    stop_job(find_job(workspace, JOB_ID), grace_s=1.0)
    time.sleep(0.3)
    assert victim.poll() is None, "stop signalled a process group it could not verify"


def test_stop_kills_a_verified_group(victim, workspace: Workspace) -> None:
    """Positive control: the same setup with the true start time is stopped, so the test above can fail."""
    fake_running_job(workspace, pid=victim.pid, pgid=victim.pid, proc_start=proc_start_time(victim.pid))
    stop_job(find_job(workspace, JOB_ID), grace_s=2.0)
    victim.wait(timeout=5)
    assert victim.returncode is not None


def test_lookup_is_exact_or_unique_prefix_in_this_workspace(workspace: Workspace, tmp_path: Path) -> None:
    fake_running_job(workspace, state="succeeded")
    assert find_job(workspace, JOB_ID).id == JOB_ID
    assert find_job(workspace, JOB_ID[:20]).id == JOB_ID
    for ref in ("victim", "sft-victim-ab12", "ab12"):  # substrings that are not prefixes
        with pytest.raises(FtbenchError):
            find_job(workspace, ref)
    other = Workspace.open(tmp_path / "other-ws")
    foreign = fake_running_job(other, "20261122-000000-sft-foreign-cd34", state="succeeded")
    with pytest.raises(FtbenchError):
        find_job(workspace, str(foreign))
