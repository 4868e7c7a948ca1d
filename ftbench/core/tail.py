"""Following a growing file by byte offset: the one tail under events.jsonl readers and the log panes.

Only complete lines come back; a line still being written (no newline yet) is kept for the next read, so a
reader never sees half a JSON object or half a log line. A file that shrank (replaced or truncated) is read
again from the start. Opening at `start_from_end` bytes before the end skips the partial line it lands in,
so a long log opens at its last lines without reading the rest.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class LineTail:
    path: Path
    start_from_end: int | None = None  # None: from the first byte
    offset: int | None = None
    _partial: bytes = field(default=b"", repr=False)

    def read_new(self, max_bytes: int | None = None) -> list[bytes]:
        """The complete lines appended since the last call, without their line endings."""
        try:
            with open(self.path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                first = self.offset is None
                if first:
                    self.offset = max(0, size - self.start_from_end) if self.start_from_end is not None else 0
                elif size < (self.offset or 0):  # replaced or truncated: start over
                    self.offset, self._partial = 0, b""
                handle.seek(self.offset or 0)
                chunk = handle.read(max_bytes) if max_bytes else handle.read()
        except FileNotFoundError:
            return []
        started_inside = first and (self.offset or 0) > 0
        self.offset = (self.offset or 0) + len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()  # b"" when the chunk ended on a newline
        if started_inside and lines:
            lines = lines[1:]  # the line the seek landed in is partial
        return [line.rstrip(b"\r") for line in lines]

    def read_new_text(self) -> list[str]:
        """`read_new` decoded as UTF-8 (undecodable bytes replaced), for log panes."""
        return [line.decode("utf-8", "replace") for line in self.read_new()]

    def read_new_shown(self) -> list[str]:
        """`read_new_text` as a person should see it: library noise hidden (core/log_noise.py), raw file kept."""
        from ftbench.core.log_noise import shown_lines

        return shown_lines(self.read_new_text())
