"""The GPU queue on a simulated multi-GPU box: parsing, fitting, FIFO order, a multi-process race, real jobs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ftbench.core.errors import FtbenchError
from ftbench.core.gpu import GpuInfo, GpuReport
from ftbench.core.gpu_queue import (
    GIB,
    GpuQueue,
    GpuRequest,
    free_gpus,
    parse_gpus,
    simulated_sampler,
    visible_devices_env,
)
from ftbench.core.job_stop import stop_job
from ftbench.core.jobs import read_status, start_job, wait_job

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent


def box(*free_gib: float, total_gib: float = 80) -> GpuReport:
    gpus = [
        GpuInfo(i, "H100", mem_used=int((total_gib - f) * GIB), mem_total=int(total_gib * GIB))
        for i, f in enumerate(free_gib)
    ]
    return GpuReport(True, gpus)


def write_box(path: Path, *free_gib: float) -> Path:
    path.write_text(
        json.dumps(
            [
                {"index": g.index, "name": g.name, "mem_used": g.mem_used, "mem_total": g.mem_total}
                for g in box(*free_gib).gpus
            ]
        )
    )
    return path


def test_parse_gpus_forms_and_errors():
    assert parse_gpus("auto") == GpuRequest(None, None)
    assert parse_gpus(2) == GpuRequest(2, None)
    assert parse_gpus("2") == GpuRequest(2, None)
    assert parse_gpus("0,3") == GpuRequest(None, (0, 3))
    assert parse_gpus([3]) == GpuRequest(None, (3,))
    assert parse_gpus("3,") == GpuRequest(None, (3,))
    for bad in (0, "two", [1, 1], True, [], "-1"):
        with pytest.raises(FtbenchError):
            parse_gpus(bad)


def test_describe_is_the_users_reason():
    assert GpuRequest(2, None, 14 * GIB).describe() == "2 GPUs with >= 14 GiB free"
    assert GpuRequest(None, (0, 3)).describe() == "GPUs 0, 3"
    assert GpuRequest(None, None).describe() == "a free GPU"


def test_free_gpus_respects_holders_and_memory():
    report = box(70, 10, 70, 70)
    assert free_gpus(report, GpuRequest(2, None, 14 * GIB), {}) == ([0, 2], "")
    assert free_gpus(report, GpuRequest(2, None, 14 * GIB), {0: "a", 2: "b"}) == (
        None,
        "waiting for 2 GPUs with >= 14 GiB free (1 free now)",
    )
    gpus, reason = free_gpus(report, GpuRequest(None, (1, 2), 14 * GIB), {2: "run-b"})
    assert (
        gpus is None
        and reason == "waiting for GPUs 1, 2 with >= 14 GiB free (GPU 1 short of memory, GPU 2 held by run-b)"
    )
    assert free_gpus(report, GpuRequest(None, None, 14 * GIB), {0: "a"}) == ([2, 3], "")
    with pytest.raises(FtbenchError, match="asks for 5 GPUs, but this machine has 4"):
        free_gpus(report, GpuRequest(5, None), {})
    with pytest.raises(FtbenchError, match="asks for GPU 7"):
        free_gpus(report, GpuRequest(None, (0, 7)), {})
    assert free_gpus(GpuReport(False, reason="no NVIDIA driver"), GpuRequest(1, None), {})[0] is None


def test_visible_devices_use_nvml_numbering():
    assert visible_devices_env([0, 3]) == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": "0,3"}


def test_queue_is_first_come_first_served_and_reorderable(tmp_path):
    alive = {1: True, 2: True, 3: True}
    queue = GpuQueue(tmp_path, sampler=lambda: box(70, 70), alive=lambda pid, _start: alive[pid])
    for pid, job in ((1, "a"), (2, "b"), (3, "c")):
        queue.enqueue(job, GpuRequest(2, None), pid, None)
    assert queue.try_acquire("a").gpus == [0, 1]
    waiting = queue.try_acquire("b")
    assert (waiting.gpus, waiting.position, waiting.queued) == (None, 1, 2)
    assert waiting.reason == "waiting for 2 GPUs (0 free now)"
    third = queue.try_acquire("c")
    assert (third.position, third.reason) == (2, "waiting behind 1 queued run (next: b)")
    assert queue.move("c", 1) == ["c", "b"]
    queue.release("a")
    assert queue.try_acquire("b").gpus is None  # c is first now
    assert queue.try_acquire("c").gpus == [0, 1]
    alive[3] = False  # c's process died without releasing: its GPUs come back
    assert queue.try_acquire("b").gpus == [0, 1]
    assert queue.snapshot()["holding"].keys() == {"b"}


RACER = textwrap.dedent("""
    import json, os, sys, time
    from pathlib import Path
    from ftbench.core.gpu_queue import GpuQueue, GpuRequest, simulated_sampler, wait_for_gpus
    root, gpus_file, out, name = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4]
    while not (root / "go").exists():
        time.sleep(0.005)
    queue = GpuQueue(root, sampler=simulated_sampler(gpus_file))
    got = wait_for_gpus(queue, name, GpuRequest(1, None), lambda: False, lambda d: None, first_poll_s=0.01, max_poll_s=0.05)
    start = time.time()
    time.sleep(0.3)
    end = time.time()
    queue.release(name)
    out.write_text(json.dumps({"gpus": got, "start": start, "end": end}))
""")


def test_racing_processes_never_share_a_gpu(tmp_path):
    gpus_file = write_box(tmp_path / "gpus.json", 70, 70, 70)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(tmp_path), str(gpus_file), str(tmp_path / f"r{i}.json"), f"job{i}"],
            env=env,
        )
        for i in range(6)
    ]
    time.sleep(1.5)  # let every interpreter start and spin on the go file
    (tmp_path / "go").write_text("go")
    for p in procs:
        assert p.wait(timeout=60) == 0
    holds = [json.loads((tmp_path / f"r{i}.json").read_text()) for i in range(6)]
    assert all(len(h["gpus"]) == 1 for h in holds)
    for gpu in (0, 1, 2):
        spans = sorted((h["start"], h["end"]) for h in holds if h["gpus"] == [gpu])
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert start >= end, f"GPU {gpu} was held by two processes at once: {spans}"
    assert {h["gpus"][0] for h in holds} == {0, 1, 2}  # six runs on three GPUs: each GPU was used
    assert json.loads((tmp_path / "gpu-queue.json").read_text()) == {"holding": {}, "waiting": []}


def _env(gpus_file: Path) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join([str(TESTS), str(REPO)]), "FTBENCH_SIMULATED_GPUS": str(gpus_file)}


def wait_for_file(path: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear in {timeout_s:.0f} s"
        time.sleep(0.05)


def test_second_job_queues_then_starts_with_its_gpu(workspace, tmp_path):
    gpus_file = write_box(tmp_path / "gpus.json", 40)
    request = GpuRequest(1, None, 14 * GIB).to_dict()
    first = start_job(
        workspace,
        "test",
        "first",
        params={"gpu_request": request},
        target="jobtargets:cooperative",
        env=_env(gpus_file),
    )
    wait_for_file(first.dir / "started")  # the first holds the GPU before the second asks (processes race otherwise)
    second = start_job(
        workspace,
        "test",
        "second",
        params={"gpu_request": request, "seconds": 0.2},
        target="jobtargets:sleeper",
        env=_env(gpus_file),
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (
        (first.dir / "started").exists() and read_status(second.dir).get("queue")
    ):
        time.sleep(0.1)
    status = read_status(second.dir)
    assert status["state"] == "queued"
    assert status["queue"] == {
        "position": 1,
        "queued": 1,
        "reason": "waiting for 1 GPU with >= 14 GiB free (0 free now)",
    }
    assert read_status(first.dir)["gpus"] == [0]
    assert "CUDA_VISIBLE_DEVICES=0" in (first.dir / "log.txt").read_text()
    stop_job(first, grace_s=20)
    done = wait_job(second, timeout_s=30)
    assert done.state == "succeeded" and done.status["gpus"] == [0]
    assert (second.dir / "finished").exists()
    assert GpuQueue(workspace.root, sampler=simulated_sampler(gpus_file)).snapshot() == {"holding": {}, "waiting": []}


def test_cancelling_a_queued_job_leaves_the_queue(workspace, tmp_path):
    gpus_file = write_box(tmp_path / "gpus.json", 70)
    blocker = start_job(
        workspace,
        "test",
        "blocker",
        params={"gpu_request": GpuRequest(None, (0,)).to_dict()},
        target="jobtargets:cooperative",
        env=_env(gpus_file),
    )
    wait_for_file(blocker.dir / "started")
    waiter = start_job(
        workspace,
        "test",
        "waiter",
        params={"gpu_request": GpuRequest(None, (0,)).to_dict()},
        target="jobtargets:quick",
        env=_env(gpus_file),
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not read_status(waiter.dir).get("queue"):
        time.sleep(0.1)
    assert "GPU 0 held by" in read_status(waiter.dir)["queue"]["reason"]
    stopped = stop_job(waiter, grace_s=20)
    assert stopped.state == "stopped" and stopped.status["error"]["message"] == "Cancelled while waiting for GPUs."
    queue = GpuQueue(workspace.root, sampler=simulated_sampler(gpus_file)).snapshot()
    assert queue["waiting"] == [] and list(queue["holding"]) == [blocker.id]
    assert stop_job(blocker, grace_s=20).state == "stopped"


def test_queued_rows_say_why_they_wait(tmp_path):
    from ftbench.core.jobs import Job, waiting_note
    from ftbench.tui.widgets.job_list import job_row

    status = {
        "id": "r",
        "kind": "train",
        "state": "queued",
        "created_at": 1.0,
        "queue": {"position": 2, "queued": 3, "reason": "waiting behind 1 queued run (next: a)"},
    }
    assert waiting_note(status) == "2 of 3 in the GPU queue: waiting behind 1 queued run (next: a)"
    row = job_row(Job(tmp_path, status), clock=lambda: 10.0)
    assert row["state_label"] == "⧗ queued" and row["progress"] == waiting_note(status) and row["slurm"] == ""
    (tmp_path / "slurm.sbatch").write_text("#!/bin/bash\n#SBATCH --nodes=2\n#SBATCH --time=10\nexec true\n")
    slurm = {**status, "queue": None, "slurm": {"job_id": "42", "state": "PENDING", "reason": "Resources"}}
    assert waiting_note(slurm) == "Slurm job 42: PENDING (Resources)"
    assert job_row(Job(tmp_path, slurm), clock=lambda: 10.0)["slurm"].splitlines()[:2] == [
        "Slurm job 42: PENDING (Resources)",
        "sbatch --nodes=2 --time=10",
    ]
    assert waiting_note({**status, "state": "running"}) == ""


@pytest.mark.gpu
def test_real_gpus_are_granted_once(tmp_path):
    """On a real GPU box: NVML's list feeds the queue; a second run pinned to the same GPU waits for it."""
    queue = GpuQueue(tmp_path)  # the default sampler: NVML
    alive_pid, start = os.getpid(), None
    queue.enqueue("a", GpuRequest(1, None, GIB), alive_pid, start)
    granted = queue.try_acquire("a").gpus
    assert granted is not None and len(granted) == 1
    queue.enqueue("b", GpuRequest(None, tuple(granted), GIB), alive_pid, start)
    waiting = queue.try_acquire("b")
    assert waiting.gpus is None and f"GPU {granted[0]} held by a" in waiting.reason
    queue.release("a")
    assert queue.try_acquire("b").gpus == granted


def test_queue_command_lists_and_moves(workspace, tmp_path, capsys, monkeypatch):
    from ftbench.cli import main

    monkeypatch.setenv("FTBENCH_SIMULATED_GPUS", str(write_box(tmp_path / "gpus.json", 70)))
    queue = GpuQueue(workspace.root)
    me = os.getpid()
    for job in ("run-a", "run-b", "run-c"):
        queue.enqueue(job, GpuRequest(1, None, 20 * GIB), me, None)
    assert queue.try_acquire("run-a").gpus == [0]
    for job in ("run-b", "run-c"):  # job folders, so `--move` resolves ids as `ftbench stop` does
        (workspace.runs_dir / job).mkdir()
        (workspace.runs_dir / job / "status.json").write_text(
            json.dumps({"id": job, "kind": "train", "state": "queued"})
        )
    assert main(["-w", str(workspace.root), "queue"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == [
        "running  run-a  GPUs 0",
        "      1  run-b  wants 1 GPU with >= 20 GiB free",
        "      2  run-c  wants 1 GPU with >= 20 GiB free",
    ]
    assert main(["-w", str(workspace.root), "queue", "--move", "run-c", "1"]) == 0
    assert capsys.readouterr().out.strip() == "run-c is now 1 of 2 in the GPU queue."
    assert [w["job"] for w in GpuQueue(workspace.root).snapshot()["waiting"]] == ["run-c", "run-b"]
    assert main(["-w", str(workspace.root), "queue", "--move", "run-b", "zero"]) == 2
