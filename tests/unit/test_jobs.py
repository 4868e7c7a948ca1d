"""The job runner: detached start, status lifecycle, stop, liveness, control files, SIGHUP survival."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ftbench.core.events import read_events
from ftbench.core.job_stop import stop_job
from ftbench.core.jobs import (
    find_job,
    new_job_id,
    pid_alive,
    read_status,
    refresh,
    request_control,
    restart_job,
    start_job,
    wait_job,
)
from ftbench.core.registry import Registry

TESTS = str(Path(__file__).resolve().parents[1])
ENV = {"PYTHONPATH": os.pathsep.join([TESTS, str(Path(TESTS).parent)])}


def launch(ws, target: str, **params):
    return start_job(
        ws, "test", name=target, params=params, target=f"jobtargets:{target}", env=ENV, on_launch=Registry(ws).sync_job
    )


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_job_ids_are_sortable_and_readable():
    a = new_job_id("train", "SFT Sentiment!")
    assert a[:8].isdigit() and "sft-sentiment" in a and "train" not in a
    assert "demo" in new_job_id("demo")


def test_on_launch_sees_the_started_job_once_and_restart_again(workspace):
    seen = []
    job = start_job(workspace, "test", name="quick", target="jobtargets:quick", env=ENV, on_launch=seen.append)
    assert [j.id for j in seen] == [job.id] and seen[0].dir == job.dir
    assert seen[0].status["kind"] == "test" and seen[0].status["attempt"] == 1
    job = wait_job(job, timeout_s=30)
    restart_job(job, env=ENV, on_launch=seen.append)
    assert [j.status["attempt"] for j in seen] == [1, 2]
    wait_job(seen[-1], timeout_s=30)


def test_lifecycle_succeeds_with_events_result_and_registry(workspace):
    job = launch(workspace, "quick")
    assert job.dir.parent == workspace.root / "jobs"
    assert read_status(job.dir)["state"] in ("starting", "running", "succeeded")
    job = wait_job(job, timeout_s=30)
    s = job.status
    assert s["state"] == "succeeded" and s["exit_code"] == 0
    assert s["result"] == {"answer": 42}
    assert s["started_at"] <= s["ended_at"]
    assert s["pid"] == s["pgid"]  # its own session and process group
    events = read_events(job.events_path)
    assert [e["done"] for e in events if e["type"] == "progress"] == [1, 2, 3]
    assert any(e["type"] == "train" and e["loss"] == 2.5 for e in events)
    assert s["progress"] == {"phase": "counting", "done": 3, "total": 3}
    record = Registry(workspace).get("jobs", job.id)
    assert record["state"] == "succeeded" and record["result"] == {"answer": 42}


def test_user_error_and_crash_are_recorded_with_cause(workspace):
    bad = wait_job(launch(workspace, "user_error"), timeout_s=30)
    assert bad.state == "failed" and bad.status["exit_code"] == 1
    assert bad.status["error"]["message"].startswith("data.train:")
    assert bad.status["error"]["hint"]
    crash = wait_job(launch(workspace, "crash"), timeout_s=30)
    assert crash.state == "failed"
    assert crash.status["error"]["message"] == "ValueError: boom"
    assert "Traceback" in crash.log_path.read_text()


def test_stop_interrupts_a_non_cooperative_job(workspace):
    job = launch(workspace, "sleeper", seconds=60)
    wait_for(lambda: (job.dir / "started").exists())
    job = stop_job(job, grace_s=20)
    assert job.state == "stopped" and not (job.dir / "finished").exists()
    assert not pid_alive(job.status["pid"])


def test_stop_lets_a_cooperative_job_save_and_checkpoint_now(workspace):
    job = launch(workspace, "cooperative")
    wait_for(lambda: (job.dir / "started").exists())
    request_control(refresh(job), "checkpoint")
    wait_for(lambda: any(p.name.startswith("checkpoint-") for p in job.dir.iterdir()))
    assert not (job.dir / "control" / "checkpoint").exists()  # consumed once
    job = stop_job(job, grace_s=20)
    assert job.state == "stopped" and (job.dir / "saved-on-stop").exists()
    assert any(e["type"] == "checkpoint" for e in read_events(job.events_path))


def test_stop_kills_a_job_that_ignores_it_after_the_grace_period(workspace):
    job = launch(workspace, "stubborn")
    wait_for(lambda: (job.dir / "started").exists())
    t0 = time.monotonic()
    job = stop_job(job, grace_s=1.0)
    assert time.monotonic() - t0 < 10
    assert job.state == "stopped" and "Killed after" in job.status["error"]["message"]
    assert not pid_alive(job.status["pid"])


def test_kill_9_becomes_failed_with_log_tail(workspace):
    job = launch(workspace, "sleeper", seconds=60)
    wait_for(lambda: (job.dir / "started").exists())
    wait_for(lambda: read_status(job.dir)["state"] == "running")
    os.kill(read_status(job.dir)["pid"], signal.SIGKILL)
    wait_for(lambda: refresh(job).state == "failed")
    status = read_status(job.dir)
    assert "vanished" in status["error"]["message"]
    assert isinstance(status["error"]["log_tail"], list)


def test_restart_is_a_new_attempt_in_the_same_folder(workspace):
    job = wait_job(launch(workspace, "quick"), timeout_s=30)
    again = wait_job(restart_job(job, env=ENV), timeout_s=30)
    assert again.dir == job.dir and again.status["attempt"] == 2 and again.state == "succeeded"
    attempts = {e["attempt"] for e in read_events(job.events_path)}
    assert attempts == {1, 2}


def test_find_job_by_prefix_and_errors(workspace):
    from ftbench.core.errors import FtbenchError

    job = wait_job(launch(workspace, "quick"), timeout_s=30)
    assert find_job(workspace, job.id).dir == job.dir
    assert find_job(workspace, job.id[:-2]).dir == job.dir
    with pytest.raises(FtbenchError, match="No job matches"):
        find_job(workspace, "nope-nothing")


def test_job_survives_sighup_of_the_launching_process(workspace):
    """An SSH drop hangs up the launcher's whole process group; the job is in its own session."""
    code = (
        "import sys, time; sys.path[:0] = sys.argv[1:3];"
        "from ftbench.core.workspace import Workspace; from ftbench.core.jobs import start_job;"
        "j = start_job(Workspace.open(sys.argv[3]), 'test', 'sleeper', params={'seconds': 3},"
        " target='jobtargets:sleeper', env={'PYTHONPATH': sys.argv[1] + ':' + sys.argv[2]});"
        "print(j.dir, flush=True); time.sleep(60)"
    )
    launcher = subprocess.Popen(
        [sys.executable, "-c", code, TESTS, str(Path(TESTS).parent), str(workspace.root)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    job_dir = Path(launcher.stdout.readline().strip())
    wait_for(lambda: (job_dir / "started").exists())
    os.killpg(launcher.pid, signal.SIGHUP)
    assert launcher.wait(timeout=10) == -signal.SIGHUP
    status = read_status(job_dir)
    assert pid_alive(status["pid"])
    wait_for(lambda: read_status(job_dir)["state"] == "succeeded", timeout=30)
    assert (job_dir / "finished").exists()
    assert json.loads((job_dir / "status.json").read_text())["exit_code"] == 0
