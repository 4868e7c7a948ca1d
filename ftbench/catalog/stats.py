"""Dataset stats over every row, streamed: bad rows by line, duplicates, label and tag counts, token lengths.

Runs off the UI thread in the Datasets screen. Token lengths use the `tokenizers` library on a model's
tokenizer.json, never transformers, so this stays inside the TUI's import budget.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ftbench.catalog import formats
from ftbench.catalog.readers import SAMPLE_ROWS, DatasetReader, Progress, Row, detect_format
from ftbench.core.errors import FtbenchError

TOKENIZE_BATCH = 512
PROGRESS_EVERY_ROWS = 5000


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


class _Tally:
    """The running counts of one stats pass; `add` takes one row, `finish` writes them into the stats."""

    def __init__(self, stats: DatasetStats, fmt: str, tokenizer: Any, keep_bad: int) -> None:
        self.stats = stats
        self.fmt = fmt
        self.tokenizer = tokenizer
        self.keep_bad = keep_bad
        self.seen: set[bytes] = set()
        self.labels: Counter[str] = Counter()
        self.tags: Counter[str] = Counter()
        self.lengths: list[int] = []
        self.batch: list[str] = []

    def add(self, row: Row) -> None:
        stats = self.stats
        stats.rows += 1
        if row.error is None and row.data is not None and self.fmt != "unknown":
            problem = formats.row_problem(self.fmt, row.data)
            if problem:
                row = Row(row.index, row.line, None, problem, row.raw)
        if row.error is not None or row.data is None:
            stats.bad_count += 1
            if len(stats.bad_rows) < self.keep_bad:
                stats.bad_rows.append((row.line if row.line is not None else row.index + 1, row.error or "unreadable"))
            return
        self._count(row.data)

    def _count(self, data: dict[str, Any]) -> None:
        key = hashlib.blake2b(json.dumps(data, sort_keys=True, default=str).encode(), digest_size=12).digest()
        if key in self.seen:
            self.stats.duplicates += 1
        else:
            self.seen.add(key)
        for name in ("label", "labels"):
            if name in data and data[name] is not None and not (name == "labels" and "tokens" in data):
                self.labels.update(_label_keys(data[name]))
        for name in ("ner_tags", "tags"):
            if isinstance(data.get(name), list):
                self.tags.update(_label_keys(data[name]))
        if self.tokenizer is not None:
            self.batch.append(row_text(data))
            if len(self.batch) >= TOKENIZE_BATCH:
                self.flush()

    def flush(self) -> None:
        if self.tokenizer is not None and self.batch:
            self.lengths.extend(len(e.ids) for e in self.tokenizer.encode_batch(self.batch))
        self.batch.clear()

    def finish(self, max_length: int | None, bins: int) -> None:
        self.flush()
        self.stats.labels = dict(self.labels.most_common())
        self.stats.tags = dict(self.tags.most_common())
        if self.lengths:
            self.stats.token_lengths = length_summary(self.lengths, max_length, bins)


def length_summary(lengths: list[int], max_length: int | None, bins: int) -> dict[str, Any]:
    """Histogram (counts, edges), mean, p50, p95, max and how many exceed `max_length`."""
    import numpy as np

    arr = np.asarray(lengths)
    counts, edges = np.histogram(arr, bins=min(bins, max(1, int(arr.max() - arr.min() + 1))))
    return {
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
    t0 = time.perf_counter()
    stats = DatasetStats()
    total, _ = reader.row_count()
    fmt = detect_format([r.data for r in reader.head(SAMPLE_ROWS) if r.data])
    tally = _Tally(stats, fmt, tokenizer, keep_bad)
    for row in reader.iter_rows(stop):
        tally.add(row)
        if progress is not None and stats.rows % PROGRESS_EVERY_ROWS == 0:
            progress(stats.rows, max(total, stats.rows))
    tally.finish(max_length, bins)
    stats.format = fmt
    stats.complete = not (stop is not None and stop.is_set())
    if progress is not None:
        progress(stats.rows, stats.rows)
    stats.seconds = time.perf_counter() - t0
    return stats
