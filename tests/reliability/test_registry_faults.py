"""Faults, registry: the index forgets jobs whose folder is gone, says which status.json it could not read when
it rebuilds, and a second corrupt index never overwrites the backup of the first."""

from __future__ import annotations

import json
import shutil
import time

from ftbench.core.atomic import atomic_write_json
from ftbench.core.registry import Registry


def fake_job(ws, job_id: str, kind: str = "train") -> None:
    folder = ws.jobs_parent(kind) / job_id
    folder.mkdir(parents=True)
    atomic_write_json(
        folder / "status.json", {"id": job_id, "kind": kind, "state": "succeeded", "created_at": time.time()}
    )


def test_records_whose_folder_is_gone_are_dropped(workspace) -> None:
    fake_job(workspace, "20261122-000001-a-0001")
    fake_job(workspace, "20261122-000002-b-0002")
    fake_job(workspace, "20261122-000003-c-0003", kind="export")
    registry = Registry(workspace, on_warning=lambda m: None)
    registry.rebuild()
    shutil.rmtree(workspace.runs_dir / "20261122-000001-a-0001")
    shutil.rmtree(workspace.exports_dir / "20261122-000003-c-0003")
    assert [r["id"] for r in registry.jobs()] == ["20261122-000002-b-0002"]
    stored = json.loads(workspace.registry_path.read_text())
    assert [r["id"] for r in stored["runs"].values()] == ["20261122-000002-b-0002"]
    assert stored["exports"] == {}


def test_a_corrupt_status_is_named_when_the_index_is_rebuilt(workspace) -> None:
    fake_job(workspace, "20261122-000001-a-0001")
    bad = workspace.runs_dir / "20261122-000002-bad-0002"
    bad.mkdir()
    (bad / "status.json").write_text('{"id": "20261122-000002-bad-0002", "sta')
    workspace.registry_path.unlink(missing_ok=True)
    warnings: list[str] = []
    records = Registry(workspace, on_warning=warnings.append).jobs()
    assert [r["id"] for r in records] == ["20261122-000001-a-0001"]
    assert len(warnings) == 1
    assert "rebuilt the index from 1 job folders" in warnings[0]
    assert f"skipped {bad}: {bad / 'status.json'} is not valid JSON." in warnings[0]
    warnings.clear()
    assert Registry(workspace, on_warning=warnings.append).rebuild() == 1
    assert warnings == [f"skipped {bad}: {bad / 'status.json'} is not valid JSON."]


def test_a_second_corruption_keeps_the_first_backup(workspace) -> None:
    fake_job(workspace, "20261122-000001-a-0001")
    registry = Registry(workspace, on_warning=lambda m: None)
    first, second = '{"runs": {"1": {"id": "first', '{"runs": {"2": {"id": "second'
    workspace.registry_path.write_text(first)
    registry.all("runs")
    workspace.registry_path.write_text(second)
    registry.all("runs")  # within the same second: the backup name would be the same
    backups = sorted(workspace.root.glob("registry.corrupt-*.json"))
    assert sorted(p.read_text() for p in backups) == sorted([first, second])
    assert [r["id"] for r in registry.all("runs")] == ["20261122-000001-a-0001"]
