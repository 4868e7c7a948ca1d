"""The catalog's metadata cache and the shape of a progressive listing.

Discovery is split in two so a screen can show rows at once: `listing()` yields cheap entries (name, kind,
size: one folder listing or one stat each) and `details()` fills in what needs reading files (parameters,
architecture, rows, format). Details are remembered in the workspace (`.cache/catalog-*.json`), keyed by
path and a fingerprint of the files they were read from (size, mtime, inode), so a second visit or a rescan
reads nothing that has not changed. The cache is an optimisation only: a missing, stale, corrupt or
unwritable file means the details are read again, never an error.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from ftbench.core.atomic import atomic_write_text

CACHE_FOLDER = ".cache"  # a dot folder: model and dataset walks skip it even when a root is the workspace
T = TypeVar("T")
DETAIL_WORKERS = min(8, os.cpu_count() or 1)


def cache_path(workspace_root: Path, kind: str) -> Path:
    return workspace_root / CACHE_FOLDER / f"catalog-{kind}.json"


class MetadataCache:
    """Details by path, valid while the fingerprint matches; loaded on first use, merged into the file on save.

    `version` names the code that produced the entries: a catalog that reads more (or differently) bumps it
    and every old entry is a miss. Thread-safe, so a screen's worker and the UI can share one.
    """

    def __init__(self, path: Path, version: int) -> None:
        self.path = path
        self.version = version
        self._entries: dict[str, dict[str, Any]] | None = None
        self._dirty: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def _read_file(self) -> dict[str, dict[str, Any]]:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(doc, dict) or doc.get("version") != self.version or not isinstance(doc.get("entries"), dict):
            return {}
        return {k: v for k, v in doc["entries"].items() if isinstance(v, dict) and isinstance(v.get("info"), dict)}

    def _loaded(self) -> dict[str, dict[str, Any]]:
        if self._entries is None:
            self._entries = self._read_file()
        return self._entries

    def get(self, key: str, fingerprint: str) -> dict[str, Any] | None:
        """The stored details for `key` if they were read from files with this fingerprint."""
        with self._lock:
            entry = self._loaded().get(key)
            if entry is not None and entry.get("fingerprint") == fingerprint:
                self.hits += 1
                return dict(entry["info"])
            self.misses += 1
            return None

    def put(self, key: str, fingerprint: str, info: dict[str, Any]) -> None:
        with self._lock:
            entry = {"fingerprint": fingerprint, "path": info.get("path", key), "info": info}
            self._loaded()[key] = entry
            self._dirty[key] = entry

    def save(self) -> None:
        """Merge what changed into the file (another process may have saved meanwhile); drop vanished paths."""
        with self._lock:
            if not self._dirty:
                return
            merged = self._read_file()
            merged.update(self._dirty)
            merged = {k: v for k, v in merged.items() if k in self._dirty or os.path.lexists(str(v.get("path", k)))}
            try:
                atomic_write_text(
                    self.path, json.dumps({"version": self.version, "entries": merged}, separators=(",", ":"))
                )
            except OSError:
                return  # a read-only workspace just means no cache
            self._dirty.clear()


@dataclass
class Listed(Generic[T]):
    """One row of a progressive listing: `info` has name/kind/size now and the rest once `complete`."""

    key: str  # unique within one listing and the cache key: the path, and the name where paths can repeat
    info: T
    fingerprint: str
    read: Callable[[], T]  # reads the details from disk
    complete: bool = False


class Catalog(Protocol[T]):
    """What a screen drives: a cheap listing, details per entry, notes about skipped folders, and a save."""

    notes: list[str]

    def listing(self, stop: threading.Event | None = None) -> Iterator[Listed[T]]: ...

    def details(self, entry: Listed[T]) -> T: ...

    def save(self) -> None: ...


def fill_from_cache(cache: MetadataCache, entry: Listed[Any], rebuild: Callable[[dict[str, Any]], Any]) -> None:
    """Complete `entry` from the cache when its files are unchanged; `rebuild` turns stored details into an info."""
    stored = cache.get(entry.key, entry.fingerprint)
    if stored is None:
        return
    try:
        entry.info = rebuild(stored)
    except (TypeError, ValueError, KeyError):
        return  # written by other code: the details are read again
    entry.complete = True


def read_and_store(cache: MetadataCache, entry: Listed[Any]) -> Any:
    """Read `entry`'s details from disk and remember them under its fingerprint."""
    info = entry.read()
    cache.put(entry.key, entry.fingerprint, info.to_dict())
    return info


def complete(catalog: Catalog[T], stop: threading.Event | None = None) -> list[T]:
    """Every entry with its details, in listing order (what the CLI prints); saves the cache."""
    out = fill_details(catalog, list(catalog.listing(stop)))
    catalog.save()
    return out


def fill_details(catalog: Catalog[T], entries: list[Listed[T]], workers: int = DETAIL_WORKERS) -> list[T]:
    """The details of `entries` in their order, read by a few threads.

    Most of the work is file reads and numpy scans that release the GIL, and on a network file system the
    waits overlap.
    """
    from concurrent.futures import ThreadPoolExecutor

    if all(e.complete for e in entries):  # a warm visit: nothing to read, so no threads to start
        return [e.info for e in entries]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda e: e.info if e.complete else catalog.details(e), entries))
