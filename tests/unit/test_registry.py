"""The registry survives concurrent writers, SIGKILL mid-write, deletion and corruption."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from ftbench.core.atomic import atomic_write_json
from ftbench.core.registry import Registry

WRITER = """
import sys
from ftbench.core.workspace import Workspace
from ftbench.core.registry import Registry
reg = Registry(Workspace.open(sys.argv[1]))
worker, count = sys.argv[2], int(sys.argv[3])
pad = "x" * int(sys.argv[4])
for i in range(count):
    reg.upsert("runs", {"id": f"{worker}-{i}", "worker": worker, "i": i, "pad": pad})
"""


def run_writers(ws, n_procs, count, pad=0):
    return [
        subprocess.Popen([sys.executable, "-c", WRITER, str(ws.root), f"w{p}", str(count), str(pad)])
        for p in range(n_procs)
    ]


def test_four_processes_writing_250_records_each_lose_nothing(workspace):
    procs = run_writers(workspace, 4, 250)
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0, 0]
    records = Registry(workspace).all("runs")
    assert len(records) == 1000
    assert {r["id"] for r in records} == {f"w{p}-{i}" for p in range(4) for i in range(250)}


def test_writer_killed_mid_write_leaves_a_loadable_file(workspace):
    for attempt in range(3):
        proc = run_writers(workspace, 1, 100_000, pad=20_000)[0]
        time.sleep(1.0 + 0.3 * attempt)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        json.loads(workspace.registry_path.read_text())  # never torn
        warnings: list[str] = []
        records = Registry(workspace, on_warning=warnings.append).all("runs")
        assert records and not warnings


def _fake_job(ws, kind, job_id, state="succeeded"):
    folder = ws.jobs_parent(kind) / job_id
    folder.mkdir(parents=True)
    atomic_write_json(folder / "status.json", {"id": job_id, "kind": kind, "state": state, "created_at": time.time()})
    return folder


def test_deleted_registry_is_rebuilt_from_job_folders_with_a_warning(workspace):
    _fake_job(workspace, "train", "20261122-000001-a-0001")
    _fake_job(workspace, "export", "20261122-000002-b-0002")
    _fake_job(workspace, "demo", "20261122-000003-demo-0003")
    workspace.registry_path.unlink()
    warnings: list[str] = []
    reg = Registry(workspace, on_warning=warnings.append)
    assert {r["id"] for r in reg.all("runs")} == {"20261122-000001-a-0001"}
    assert len(warnings) == 1 and "rebuilt" in warnings[0] and "3 job folders" in warnings[0]
    assert {r["kind"] for r in reg.jobs()} == {"train", "export", "demo"}
    workspace.registry_path.unlink()
    assert len(reg.jobs()) == 3 and len(warnings) == 2


def test_corrupt_registry_is_moved_aside_and_rebuilt(workspace):
    _fake_job(workspace, "train", "20261122-000001-a-0001")
    workspace.registry_path.write_text('{"runs": {"1": {"id": ')
    warnings: list[str] = []
    records = Registry(workspace, on_warning=warnings.append).all("runs")
    assert [r["id"] for r in records] == ["20261122-000001-a-0001"]
    assert "unreadable" in warnings[0]
    assert list(workspace.root.glob("registry.corrupt-*.json"))


def test_a_broken_job_folder_does_not_stop_the_rebuild(workspace):
    _fake_job(workspace, "train", "20261122-000001-a-0001")
    bad = workspace.runs_dir / "20261122-000002-bad"
    bad.mkdir()
    (bad / "status.json").write_text("{not json")
    workspace.registry_path.unlink()
    assert [r["id"] for r in Registry(workspace, on_warning=lambda m: None).all("runs")] == ["20261122-000001-a-0001"]
