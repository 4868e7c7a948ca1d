"""Datasets on the box: discovery under the workspace roots and the Hugging Face cache, and lazy readers.

Nothing here loads a whole file to show a page: JSONL goes through a lazy line index (`jsonl_index`), CSV
through a lazy record-offset index (quote-aware, so quoted line breaks stay inside a record), Parquet by row
group, Arrow through a memory map. Only a top-level JSON array has to be parsed whole; that is the format's
nature, and the reader says so in its `note`.

No torch, transformers or `datasets` here: this module runs inside the TUI process.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ftbench.catalog import formats
from ftbench.catalog.jsonl_index import LineIndex
from ftbench.core.errors import FtbenchError

SUFFIX_KIND = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".arrow": "arrow",
}
MAX_DEPTH = 4
SAMPLE_ROWS = 8
BIG_JSON = 64 * 1024 * 1024  # a JSON array this big is not parsed during discovery
SMALL_FILE = 8 * 1024 * 1024  # files up to this size are indexed during discovery (milliseconds)
Progress = Callable[[int, int], None]


@dataclass
class Row:
    """One row as the browser shows it: the parsed object, or why it could not be parsed."""

    index: int  # 0-based row number
    line: int | None  # 1-based line number in the file, where the file has lines
    data: dict[str, Any] | None
    error: str | None = None
    raw: str = ""


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
# format detection
# ----------------------------------------------------------------------------------------------
def detect_format(rows: list[dict[str, Any]]) -> str:
    """The data format of a few sample rows, by the trainer's own rules (`ftbench.catalog.formats`)."""
    return formats.detect_format(rows) or "unknown"


# ----------------------------------------------------------------------------------------------
# readers
# ----------------------------------------------------------------------------------------------
class DatasetReader(ABC):
    """A lazily read table of rows. Subclasses implement `row_count`, `rows` and `iter_rows`."""

    kind = "?"
    note = ""

    def __init__(self, path: Path) -> None:
        self.path = path

    @abstractmethod
    def row_count(self) -> tuple[int, bool]:
        """Rows, and whether that number is exact (an estimate until the index is complete)."""

    @abstractmethod
    def rows(self, start: int, count: int) -> list[Row]:
        """`count` rows from `start`, reading only what they need."""

    def head(self, count: int) -> list[Row]:
        """The first page; readers with a lazy index serve it without indexing."""
        return self.rows(0, count)

    @abstractmethod
    def iter_rows(self, stop: threading.Event | None = None) -> Iterator[Row]:
        """Every row in order, streamed (for stats); cheap in memory."""

    def scan(self, progress: Progress | None = None, stop: threading.Event | None = None) -> bool:
        """Finish whatever index makes the row count exact; True when it is."""
        return self.row_count()[1]

    def progress_bytes(self) -> tuple[int, int]:
        """(bytes indexed, file size) for a progress bar; (1, 1) when there is nothing to index."""
        return (1, 1)

    def ready(self, index: int) -> bool:
        """Whether row `index` can be read without waiting for the index (the UI draws it only then)."""
        return True

    def search(self, text: str, start: int = 0, stop: threading.Event | None = None) -> int | None:
        """The first row at or after `start` whose text contains `text` (case-sensitive)."""
        for row in self.iter_rows(stop):
            if row.index >= start and text in (row.raw or json.dumps(row.data, ensure_ascii=False)):
                return row.index
        return None

    def columns(self) -> list[str]:
        cols: dict[str, None] = {}
        for row in self.head(SAMPLE_ROWS):
            if row.data:
                cols.update(dict.fromkeys(row.data))
        return list(cols)

    def close(self) -> None:
        return None

    def __enter__(self) -> DatasetReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


NOT_UTF8_HINT = ("Save the file as UTF-8 (in a spreadsheet: \"CSV UTF-8\"), or convert it, e.g. "
                 "`iconv -f latin1 -t utf-8 IN > OUT`.")


def not_utf8(raw: bytes, exc: UnicodeDecodeError) -> str:
    """Where and what the first byte is that is not UTF-8 text."""
    return f"not UTF-8 text (byte 0x{raw[exc.start]:02X} at column {exc.start + 1})"


def first_non_utf8(path: Path) -> tuple[int, str] | None:
    """Line number and description of the first line of `path` that is not UTF-8 text, if any."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return number, not_utf8(raw, exc)
    return None


def not_utf8_error(path: Path) -> FtbenchError:
    where = first_non_utf8(path)
    line = f" line {where[0]}" if where else ""
    what = where[1] if where else "not UTF-8 text"
    return FtbenchError(f"{path}{line} is {what}; ftbench reads data files as UTF-8.", NOT_UTF8_HINT)


def _parse_json_row(index: int, raw: bytes) -> Row:
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark (Windows editors) is not part of the row
    except UnicodeDecodeError as exc:
        return Row(index, index + 1, None, not_utf8(raw, exc), raw.decode("utf-8", "replace"))
    if not text.strip():
        return Row(index, index + 1, None, "empty line", text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return Row(index, index + 1, None, f"invalid JSON: {exc.msg} at column {exc.colno}", text)
    if not isinstance(data, dict):
        return Row(index, index + 1, None, f"a JSON {type(data).__name__}, not an object", text)
    return Row(index, index + 1, data, None, text)


class JsonlReader(DatasetReader):
    """JSON Lines through a lazy line index: row i is line i+1 of the file."""

    kind = "jsonl"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.index = LineIndex(path)

    def row_count(self) -> tuple[int, bool]:
        return self.index.row_count()

    def rows(self, start: int, count: int) -> list[Row]:
        return [_parse_json_row(start + k, raw) for k, raw in enumerate(self.index.lines(start, count))]

    def head(self, count: int) -> list[Row]:
        return [_parse_json_row(k, raw) for k, raw in enumerate(self.index.head_lines(count))]

    def scan(self, progress: Progress | None = None, stop: threading.Event | None = None) -> bool:
        return self.index.scan(progress=progress, stop=stop)

    def progress_bytes(self) -> tuple[int, int]:
        return (self.index.scanned_bytes, self.index.size)

    def ready(self, index: int) -> bool:
        return self.index.done or index < self.index.indexed_lines

    def iter_rows(self, stop: threading.Event | None = None) -> Iterator[Row]:
        with open(self.path, "rb") as handle:
            for i, raw in enumerate(handle):
                if stop is not None and stop.is_set():
                    return
                yield _parse_json_row(i, raw.rstrip(b"\r\n"))

    def search(self, text: str, start: int = 0, stop: threading.Event | None = None) -> int | None:
        hits = []
        for needle in {text.encode("utf-8"), json.dumps(text)[1:-1].encode("ascii")}:
            hit = self.index.find(needle, start, stop)
            if hit is not None:
                hits.append(hit)
        return min(hits) if hits else None

    def close(self) -> None:
        self.index.close()


class JsonArrayReader(DatasetReader):
    """A JSON document holding a list of objects (or one key holding such a list); parsed whole."""

    kind = "json"
    note = "a JSON array is parsed whole; JSONL opens lazily"

    def __init__(self, path: Path, document: Any) -> None:
        super().__init__(path)
        if isinstance(document, dict):
            lists = [v for v in document.values() if isinstance(v, list)]
            if len(lists) != 1:
                raise FtbenchError(
                    f"{path} is a JSON object, not a list of rows (found {len(lists)} list values).",
                    "Store the rows as a JSON list, or as JSON Lines (one object per line).",
                )
            document = lists[0]
        if not isinstance(document, list):
            raise FtbenchError(f"{path} holds a JSON {type(document).__name__}, not a list of rows.", "Store one JSON object per row.")
        self._items = document

    def row_count(self) -> tuple[int, bool]:
        return len(self._items), True

    def rows(self, start: int, count: int) -> list[Row]:
        return [self._row(i) for i in range(max(start, 0), min(start + count, len(self._items)))]

    def _row(self, i: int) -> Row:
        item = self._items[i]
        raw = json.dumps(item, ensure_ascii=False)
        if not isinstance(item, dict):
            return Row(i, None, None, f"item {i} is a JSON {type(item).__name__}, not an object", raw)
        return Row(i, None, item, None, raw)

    def iter_rows(self, stop: threading.Event | None = None) -> Iterator[Row]:
        for i in range(len(self._items)):
            if stop is not None and stop.is_set():
                return
            yield self._row(i)


class CsvReader(DatasetReader):
    """CSV/TSV through a lazy, quote-aware index of record start offsets (header = first record)."""

    kind = "csv"

    def __init__(self, path: Path, delimiter: str = ",") -> None:
        super().__init__(path)
        self.kind = "tsv" if delimiter == "\t" else "csv"
        self.delimiter = delimiter
        self.size = path.stat().st_size
        self._handle = open(path, "rb")  # noqa: SIM115 - closed in close()
        self._lock = threading.Lock()
        self._offsets: list[int] = []  # record starts, header first
        self._lines: list[int] = []  # 1-based line numbers of those starts
        self._pos = 0
        self._lineno = 1
        self._done = self.size == 0
        self._scan_handle = open(path, "rb")  # noqa: SIM115 - closed in close()
        self._ensure(1)
        header = self._record(0) if self._offsets else []
        self.header = [h.strip() for h in header]

    def _ensure(self, records: int | None, stop: threading.Event | None = None) -> None:
        with self._lock:
            handle = self._scan_handle
            handle.seek(self._pos)
            in_quote = False
            start = self._pos
            start_line = self._lineno
            while not self._done and (records is None or len(self._offsets) < records):
                if stop is not None and stop.is_set():
                    break
                raw = handle.readline()
                if not raw:
                    self._done = True
                    break
                if raw.count(b'"') % 2:
                    in_quote = not in_quote
                self._pos += len(raw)
                self._lineno += 1
                if not in_quote:
                    if raw.strip():
                        self._offsets.append(start)
                        self._lines.append(start_line)
                    start, start_line = self._pos, self._lineno
            if self._pos >= self.size:
                self._done = True
            # a record cut by `records`/stop restarts from its first line next time
            self._pos, self._lineno = (start, start_line) if in_quote else (self._pos, self._lineno)

    def _record(self, k: int) -> list[str]:
        begin = self._offsets[k]
        end = self._offsets[k + 1] if k + 1 < len(self._offsets) else None
        self._handle.seek(begin)
        raw = self._handle.read(end - begin) if end is not None else self._read_one_record()
        try:
            text = raw.decode("utf-8-sig" if begin == 0 else "utf-8")
        except UnicodeDecodeError as exc:
            raise not_utf8_error(self.path) from exc
        parsed = next(csv.reader(io.StringIO(text), delimiter=self.delimiter), [])
        return parsed

    def _read_one_record(self) -> bytes:
        out = b""
        in_quote = False
        while True:
            raw = self._handle.readline()
            if not raw:
                return out
            out += raw
            if raw.count(b'"') % 2:
                in_quote = not in_quote
            if not in_quote:
                return out

    def row_count(self) -> tuple[int, bool]:
        with self._lock:
            known = max(len(self._offsets) - 1, 0)
            if self._done:
                return known, True
            avg = self._pos / max(len(self._offsets), 1)
            return known + int((self.size - self._pos) / max(avg, 1.0)), False

    def scan(self, progress: Progress | None = None, stop: threading.Event | None = None) -> bool:
        while not self._done:
            if stop is not None and stop.is_set():
                return False
            self._ensure(len(self._offsets) + 20000, stop)
            if progress is not None:
                progress(self._pos, self.size)
        return True

    def progress_bytes(self) -> tuple[int, int]:
        return (self._pos, self.size)

    def ready(self, index: int) -> bool:
        return self._done or index + 2 < len(self._offsets)

    def _row(self, k: int) -> Row:
        values = self._record(k + 1)
        line = self._lines[k + 1]
        raw = self.delimiter.join(values)
        if len(values) != len(self.header):
            return Row(k, line, None, f"{len(values)} fields, the header has {len(self.header)}", raw)
        return Row(k, line, dict(zip(self.header, values, strict=True)), None, raw)

    def rows(self, start: int, count: int) -> list[Row]:
        if start < 0:
            return []
        self._ensure(start + count + 2)
        with self._lock:
            stop = min(start + count, len(self._offsets) - 1)
            return [self._row(k) for k in range(start, stop)]

    def iter_rows(self, stop: threading.Event | None = None) -> Iterator[Row]:
        try:
            yield from self._iter_rows(stop)
        except UnicodeDecodeError as exc:
            raise not_utf8_error(self.path) from exc

    def _iter_rows(self, stop: threading.Event | None) -> Iterator[Row]:
        with open(self.path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, delimiter=self.delimiter)
            next(reader, None)
            k = 0
            prev_end = reader.line_num
            for values in reader:
                line = prev_end + 1
                prev_end = reader.line_num
                if stop is not None and stop.is_set():
                    return
                if not any(v.strip() for v in values):
                    continue
                raw = self.delimiter.join(values)
                if len(values) != len(self.header):
                    yield Row(k, line, None, f"{len(values)} fields, the header has {len(self.header)}", raw)
                else:
                    yield Row(k, line, dict(zip(self.header, values, strict=True)), None, raw)
                k += 1

    def columns(self) -> list[str]:
        return list(self.header)

    def close(self) -> None:
        self._handle.close()
        self._scan_handle.close()


class _TableReader(DatasetReader):
    """Shared paging for columnar sources made of chunks (Parquet row groups, Arrow record batches)."""

    def __init__(self, path: Path, chunk_rows: list[int]) -> None:
        super().__init__(path)
        self._starts = [0]
        for n in chunk_rows:
            self._starts.append(self._starts[-1] + n)
        self._cache: OrderedDict[int, list[dict[str, Any]]] = OrderedDict()

    @abstractmethod
    def _load_chunk(self, i: int) -> list[dict[str, Any]]:
        """Rows of chunk `i` (a row group or record batch) as dicts."""

    def _chunk(self, i: int) -> list[dict[str, Any]]:
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        rows = self._load_chunk(i)
        self._cache[i] = rows
        while len(self._cache) > 2:
            self._cache.popitem(last=False)
        return rows

    def row_count(self) -> tuple[int, bool]:
        return self._starts[-1], True

    def rows(self, start: int, count: int) -> list[Row]:
        import bisect

        out: list[Row] = []
        k = max(start, 0)
        end = min(start + count, self._starts[-1])
        while k < end:
            ci = bisect.bisect_right(self._starts, k) - 1
            chunk = self._chunk(ci)
            offset = k - self._starts[ci]
            take = min(end - k, len(chunk) - offset)
            for j in range(take):
                data = chunk[offset + j]
                out.append(Row(k + j, None, data, None, json.dumps(data, ensure_ascii=False, default=str)))
            k += take
        return out

    def iter_rows(self, stop: threading.Event | None = None) -> Iterator[Row]:
        k = 0
        for ci in range(len(self._starts) - 1):
            if stop is not None and stop.is_set():
                return
            for data in self._load_chunk(ci):
                yield Row(k, None, data, None, json.dumps(data, ensure_ascii=False, default=str))
                k += 1


class ParquetReader(_TableReader):
    """Parquet read one row group at a time; the row count comes exact from the footer."""

    kind = "parquet"

    def __init__(self, path: Path) -> None:
        import pyarrow.parquet as pq

        self._file = pq.ParquetFile(path, memory_map=True)
        meta = self._file.metadata
        super().__init__(path, [meta.row_group(i).num_rows for i in range(meta.num_row_groups)])

    def _load_chunk(self, i: int) -> list[dict[str, Any]]:
        return self._file.read_row_group(i).to_pylist()

    def columns(self) -> list[str]:
        return list(self._file.schema_arrow.names)


class ArrowReader(_TableReader):
    """Arrow IPC files or streams (what `datasets` writes), memory-mapped; several files read as one."""

    kind = "arrow"

    def __init__(self, paths: list[Path], display: Path | None = None) -> None:
        import pyarrow as pa

        batches = []
        for p in paths:
            source = pa.memory_map(str(p), "r")
            try:
                reader = pa.ipc.open_file(source)
                batches.extend(reader.get_batch(i) for i in range(reader.num_record_batches))
            except pa.ArrowInvalid:
                source = pa.memory_map(str(p), "r")
                batches.extend(pa.ipc.open_stream(source))
        self._batches = [b for b in batches if b.num_rows]
        self._names = list(batches[0].schema.names) if batches else []
        super().__init__(display or paths[0], [b.num_rows for b in self._batches])

    def _load_chunk(self, i: int) -> list[dict[str, Any]]:
        return self._batches[i].to_pylist()

    def columns(self) -> list[str]:
        return list(self._names)


def _hf_disk_files(folder: Path) -> list[Path]:
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


def _looks_like_jsonl(path: Path) -> bool:
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
        files = _hf_disk_files(p)
        if not files:
            raise FtbenchError(f"{p} holds no dataset: no .arrow files and no state.json.", "Point at a data file or a datasets.save_to_disk split folder.")
        reader: DatasetReader = ArrowReader(files, display=p)
        reader.kind = "hf_disk"
        return reader
    if not p.is_file():
        raise FtbenchError(f"Dataset {p} does not exist.", "Run `ftbench datasets` to list the datasets ftbench can see.")
    kind = SUFFIX_KIND.get(p.suffix.lower())
    try:
        if kind == "jsonl":
            return JsonlReader(p)
        if kind == "json":
            if _looks_like_jsonl(p):
                reader = JsonlReader(p)
                reader.kind = "json"
                return reader
            with open(p, encoding="utf-8") as handle:
                return JsonArrayReader(p, json.load(handle))
        if kind in ("csv", "tsv"):
            return CsvReader(p, "\t" if kind == "tsv" else ",")
        if kind == "parquet":
            return ParquetReader(p)
        if kind == "arrow":
            return ArrowReader([p])
    except json.JSONDecodeError as exc:
        raise FtbenchError(f"{p} line {exc.lineno}: invalid JSON ({exc.msg}).", "Fix that line, or store the rows as JSON Lines.") from exc
    except (OSError, ValueError) as exc:
        raise FtbenchError(f"Cannot read {p}: {exc}.", "Check that the file is complete and in the format its suffix says.") from exc
    raise FtbenchError(
        f"{p.name} has suffix '{p.suffix}', which ftbench cannot read.",
        "Use .jsonl, .json, .csv, .tsv, .parquet, .arrow, or a datasets.save_to_disk folder.",
    )


# ----------------------------------------------------------------------------------------------
# discovery
# ----------------------------------------------------------------------------------------------
def describe(path: Path, source: str, name: str | None = None) -> DatasetInfo:
    """A DatasetInfo for one dataset, opened just long enough to read a sample and a row count."""
    files = _hf_disk_files(path) if path.is_dir() else [path]
    size = sum(f.stat().st_size for f in files if f.exists())
    mtime = max((f.stat().st_mtime for f in files if f.exists()), default=path.stat().st_mtime)
    kind = "hf_disk" if path.is_dir() else SUFFIX_KIND.get(path.suffix.lower(), "?")
    info = DatasetInfo(name=name or path.name, path=str(path), kind=kind, source=source, size_bytes=size, mtime=mtime)
    if kind == "json" and size > BIG_JSON and not _looks_like_jsonl(path):
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


def _walk(root: Path, source: str, prefix: str = "") -> Iterator[DatasetInfo]:
    if not root.is_dir():
        return
    root_depth = len(root.parts)
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if len(here.parts) - root_depth >= MAX_DEPTH:
            dirnames[:] = []
        rel = here.relative_to(root)
        if (here / "state.json").is_file() and any(here.glob("*.arrow")):
            yield describe(here, source, prefix + str(rel))  # one datasets.save_to_disk split
            dirnames[:] = []
            continue
        for fname in sorted(filenames):
            if fname.startswith(".") or Path(fname).suffix.lower() not in SUFFIX_KIND:
                continue
            if fname.endswith(".json") and fname in ("dataset_info.json", "state.json", "dataset_dict.json"):
                continue
            yield describe(here / fname, source, prefix + str(rel / fname) if str(rel) != "." else prefix + fname)


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache folder, honouring HF_HUB_CACHE and HF_HOME like huggingface_hub does."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface").expanduser()
    return home / "hub"


def hf_datasets_cache() -> Path:
    if os.environ.get("HF_DATASETS_CACHE"):
        return Path(os.environ["HF_DATASETS_CACHE"]).expanduser()
    home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface").expanduser()
    return home / "datasets"


def hf_cache_repos(repo_type: str) -> list[tuple[str, Path]]:
    """(repo id, newest snapshot folder) for each cached repo of `repo_type`, via huggingface_hub's scan."""
    cache = hf_hub_cache()
    if not cache.is_dir():
        return []
    try:
        from huggingface_hub import scan_cache_dir

        info = scan_cache_dir(cache)
    except Exception:  # noqa: BLE001 - a corrupt cache must not break the listing
        return []
    out = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        if repo.repo_type != repo_type or not repo.revisions:
            continue
        newest = max(repo.revisions, key=lambda r: r.last_modified)
        out.append((repo.repo_id, Path(newest.snapshot_path)))
    return out


_ARROW_SPLIT = re.compile(r"^(?P<builder>.+?)-(?P<split>[A-Za-z0-9_.]+?)(?:-\d{5}-of-\d{5})?\.arrow$")


def _datasets_lib_cache(cache: Path) -> Iterator[DatasetInfo]:
    """Splits prepared by `datasets.load_dataset` (folders of <builder>-<split>[-NNNNN-of-NNNNN].arrow)."""
    if not cache.is_dir():
        return
    for info_file in sorted(cache.glob("**/dataset_info.json")):
        folder = info_file.parent
        if (folder / "state.json").is_file():
            continue  # a save_to_disk folder, listed by the roots walk when it is under a root
        groups: dict[str, list[Path]] = {}
        for f in sorted(folder.glob("*.arrow")):
            m = _ARROW_SPLIT.match(f.name)
            if m:
                groups.setdefault(m["split"], []).append(f)
        rel = folder.relative_to(cache).parts
        label = "/".join(rel[:2]) if len(rel) >= 2 else str(folder.relative_to(cache))
        for split, files in groups.items():
            info = describe(files[0], "hf-cache", f"{label}:{split}")
            if len(files) > 1:
                with ArrowReader(files) as reader:
                    info.rows, info.rows_exact = reader.row_count()
                info.size_bytes = sum(f.stat().st_size for f in files)
            yield info


def discover_datasets(ws: Any, hf_cache: bool | None = None) -> list[DatasetInfo]:
    """Every dataset under the workspace's dataset roots, then (if enabled) the Hugging Face caches."""
    out: list[DatasetInfo] = []
    for root in ws.dataset_roots():
        out.extend(_walk(root, str(root)))
    if ws.config.scan_hf_cache if hf_cache is None else hf_cache:
        for repo_id, snapshot in hf_cache_repos("dataset"):
            out.extend(_walk(snapshot, "hf-cache", prefix=f"{repo_id}:"))
        out.extend(_datasets_lib_cache(hf_datasets_cache()))
    return out


# ----------------------------------------------------------------------------------------------
# stats
# ----------------------------------------------------------------------------------------------
@dataclass
class DatasetStats:
    """What the Stats panel shows; every number computed from every row."""

    rows: int = 0
    bad_rows: list[tuple[int | None, str]] = field(default_factory=list)  # (line or row, why)
    bad_count: int = 0
    duplicates: int = 0
    labels: dict[str, int] = field(default_factory=dict)
    tags: dict[str, int] = field(default_factory=dict)
    token_lengths: dict[str, Any] = field(default_factory=dict)  # histogram, mean, p50, p95, max, over
    seconds: float = 0.0
    format: str = "unknown"
    complete: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def row_text(data: dict[str, Any]) -> str:
    """The text a tokenizer would see for a row: chat turns joined, else every string field joined."""
    for key in ("messages", "conversations"):
        turns = data.get(key)
        if isinstance(turns, list):
            parts = []
            for t in turns:
                if isinstance(t, dict):
                    parts.append(str(t.get("content", t.get("value", ""))))
            return "\n".join(parts)
    parts = []
    for value in data.values():
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            parts.append(" ".join(value))
    return "\n".join(parts)


def load_tokenizer(path: str | os.PathLike[str]) -> Any:
    """A `tokenizers.Tokenizer` from a tokenizer.json or a model folder holding one (never transformers)."""
    from tokenizers import Tokenizer

    p = Path(path)
    file = p / "tokenizer.json" if p.is_dir() else p
    if not file.is_file():
        raise FtbenchError(f"{p} has no tokenizer.json.", "Pick a model folder with a fast tokenizer (tokenizer.json).")
    tokenizer = Tokenizer.from_file(str(file))
    tokenizer.no_truncation()  # a tokenizer.json may carry truncation (BERT: 128) or padding that would fake lengths
    tokenizer.no_padding()
    return tokenizer


def _label_keys(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def compute_stats(
    reader: DatasetReader,
    tokenizer: Any = None,
    max_length: int | None = None,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    bins: int = 20,
    keep_bad: int = 200,
) -> DatasetStats:
    """Stats over every row, streamed: bad rows with line numbers, duplicates, label/tag counts, token lengths.

    Runs off the UI thread; `progress(done, total)` is called every few thousand rows and `stop` ends it early
    (`complete=False`).
    """
    import hashlib
    from collections import Counter

    import numpy as np

    t0 = time.perf_counter()
    stats = DatasetStats()
    total, _ = reader.row_count()
    seen: set[bytes] = set()
    labels: Counter[str] = Counter()
    tags: Counter[str] = Counter()
    lengths: list[int] = []
    batch: list[str] = []

    def flush() -> None:
        if tokenizer is not None and batch:
            lengths.extend(len(e.ids) for e in tokenizer.encode_batch(batch))
        batch.clear()

    fmt = detect_format([r.data for r in reader.head(SAMPLE_ROWS) if r.data])
    for row in reader.iter_rows(stop):
        stats.rows += 1
        if row.error is None and row.data is not None and fmt != "unknown":
            problem = formats.row_problem(fmt, row.data)
            if problem:
                row = Row(row.index, row.line, None, problem, row.raw)
        if row.error is not None or row.data is None:
            stats.bad_count += 1
            if len(stats.bad_rows) < keep_bad:
                stats.bad_rows.append((row.line if row.line is not None else row.index + 1, row.error or "unreadable"))
        else:
            data = row.data
            key = hashlib.blake2b(json.dumps(data, sort_keys=True, default=str).encode(), digest_size=12).digest()
            if key in seen:
                stats.duplicates += 1
            else:
                seen.add(key)
            for name in ("label", "labels"):
                if name in data and data[name] is not None and not (name == "labels" and "tokens" in data):
                    labels.update(_label_keys(data[name]))
            for name in ("ner_tags", "tags"):
                if isinstance(data.get(name), list):
                    tags.update(_label_keys(data[name]))
            if tokenizer is not None:
                batch.append(row_text(data))
                if len(batch) >= 512:
                    flush()
        if progress is not None and stats.rows % 5000 == 0:
            progress(stats.rows, max(total, stats.rows))
    flush()
    stats.format = fmt
    stats.complete = not (stop is not None and stop.is_set())
    stats.labels = dict(labels.most_common())
    stats.tags = dict(tags.most_common())
    if lengths:
        arr = np.asarray(lengths)
        counts, edges = np.histogram(arr, bins=min(bins, max(1, int(arr.max() - arr.min() + 1))))
        stats.token_lengths = {
            "counts": counts.tolist(),
            "edges": [float(e) for e in edges],
            "mean": float(arr.mean()),
            "p50": float(np.percentile(arr, 50)),
            "p95": float(np.percentile(arr, 95)),
            "max": int(arr.max()),
            "max_length": max_length,
            "over": int((arr > max_length).sum()) if max_length else 0,
            "over_share": float((arr > max_length).mean()) if max_length else 0.0,
        }
    if progress is not None:
        progress(stats.rows, stats.rows)
    stats.seconds = time.perf_counter() - t0
    return stats
