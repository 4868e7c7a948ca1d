"""Tokenized SFT examples cached in the workspace, so a second run on the same data skips tokenization and the
ranks of a multi-process run tokenize once.

The key is a fingerprint of everything the examples depend on: each data file's path, size and mtime, the
tokenizer (its class, vocabulary/merges and special tokens, chat template), the format and every `data.*` option
that changes rendering or cutting (columns, max_length, train_on_prompt, eval split, max_rows, skip_bad_rows).
Change any of them and the key changes; an edited file changes its size or mtime.

Entries are `.npz` files (int32 token arrays plus a JSON header, read with allow_pickle=False: nothing in the
cache can run code) under `<workspace>/.cache/tokenized/`, written atomically. A file lock per key makes
the first process that arrives build the entry while every other rank waits and then reads it.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftbench.core.atomic import atomic_write_bytes
from ftbench.core.recipe import DataSection
from ftbench.train.data import DataReport

CACHE_VERSION = 1
FOLDER = ".cache/tokenized"
Examples = list[dict[str, list[int]]]


@dataclass
class Tokenized:
    train: Examples
    eval: Examples
    from_cache: bool


def _file_stamp(path: str | None) -> list[Any]:
    if not path:
        return []
    p = Path(path)
    if not p.exists():
        return [str(path)]
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]  # a save_to_disk folder
    return [str(p.resolve())] + [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files]


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A hash of what decides token ids: the backend's vocabulary and merges (fast tokenizers serialise them),
    else the vocabulary; plus the special tokens and the chat template."""
    h = hashlib.sha256(type(tokenizer).__name__.encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        h.update(backend.to_str().encode())
    else:
        h.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    h.update(json.dumps(tokenizer.special_tokens_map, sort_keys=True, default=str).encode())
    h.update(str(getattr(tokenizer, "chat_template", None)).encode())
    return h.hexdigest()


def fingerprint(data: DataSection, fmt: str, tokenizer: Any) -> str:
    parts = {
        "version": CACHE_VERSION,
        "train": _file_stamp(data.train),
        "eval": _file_stamp(data.eval),
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "format": fmt,
        "options": data.model_dump(
            include={"columns", "max_length", "train_on_prompt", "eval_split", "max_rows", "skip_bad_rows"}
        ),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _pack_arrays(prefix: str, examples: Examples) -> dict[str, Any]:
    import numpy as np

    lengths = np.array([len(ex["input_ids"]) for ex in examples], dtype=np.int64)
    ids = [t for ex in examples for t in ex["input_ids"]]
    labels = [t for ex in examples for t in ex["labels"]]
    return {
        f"{prefix}_lengths": lengths,
        f"{prefix}_ids": np.array(ids, dtype=np.int32),
        f"{prefix}_labels": np.array(labels, dtype=np.int32),
    }


def _unpack_arrays(prefix: str, arrays: Any) -> Examples:
    import numpy as np

    lengths = arrays[f"{prefix}_lengths"]
    bounds = np.concatenate([[0], np.cumsum(lengths)]).tolist()
    ids, labels = arrays[f"{prefix}_ids"].tolist(), arrays[f"{prefix}_labels"].tolist()
    return [{"input_ids": ids[a:b], "labels": labels[a:b]} for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def write_entry(path: Path, train: Examples, eval_: Examples, report: DataReport) -> None:
    import numpy as np

    header = {"truncated": report.truncated, "dropped_empty": report.dropped_empty}
    buffer = io.BytesIO()
    np.savez(
        buffer,
        header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
        **_pack_arrays("train", train),
        **_pack_arrays("eval", eval_),
    )
    atomic_write_bytes(path, buffer.getvalue())


def read_entry(path: Path, report: DataReport) -> tuple[Examples, Examples] | None:
    """The cached examples (and the report counts they came with), or None for a missing or unreadable entry."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as arrays:
            header = json.loads(arrays["header"].tobytes().decode())
            train, eval_ = _unpack_arrays("train", arrays), _unpack_arrays("eval", arrays)
    except (OSError, ValueError, KeyError):
        return None
    report.truncated += int(header["truncated"])
    report.dropped_empty += int(header["dropped_empty"])
    return train, eval_


def cached_tokenize(
    workspace_root: Path, key: str, report: DataReport, build: Callable[[], tuple[Examples, Examples]]
) -> Tokenized:
    """The examples for `key`: read from the workspace cache, or built by `build` (which updates `report`)
    and stored. Concurrent callers with the same key (the ranks of one run) build once."""
    from filelock import FileLock

    folder = Path(workspace_root) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    entry = folder / f"{key}.npz"
    with FileLock(str(folder / f"{key}.lock")):
        found = read_entry(entry, report) if entry.exists() else None
        if found is not None:
            return Tokenized(*found, from_cache=True)
        before = (report.truncated, report.dropped_empty)
        train, eval_ = build()
        counts = DataReport(report.format, truncated=report.truncated - before[0])
        counts.dropped_empty = report.dropped_empty - before[1]
        write_entry(entry, train, eval_, counts)
    return Tokenized(train, eval_, from_cache=False)
