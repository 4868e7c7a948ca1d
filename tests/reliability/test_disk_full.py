"""Faults, disk full: a job that fills its disk ends `failed` with the real cause, no events line is torn, no
empty job folder is left, and the read-only commands list and show everything while the disk is full.

The workspace lives on a small tmpfs mounted for each test (skipped where mounting is not allowed).
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
from small_disk import fill, free, tmpfs

from ftbench.cli import main
from ftbench.core.disk_full import RESERVE_NAME
from ftbench.core.errors import FtbenchError
from ftbench.core.events import EventWriter, read_events
from ftbench.core.jobs import start_job, wait_job
from ftbench.core.registry import Registry
from ftbench.core.workspace import Workspace

TESTS = str(Path(__file__).resolve().parents[1])
ENV = {"PYTHONPATH": os.pathsep.join([TESTS, str(Path(TESTS).parent)])}


@pytest.fixture
def small_ws(tmp_path: Path):
    with tmpfs(tmp_path / "disk", "6m") as mount:
        yield Workspace.open(mount / "ws")


def launch(ws: Workspace, target: str, **params):
    return start_job(
        ws,
        "train",
        name=target,
        params=params,
        target=f"faulttargets:{target}",
        env=ENV,
        on_launch=Registry(ws).sync_job,
    )


def whole_lines(path: Path) -> list[dict]:
    """Every line of an events file, each of which must be one whole JSON object."""
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), f"{path} ends in a torn line: {data[-80:]!r}"
    return [json.loads(line) for line in data.splitlines()]


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for folder, _dirs, files in os.walk(root):
        for name in files:
            st = (Path(folder) / name).stat()
            out[str(Path(folder) / name)] = (st.st_size, st.st_mtime_ns)
    return out


def test_a_checkpoint_that_fills_the_disk_ends_failed_with_the_cause(small_ws: Workspace) -> None:
    job = wait_job(launch(small_ws, "checkpoints_until_full", chunk=300 * 1024), timeout_s=60)
    assert job.state == "failed"
    message = job.status["error"]["message"]
    mount = small_ws.root.parent
    assert re.fullmatch(
        rf"disk full while writing checkpoint-\d+: \d+(\.\d)? (B|KB) free on {re.escape(str(mount))}\.", message
    ), message
    step = int(re.search(r"checkpoint-(\d+)", message).group(1))
    assert step == int((job.dir / "started").read_text()) + 1  # the one that did not fit, not an older one
    assert "ftbench resume" in job.status["error"]["hint"]
    lines = whole_lines(job.events_path)
    assert [e["state"] for e in lines if e["type"] == "state"] == ["running", "failed"]
    assert not (job.dir / RESERVE_NAME).exists()
    record = Registry(small_ws).get("runs", job.id)
    assert record is not None and record["state"] == "failed" and record["error"] == message


def test_an_event_the_disk_cuts_short_is_cut_back_off(small_ws: Workspace) -> None:
    path = small_ws.root / "events.jsonl"
    writer = EventWriter(path)
    writer.emit("log", level="info", message="before")
    fill(small_ws.root, leave=0)
    size = path.stat().st_size
    with pytest.raises(OSError) as caught:
        writer.emit("log", level="info", message="y" * 20000)
    assert caught.value.filename == str(path)
    assert path.stat().st_size == size
    assert [e["message"] for e in read_events(path)] == ["before"]


def test_a_job_whose_event_hits_a_full_disk_still_records_its_end(small_ws: Workspace) -> None:
    job = launch(small_ws, "waits_for_fill", size=20000)
    deadline = time.monotonic() + 30
    while not (job.dir / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    fill(small_ws.root, leave=0)
    (job.dir / "filled").touch()
    job = wait_job(job, timeout_s=30)
    assert job.state == "failed"
    assert job.status["error"]["message"].startswith("disk full while writing events.jsonl: 0 B free on ")
    lines = whole_lines(job.events_path)
    assert [e["state"] for e in lines if e["type"] == "state"] == ["running", "failed"]
    assert not any(e["type"] == "log" and "y" * 100 in e["message"] for e in lines)


def test_starting_a_job_on_a_full_disk_leaves_no_folder(small_ws: Workspace) -> None:
    small_ws.runs_dir.mkdir(parents=True, exist_ok=True)
    fill(small_ws.root, leave=4096)
    with pytest.raises(FtbenchError) as caught:
        launch(small_ws, "checkpoints_until_full")
    assert caught.value.message.startswith("disk full while writing ")
    assert list(small_ws.runs_dir.iterdir()) == []


def test_read_only_commands_work_and_write_nothing_while_the_disk_is_full(small_ws: Workspace, capsys) -> None:
    done = wait_job(launch(small_ws, "checkpoints_until_full", chunk=300 * 1024), timeout_s=60)
    assert done.state == "failed"
    small_ws.registry_path.unlink()  # the index must be rebuilt, which cannot be saved now
    fill(small_ws.root, leave=0)
    assert free(small_ws.root) == 0
    before = snapshot(small_ws.root)
    root = ["-w", str(small_ws.root)]
    assert main([*root, "runs"]) == 0
    out = capsys.readouterr()
    assert done.id[:8] in out.out and "failed" in out.out
    assert "could not be saved" in out.err
    assert main([*root, "show", done.id]) == 0
    assert "disk full while writing checkpoint-" in capsys.readouterr().out
    assert main([*root, "models"]) == 0
    assert "Traceback" not in capsys.readouterr().err
    assert main([*root, "runs", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["id"] == done.id
    after = snapshot(small_ws.root)
    assert {k: v for k, v in after.items() if not k.endswith(".lock")} == {
        k: v for k, v in before.items() if not k.endswith(".lock")
    }


def test_a_registry_write_on_a_full_disk_is_a_warning(small_ws: Workspace) -> None:
    job = wait_job(launch(small_ws, "checkpoints_until_full", chunk=300 * 1024), timeout_s=60)
    fill(small_ws.root, leave=0)
    warnings: list[str] = []
    Registry(small_ws, on_warning=warnings.append).sync_job(job)
    assert warnings == [f"the index {small_ws.registry_path} was not updated for {job.id} (No space left on device)."]
    assert Registry(small_ws, on_warning=warnings.append).get("runs", job.id)["state"] == "failed"


def test_a_vanished_job_shows_failed_on_a_full_disk_and_is_recorded_later(small_ws: Workspace, capsys) -> None:
    import socket

    folder = small_ws.runs_dir / "20261122-000000-sft-gone-ab12"
    folder.mkdir(parents=True)
    status = {"id": folder.name, "kind": "train", "state": "running", "pid": 999999, "proc_start": 1}
    status.update(created_at=time.time() - 600, host=socket.gethostname())
    (folder / "status.json").write_text(json.dumps(status))
    (folder / "merged.partial").mkdir()  # what a killed job left half written
    small_ws.registry_path.unlink(missing_ok=True)  # not indexed yet: the listing rebuilds the index in memory
    fill(small_ws.root, leave=0)
    before = (folder / "status.json").read_bytes()
    assert main(["-w", str(small_ws.root), "runs", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["state"]) for r in listed] == [(folder.name, "failed")]
    assert (folder / "status.json").read_bytes() == before  # nothing could be written: reported, not recorded
    (small_ws.root / "filler.bin").unlink()
    assert main(["-w", str(small_ws.root), "runs", "--json"]) == 0
    capsys.readouterr()
    assert json.loads((folder / "status.json").read_text())["state"] == "failed"
    assert not (folder / "merged.partial").exists()
