"""Datasets on the box: which files and folders are datasets, how to open one, and a progressive listing.

Discovery walks the workspace's dataset roots and (when enabled) the Hugging Face caches. `DatasetCatalog`
lists each dataset from one stat (name, kind, size, age) and reads its details (rows, format, columns) only
when the metadata cache has nothing for those exact files; `discover_datasets` is the whole list at once.
Readers live in `readers`, stats in `stats`; their public names are importable from here too.

No torch, transformers or `datasets` here: this module runs inside the TUI process.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ftbench.catalog.cache import Listed, MetadataCache, cache_path, complete, fill_from_cache, read_and_store
from ftbench.catalog.hf_cache import hf_cache_repos, hf_datasets_cache
from ftbench.catalog.readers import (
    SAMPLE_ROWS,
    ArrowReader,
    CsvReader,
    DatasetReader,
    JsonArrayReader,
    JsonlReader,
    ParquetReader,
    Row,
    detect_format,
)
from ftbench.catalog.stats import DatasetStats, compute_stats, load_tokenizer, row_text
from ftbench.catalog.walk import fingerprint, walk
from ftbench.core.errors import FtbenchError
from ftbench.core.text_files import read_text

__all__ = [
    "ArrowReader",
    "CsvReader",
    "DatasetCatalog",
    "DatasetInfo",
    "DatasetReader",
    "DatasetStats",
    "JsonArrayReader",
    "JsonlReader",
    "ParquetReader",
    "Row",
    "compute_stats",
    "describe",
    "detect_format",
    "discover_datasets",
    "load_tokenizer",
    "open_dataset",
    "row_text",
]

SUFFIX_KIND = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".arrow": "arrow",
}
NOT_DATA = ("dataset_info.json", "state.json", "dataset_dict.json")  # metadata files `datasets` writes
MAX_DEPTH = 4
LIB_CACHE_DEPTH = 6  # <cache>/<builder>/<config>/<version>/<hash>/ and a little slack
BIG_JSON = 64 * 1024 * 1024  # a JSON array this big is not parsed during discovery
SMALL_FILE = 8 * 1024 * 1024  # files up to this size are indexed during discovery (milliseconds)
CACHE_VERSION = 1  # bump when `describe` reads more or differently: every cached entry is then re-read


@dataclass
class DatasetInfo:
    """One entry of the Datasets list: enough to show it without opening it again."""

    name: str
    path: str
    kind: str  # jsonl | json | csv | tsv | parquet | arrow | hf_disk
    source: str  # "workspace" root path or "hf-cache"
    size_bytes: int
    mtime: float
    rows: int | None = None
    rows_exact: bool = False
    format: str = "unknown"
    columns: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------------------------
# opening one
# ----------------------------------------------------------------------------------------------
def hf_disk_files(folder: Path) -> list[Path]:
    """The Arrow files of one `save_to_disk` split folder, in order (state.json lists them)."""
    state = folder / "state.json"
    if state.is_file():
        try:
            names = [f["filename"] for f in json.loads(state.read_text(encoding="utf-8")).get("_data_files", [])]
            if names:
                return [folder / n for n in names]
        except (json.JSONDecodeError, KeyError, TypeError):
            pass
    return sorted(folder.glob("*.arrow"))


def looks_like_jsonl(path: Path) -> bool:
    """A .json file that is really JSON Lines: its first line is a whole object and another follows."""
    with open(path, "rb") as handle:
        first = handle.readline()
        second = handle.readline()
    try:
        json.loads(first)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return second.strip().startswith(b"{")


def open_dataset(path: str | os.PathLike[str]) -> DatasetReader:
    """A reader for a file or a `save_to_disk` folder; `FtbenchError` when it is neither."""
    p = Path(path)
    if p.is_dir():
        files = hf_disk_files(p)
        if not files:
            raise FtbenchError(
                f"{p} holds no dataset: no .arrow files and no state.json.",
                "Point at a data file or a datasets.save_to_disk split folder.",
            )
        reader: DatasetReader = ArrowReader(files, display=p)
        reader.kind = "hf_disk"
        return reader
    if not p.is_file():
        raise FtbenchError(
            f"Dataset {p} does not exist.", "Run `ftbench datasets` to list the datasets ftbench can see."
        )
    kind = SUFFIX_KIND.get(p.suffix.lower())
    try:
        if kind == "jsonl":
            return JsonlReader(p)
        if kind == "json":
            if looks_like_jsonl(p):
                reader = JsonlReader(p)
                reader.kind = "json"
                return reader
            return JsonArrayReader(p, json.loads(read_text(p, "data files")))
        if kind in ("csv", "tsv"):
            return CsvReader(p, "\t" if kind == "tsv" else ",")
        if kind == "parquet":
            return ParquetReader(p)
        if kind == "arrow":
            return ArrowReader([p])
    except json.JSONDecodeError as exc:
        raise FtbenchError(
            f"{p} line {exc.lineno}: invalid JSON ({exc.msg}).", "Fix that line, or store the rows as JSON Lines."
        ) from exc
    except (OSError, ValueError) as exc:
        raise FtbenchError(
            f"Cannot read {p}: {str(exc).rstrip('.')}.",
            "Check that the file is complete and in the format its suffix says.",
        ) from exc
    raise FtbenchError(
        f"{p} has suffix '{p.suffix}', which ftbench cannot read as a dataset.",
        "Use .jsonl, .json, .csv, .tsv, .parquet, .arrow, or a datasets.save_to_disk folder.",
    )


# ----------------------------------------------------------------------------------------------
# details of one
# ----------------------------------------------------------------------------------------------
def describe(path: Path, source: str, name: str | None = None) -> DatasetInfo:
    """A DatasetInfo for one dataset, opened just long enough to read a sample and a row count."""
    files = hf_disk_files(path) if path.is_dir() else [path]
    size = sum(f.stat().st_size for f in files if f.exists())
    mtime = max((f.stat().st_mtime for f in files if f.exists()), default=path.stat().st_mtime)
    kind = "hf_disk" if path.is_dir() else SUFFIX_KIND.get(path.suffix.lower(), "?")
    info = DatasetInfo(name=name or path.name, path=str(path), kind=kind, source=source, size_bytes=size, mtime=mtime)
    if kind == "json" and size > BIG_JSON and not looks_like_jsonl(path):
        info.error = f"a {size / 1024**2:.0f} MB JSON array is only read when opened (it has to be parsed whole)"
        return info
    try:
        with open_dataset(path) as reader:
            if size <= SMALL_FILE:
                reader.scan()  # small enough to count exactly right away
            info.rows, info.rows_exact = reader.row_count()
            sample = [r.data for r in reader.head(SAMPLE_ROWS) if r.data]
            info.columns = reader.columns()
            info.format = detect_format(sample)
    except FtbenchError as exc:
        info.error = exc.message
    except Exception as exc:  # noqa: BLE001 - one broken file must not hide the others
        info.error = f"{type(exc).__name__}: {exc}"
    return info


def _split_reader(files: list[Path], name: str) -> Callable[[], DatasetInfo]:
    return lambda: _describe_split(files, name)


def _describe_split(files: list[Path], name: str) -> DatasetInfo:
    """A `load_dataset` split stored as several Arrow shards: the first describes it, all are counted."""
    info = describe(files[0], "hf-cache", name)
    if len(files) > 1:
        with ArrowReader(files) as reader:
            info.rows, info.rows_exact = reader.row_count()
        info.size_bytes = sum(f.stat().st_size for f in files)
    return info


# ----------------------------------------------------------------------------------------------
# the listing
# ----------------------------------------------------------------------------------------------
_ARROW_SPLIT = re.compile(r"^(?P<builder>.+?)-(?P<split>[A-Za-z0-9_.]+?)(?:-\d{5}-of-\d{5})?\.arrow$")


def _is_data_file(fname: str) -> bool:
    return not fname.startswith(".") and Path(fname).suffix.lower() in SUFFIX_KIND and fname not in NOT_DATA


class DatasetCatalog:
    """Datasets under the workspace's roots, then the Hugging Face caches; details cached in the workspace."""

    def __init__(self, ws: Any, hf_cache: bool | None = None) -> None:
        self.ws = ws
        self.scan_hf_cache = ws.config.scan_hf_cache if hf_cache is None else hf_cache
        self.notes: list[str] = []
        self.cache = MetadataCache(cache_path(ws.root, "datasets"), CACHE_VERSION)

    def listing(self, stop: threading.Event | None = None) -> Iterator[Listed[DatasetInfo]]:
        """Every dataset with name, kind, size and age (one stat each); details already there when cached."""
        for root in self.ws.dataset_roots():
            yield from self._walk(root, str(root), "", stop)
        if self.scan_hf_cache:
            for repo_id, snapshot in hf_cache_repos("dataset", self.notes):
                yield from self._walk(snapshot, "hf-cache", f"{repo_id}:", stop)
            yield from self._lib_cache(hf_datasets_cache(), stop)

    def details(self, entry: Listed[DatasetInfo]) -> DatasetInfo:
        return read_and_store(self.cache, entry)

    def save(self) -> None:
        self.cache.save()

    def _walk(
        self, root: Path, source: str, prefix: str, stop: threading.Event | None
    ) -> Iterator[Listed[DatasetInfo]]:
        for folder in walk(root, MAX_DEPTH, self.notes, follow_links=False, stop=stop):
            if folder.has_file("state.json") and any(f.endswith(".arrow") for f in folder.files):
                folder.descend = []  # one datasets.save_to_disk split
                yield self._entry(folder.path, hf_disk_files(folder.path), source, prefix + folder.rel, "hf_disk")
                continue
            for fname in folder.files:
                if _is_data_file(fname):
                    name = prefix + (fname if folder.rel == "." else f"{folder.rel}/{fname}")
                    path = folder.path / fname
                    yield self._entry(path, [path], source, name, SUFFIX_KIND[path.suffix.lower()])

    def _lib_cache(self, cache: Path, stop: threading.Event | None) -> Iterator[Listed[DatasetInfo]]:
        """Splits prepared by `datasets.load_dataset` (folders of <builder>-<split>[-NNNNN-of-NNNNN].arrow)."""
        for folder in walk(cache, LIB_CACHE_DEPTH, self.notes, stop=stop):
            if folder.depth == 0:
                folder.descend = [d for d in folder.descend if d != "downloads"]  # raw downloads, not splits
            if not folder.has_file("dataset_info.json") or folder.has_file("state.json"):
                continue  # a save_to_disk folder is listed by the roots walk when it is under a root
            groups: dict[str, list[Path]] = {}
            for fname in folder.files:
                m = _ARROW_SPLIT.match(fname)
                if m:
                    groups.setdefault(m["split"], []).append(folder.path / fname)
            parts = folder.rel.split("/")
            label = "/".join(parts[:2])
            for split, files in groups.items():
                yield self._entry(
                    files[0], files, "hf-cache", f"{label}:{split}", "arrow", _split_reader(files, f"{label}:{split}")
                )

    def _entry(
        self,
        path: Path,
        files: list[Path],
        source: str,
        name: str,
        kind: str,
        read: Callable[[], DatasetInfo] | None = None,
    ) -> Listed[DatasetInfo]:
        mark = fingerprint(files)  # a save_to_disk folder: its Arrow files (state.json changes with them)
        mtime = mark.mtime or path.stat().st_mtime
        info = DatasetInfo(name=name, path=str(path), kind=kind, source=source, size_bytes=mark.size, mtime=mtime)
        entry = Listed(f"{path}|{name}", info, mark.digest, read or (lambda: describe(path, source, name)))
        fill_from_cache(self.cache, entry, lambda stored: DatasetInfo(**{**stored, "name": name, "source": source}))
        return entry


def discover_datasets(ws: Any, hf_cache: bool | None = None, notes: list[str] | None = None) -> list[DatasetInfo]:
    """Every dataset under the workspace's dataset roots, then (if enabled) the Hugging Face caches."""
    catalog = DatasetCatalog(ws, hf_cache)
    found = complete(catalog)
    if notes is not None:
        notes.extend(catalog.notes)
    return found
