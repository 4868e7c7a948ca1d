"""Lazy dataset readers: a page of rows from any file the catalog lists, without loading the whole file.

JSONL goes through a lazy line index (`jsonl_index`), CSV through a lazy record-offset index (quote-aware, so
quoted line breaks stay inside a record), Parquet by row group, Arrow through a memory map. Only a top-level
JSON array has to be parsed whole; that is the format's nature, and the reader says so in its `note`.

No torch, transformers or `datasets` here: this module runs inside the TUI process.
"""

from __future__ import annotations

import csv
import io
import json
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftbench.catalog import formats
from ftbench.catalog.jsonl_index import LineIndex
from ftbench.catalog.squad import is_squad_document, squad_rows
from ftbench.core.errors import FtbenchError
from ftbench.core.text_files import not_utf8, not_utf8_error

SAMPLE_ROWS = 8
Progress = Callable[[int, int], None]


@dataclass
class Row:
    """One row as the browser shows it: the parsed object, or why it could not be parsed."""

    index: int  # 0-based row number
    line: int | None  # 1-based line number in the file, where the file has lines
    data: dict[str, Any] | None
    error: str | None = None
    raw: str = ""


def detect_format(rows: list[dict[str, Any]]) -> str:
    """The data format of a few sample rows, by the trainer's own rules (`ftbench.catalog.formats`)."""
    return formats.detect_format(rows) or "unknown"


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
        if is_squad_document(document):
            self.note = "SQuAD layout (data > paragraphs > qas): one row per question"
            document = squad_rows(document, path)
        if isinstance(document, dict):
            lists = [v for v in document.values() if isinstance(v, list)]
            if len(lists) != 1:
                raise FtbenchError(
                    f"{path} is a JSON object, not a list of rows (found {len(lists)} list values).",
                    "Store the rows as a JSON list, or as JSON Lines (one object per line).",
                )
            document = lists[0]
        if not isinstance(document, list):
            raise FtbenchError(
                f"{path} holds a JSON {type(document).__name__}, not a list of rows.", "Store one JSON object per row."
            )
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
