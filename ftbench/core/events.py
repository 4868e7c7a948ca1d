"""events.jsonl: the live stream of a job, appended by the job and tailed by the TUI and the CLI.

One JSON object per line, each with `v` (schema version), `t` (unix time), `type` and `attempt`; the kinds
and their fields are declared in `event_schema`, which builds every line written and parses every line read
(so `EventTail` returns `Event`s that refuse undeclared keys). The writer flushes every event
with a single `write` on an O_APPEND file, so concurrent readers never see half an object except at the very
end of the file, and a write that a full disk cut short is truncated away again; the reader keeps its byte
offset, leaves a torn last line for the next read and skips a corrupt line instead of failing, so a job
killed mid-write never breaks the monitor.
"""

from __future__ import annotations

import errno
import json
import math
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftbench.core.event_schema import Event, encode_event, parse_event
from ftbench.core.tail import LineTail


class EventWriter:
    """Appends events to one file; safe to share between threads of the job process."""

    def __init__(self, path: str | os.PathLike[str], attempt: int = 1) -> None:
        self.path = Path(path)
        self.attempt = attempt
        self._lock = threading.Lock()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def emit(self, type: str, **fields: Any) -> dict[str, Any]:
        event = encode_event(type, fields, self.attempt)
        text = json.dumps(event, ensure_ascii=False, default=_jsonable)
        line = (text + "\n").encode("utf-8")
        with self._lock:
            _append_whole(self._fd, line, self.path)
        return event

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _append_whole(fd: int, line: bytes, path: Path) -> None:
    """Append one line or nothing: a write the disk cut short is cut back off, so no reader ever meets a torn
    line, and the error (ENOSPC) reaches the job with the file named."""
    try:
        written = os.write(fd, line)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    if written != len(line):
        os.ftruncate(fd, os.fstat(fd).st_size - written)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def _jsonable(value: Any) -> Any:
    """Numbers from numpy or torch arrive as 0-d objects."""
    if hasattr(value, "item"):
        value = value.item()
        return None if isinstance(value, float) and not math.isfinite(value) else value
    return str(value)


@dataclass
class EventTail:
    """Incremental reader of an events file: the complete lines of a LineTail (core/tail.py), parsed."""

    path: Path
    skipped: int = 0
    _lines: LineTail = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._lines = LineTail(self.path)

    def read_new(self, max_bytes: int | None = None) -> list[Event]:
        """Events appended since the last call; a line without its newline yet is kept for next time."""
        events = []
        for raw in self._lines.read_new(max_bytes):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except ValueError:
                self.skipped += 1
                continue
            event = parse_event(obj)
            if event is None:
                self.skipped += 1
            else:
                events.append(event)
        return events


def read_events(path: str | os.PathLike[str], types: Sequence[str] | None = None) -> list[Event]:
    """Every complete event in a file, optionally only some types."""
    events = EventTail(Path(path)).read_new()
    if types is None:
        return events
    wanted = set(types)
    return [e for e in events if e.get("type") in wanted]


def iter_series(events: Sequence[dict[str, Any]], type: str, key: str) -> Iterator[tuple[float, float]]:
    """(step, value) pairs of one metric, for charts and sparklines."""
    for event in events:
        if event.get("type") != type:
            continue
        value, step = event.get(key), event.get("step")
        if isinstance(value, (int, float)) and isinstance(step, (int, float)):
            yield float(step), float(value)


def downsample(points: Sequence[tuple[float, float]], max_points: int) -> list[tuple[float, float]]:
    """Keep a curve's shape in at most `max_points` points: per bucket, its first, min and max points.

    Charts redraw in time proportional to their points; a 100k-step run must draw as fast as a short one.
    """
    if len(points) <= max_points or max_points < 4:
        return list(points)
    buckets = max(1, max_points // 3)
    size = len(points) / buckets
    out: list[tuple[float, float]] = []
    for b in range(buckets):
        bucket = points[int(b * size) : max(int((b + 1) * size), int(b * size) + 1)]
        chosen = {
            0,
            min(range(len(bucket)), key=lambda i: bucket[i][1]),
            max(range(len(bucket)), key=lambda i: bucket[i][1]),
        }
        out.extend(bucket[i] for i in sorted(chosen))
    if out[-1] != points[-1]:
        out.append(points[-1])
    return out


def ema(values: Sequence[float], alpha: float = 0.1) -> list[float]:
    """Exponential moving average with bias correction (as TensorBoard smooths), for the smoothed loss."""
    out, acc = [], 0.0
    for i, v in enumerate(values, start=1):
        acc = (1 - alpha) * acc + alpha * v
        out.append(acc / (1 - (1 - alpha) ** i))
    return out
