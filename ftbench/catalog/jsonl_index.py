"""A lazy line-offset index over a line-oriented file (JSONL), so a multi-GB file opens at once.

Toolong-style: the file is memory-mapped, the first page is served straight from the map before anything
is indexed, and the line breaks are found chunk by chunk (numpy on a 4 MiB window) in whatever thread
calls `scan()`. Each scanned window is dropped from the process with `madvise(MADV_DONTNEED)`, so indexing
a 1 GB file does not leave 1 GB of file pages counted in the process RSS; only the offsets (8 bytes a line,
kept as one array per chunk so the index never copies itself to grow) are kept. Reading line i touches one or two pages.

Until the scan has finished, `row_count()` is an estimate from the average length of the lines seen so far;
`exact` says which one the caller got.
"""

from __future__ import annotations

import bisect
import mmap
import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

CHUNK = 4 * 1024 * 1024  # bytes scanned per step; a multiple of the page size
SAMPLE = 1024 * 1024  # bytes read to estimate the average line length before any scan


class LineIndex:
    """Offsets of the starts of the lines of one file, built lazily and thread-safely."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._file = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        self.size = os.fstat(self._file.fileno()).st_size
        self._mm: mmap.mmap | None = None
        if self.size:
            self._mm = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        self._lock = threading.Lock()
        # Line starts, one int64 array per scanned chunk; _firsts[i] is the line number of _chunks[i][0].
        self._chunks: list[np.ndarray] = [np.zeros(1, dtype=np.int64)] if self.size else []
        self._firsts: list[int] = [0] if self.size else []
        self._first_offsets: list[int] = [0] if self.size else []
        self._n = 1 if self.size else 0
        self._scanned = 0  # bytes of the file already searched for line breaks
        self._done = self.size == 0
        self._avg_line = self._sample_average()

    # -- lifecycle -----------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            if self._mm is not None:
                self._mm.close()
                self._mm = None
            self._file.close()

    def __enter__(self) -> LineIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- state ---------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self._done

    @property
    def scanned_bytes(self) -> int:
        return self._scanned

    @property
    def indexed_lines(self) -> int:
        """Lines whose start and end are both known."""
        with self._lock:
            return self._complete_lines()

    def row_count(self) -> tuple[int, bool]:
        """(number of lines, exact?) — an estimate from the average line length until the scan is done."""
        with self._lock:
            if self._done:
                return self._complete_lines(), True
            known = self._complete_lines()
            if self._scanned:
                avg = self._scanned / max(known, 1)
            else:
                avg = self._avg_line
            rest = (self.size - self._scanned) / max(avg, 1.0)
            return max(known + int(round(rest)), known), False

    # -- scanning ------------------------------------------------------------------------------
    def scan(
        self,
        until_line: int | None = None,
        progress: Callable[[int, int], None] | None = None,
        stop: threading.Event | None = None,
    ) -> bool:
        """Find line breaks until line `until_line` is known (None: the whole file). True when done."""
        while True:
            with self._lock:
                if self._done or (until_line is not None and self._complete_lines() > until_line):
                    return self._done
                if stop is not None and stop.is_set():
                    return False
                self._scan_chunk()
                scanned, done = self._scanned, self._done
            if progress is not None:
                progress(scanned, self.size)
            if done:
                return True

    def _scan_chunk(self) -> None:
        mm = self._mm
        assert mm is not None
        start = self._scanned
        length = min(CHUNK, self.size - start)
        window = np.frombuffer(mm, dtype=np.uint8, count=length, offset=start)
        breaks = np.flatnonzero(window == 10)
        del window
        if breaks.size:
            new = breaks.astype(np.int64)
            new += start + 1
            if new[-1] >= self.size:  # a break at the very end starts no new line
                new = new[:-1]
            if new.size:
                self._append(new)
        self._scanned = start + length
        self._drop_pages(start, start + length)
        if self._scanned >= self.size:
            self._done = True

    def _drop_pages(self, start: int, end: int) -> None:
        """Give the pages of [start, end) back (they stay in the page cache, not in this process's RSS)."""
        mm = self._mm
        if mm is None or not hasattr(mm, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
            return
        begin = start - start % mmap.PAGESIZE
        try:
            mm.madvise(mmap.MADV_DONTNEED, begin, max(end - begin, 0))
        except (OSError, ValueError):  # pragma: no cover - platform without the advice
            pass

    def _append(self, values: np.ndarray) -> None:
        self._chunks.append(values)
        self._firsts.append(self._n)
        self._first_offsets.append(int(values[0]))
        self._n += int(values.size)

    def _start(self, k: int) -> int:
        """Byte offset of line k's start (k < self._n); caller holds the lock."""
        i = bisect.bisect_right(self._firsts, k) - 1
        return int(self._chunks[i][k - self._firsts[i]])

    def _complete_lines(self) -> int:
        if self._done:
            return self._n
        return max(self._n - 1, 0)  # the last start's line may not have ended yet

    def _sample_average(self) -> float:
        if not self.size or self._mm is None:
            return 1.0
        head = self._mm[: min(SAMPLE, self.size)]
        count = head.count(b"\n")
        if not count:
            return float(self.size)
        return len(head[: head.rfind(b"\n") + 1]) / count

    # -- reading -------------------------------------------------------------------------------
    def line(self, i: int) -> bytes:
        """Line i (0-based) without its line break; scans as far as needed first."""
        lines = self.lines(i, 1)
        if not lines:
            raise IndexError(f"line {i + 1} is past the end of {self.path.name}")
        return lines[0]

    def lines(self, start: int, count: int) -> list[bytes]:
        """Up to `count` lines from `start`; fewer at the end of the file."""
        if start < 0 or count <= 0:
            return []
        self.scan(until_line=start + count)
        with self._lock:
            total = self._complete_lines()
            stop = min(start + count, total)
            out = []
            mm = self._mm
            for k in range(start, stop):
                begin = self._start(k)
                end = self._start(k + 1) - 1 if k + 1 < self._n else self.size
                chunk = mm[begin:end] if mm is not None else b""
                out.append(chunk.rstrip(b"\r\n") if chunk.endswith((b"\n", b"\r")) else chunk)
        return out

    def head_lines(self, count: int) -> list[bytes]:
        """The first `count` lines read straight from the map, without touching the index (instant)."""
        if self._mm is None:
            return []
        out: list[bytes] = []
        pos = 0
        while len(out) < count and pos < self.size:
            end = self._mm.find(b"\n", pos)
            if end < 0:
                end = self.size
            out.append(self._mm[pos:end].rstrip(b"\r"))
            pos = end + 1
        return out

    def offset_of(self, i: int) -> int:
        """Byte offset of the start of line i (scans as far as needed)."""
        self.scan(until_line=i)
        with self._lock:
            if i >= self._complete_lines():
                raise IndexError(f"line {i + 1} is past the end of {self.path.name}")
            return self._start(i)

    def find(self, needle: bytes, start_line: int = 0, stop: threading.Event | None = None) -> int | None:
        """The first line at or after `start_line` that contains `needle`, searching the map directly."""
        if self._mm is None or not needle:
            return None
        try:
            pos = self.offset_of(start_line)
        except IndexError:
            return None
        mm = self._mm
        while True:
            if stop is not None and stop.is_set():
                return None
            end = min(pos + CHUNK + len(needle), self.size)
            hit = mm.find(needle, pos, end)
            self._drop_pages(pos, end)
            if hit >= 0:
                return self._line_at(hit)
            pos += CHUNK
            if pos >= self.size:
                return None

    def _line_at(self, offset: int) -> int:
        """The line containing byte `offset`."""
        while True:
            with self._lock:
                if self._scanned > offset or self._done:
                    i = bisect.bisect_right(self._first_offsets, offset) - 1
                    j = int(np.searchsorted(self._chunks[i], offset, side="right")) - 1
                    return self._firsts[i] + j
                self._scan_chunk()
