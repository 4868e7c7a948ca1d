"""The registry: a TinyDB index of runs, exports, other jobs and chats, for fast listing and search.

TinyDB's JSON storage rewrites its file in place, so a crash mid-write tears it and two processes writing at
once lose records. Here every operation opens the database under one file lock (read-modify-write is a
single critical section across processes) and the storage writes a temp file and renames it into place.
The job folders stay the truth: a registry that is missing or unreadable is rebuilt from them, with a warning.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock
from tinydb import Query, TinyDB
from tinydb.storages import MemoryStorage, Storage

from ftbench.core.atomic import atomic_write_text
from ftbench.core.layout import JobLayout

if TYPE_CHECKING:
    from ftbench.core.jobs import Job
    from ftbench.core.workspace import Workspace

TABLE_FOR_KIND = {"train": "runs", "export": "exports"}
JOB_TABLES = ("runs", "exports", "jobs")


def table_for(kind: str) -> str:
    return TABLE_FOR_KIND.get(kind, "jobs")


class CorruptRegistry(Exception):
    """registry.json exists but is not a JSON object: it is moved aside and rebuilt."""


class AtomicJSONStorage(Storage):
    """TinyDB storage that never leaves a torn file: temp file, fsync, rename."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, dict[str, Any]] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        if not text.strip():
            return None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise CorruptRegistry(str(exc)) from exc
        if not isinstance(data, dict):
            raise CorruptRegistry("top level is not an object")
        return data

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        atomic_write_text(self.path, json.dumps(data, ensure_ascii=False, default=str))

    def close(self) -> None:
        """Nothing stays open between operations: each read and write opens the file itself."""


def _unused_name(path: Path) -> Path:
    """`path`, or `path` with -2, -3 ... before its suffix: a second corrupt index never overwrites the first."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


def _stderr_warning(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def job_record(job: Job, root: Path) -> dict[str, Any]:
    """What the index keeps of a job: enough to list, filter and sort without opening its folder."""
    from ftbench.core.jobs import waiting_note

    s = job.status
    error = s.get("error") or {}
    try:
        rel = str(job.dir.relative_to(root))
    except ValueError:
        rel = str(job.dir)
    return {
        "id": job.id,
        "kind": s.get("kind"),
        "name": s.get("name"),
        "state": s.get("state"),
        "path": rel,
        "created_at": s.get("created_at"),
        "started_at": s.get("started_at"),
        "ended_at": s.get("ended_at"),
        "attempt": s.get("attempt", 1),
        "meta": s.get("meta") or {},
        "result": s.get("result") or {},
        "error": error.get("message"),
        "waiting": waiting_note(s),
    }


class Registry:
    def __init__(self, ws: Workspace, on_warning: Callable[[str], None] = _stderr_warning) -> None:
        self.ws = ws
        self.path = ws.registry_path
        self.lock = FileLock(str(self.path) + ".lock")
        self.on_warning = on_warning

    @contextmanager
    def _open(self) -> Iterator[TinyDB]:
        with self.lock:
            # Under the lock nobody is writing, so any temp file left beside the registry is from a killed writer.
            for stale in self.path.parent.glob(f".tmp-{self.path.name}-*"):
                stale.unlink(missing_ok=True)
            problem = None
            try:
                present = AtomicJSONStorage(str(self.path)).read()
            except CorruptRegistry as exc:
                problem = f"{self.path} is unreadable ({exc})"
                present = None
            if present is None:
                yield from self._rebuilt(problem)
                return
            db = TinyDB(str(self.path), storage=AtomicJSONStorage)
            try:
                yield db
            finally:
                db.close()

    def _rebuilt(self, problem: str | None) -> Iterator[TinyDB]:
        """The index rebuilt from the job folders and saved; kept in memory (with a warning) when the disk
        cannot take it, so listing still works on a full or read-only disk."""
        data, count, skipped = self._scan()
        try:
            if problem:
                aside = _unused_name(self.path.with_name(f"registry.corrupt-{time.strftime('%Y%m%d-%H%M%S')}.json"))
                os.replace(self.path, aside)
                problem += f"; moved to {aside.name}"
            AtomicJSONStorage(str(self.path)).write(data)
            saved = True
        except OSError as exc:
            problem = f"{problem or f'{self.path} was missing'}; the rebuilt index could not be saved ({exc.strerror})"
            saved = False
        if problem or count or skipped:
            self.on_warning(
                f"{problem or f'{self.path} was missing'}; rebuilt the index from {count} job folders"
                + "".join(f"; skipped {note}" for note in skipped)
                + "."
            )
        db = TinyDB(str(self.path), storage=AtomicJSONStorage) if saved else TinyDB(storage=MemoryStorage)
        if not saved:
            db.storage.write(data)
        try:
            yield db
        finally:
            db.close()

    def _scan(self) -> tuple[dict[str, dict[str, Any]], int, list[str]]:
        """Every job folder's record; with how many, and a note for each folder whose status.json is unreadable."""
        from ftbench.core.jobs import Job, job_dirs, read_status

        data: dict[str, dict[str, Any]] = {t: {} for t in JOB_TABLES}
        count, skipped = 0, []
        for job_dir in sorted(job_dirs(self.ws)):
            try:
                job = Job(job_dir, read_status(job_dir))
            except Exception as exc:  # noqa: BLE001 - one bad folder must not stop the rebuild
                skipped.append(f"{job_dir}: {getattr(exc, 'message', exc)}")
                continue
            count += 1
            data[table_for(job.status.get("kind", ""))][str(count)] = job_record(job, self.ws.root)
        return data, count, skipped

    def rebuild(self) -> int:
        with self.lock:
            data, count, skipped = self._scan()
            AtomicJSONStorage(str(self.path)).write(data)
        for note in skipped:
            self.on_warning(f"skipped {note}")
        return count

    def upsert(self, table: str, record: dict[str, Any]) -> None:
        with self._open() as db:
            db.table(table).upsert(record, Query().id == record["id"])

    def get(self, table: str, record_id: str) -> dict[str, Any] | None:
        with self._open() as db:
            found = db.table(table).get(Query().id == record_id)
        return dict(found) if found else None

    def all(self, table: str) -> list[dict[str, Any]]:
        with self._open() as db:
            return [dict(r) for r in db.table(table).all()]

    def remove(self, table: str, record_id: str) -> None:
        with self._open() as db:
            db.table(table).remove(Query().id == record_id)

    def sync_job(self, job: Job) -> None:
        """Index a job. The job folder is the truth, so a disk that refuses the index (full, read-only) is a
        warning, never a failure of the command that started or stopped the job."""
        try:
            self.upsert(table_for(job.status.get("kind", "")), job_record(job, self.ws.root))
        except OSError as exc:
            self.on_warning(f"the index {self.path} was not updated for {job.id} ({exc.strerror or exc}).")

    def jobs(self, tables: tuple[str, ...] = JOB_TABLES) -> list[dict[str, Any]]:
        """Job records from several tables at once, newest first; records whose folder is gone are dropped.

        Dropping them is index upkeep, not the caller's write: on a full or read-only disk the stale records
        are still left out of the answer, and the index is fixed the next time it can be written.
        """
        with self._open() as db:
            rows, gone = [], []
            for table in tables:
                for record in db.table(table).all():
                    if (self.ws.root / str(record.get("path", "")) / JobLayout.STATUS).is_file():
                        rows.append(dict(record))
                    else:
                        gone.append((table, record.get("id")))
            if gone:
                try:
                    for table, record_id in gone:
                        db.table(table).remove(Query().id == record_id)
                except OSError:
                    pass
        return sorted(rows, key=lambda r: r.get("created_at") or 0, reverse=True)
