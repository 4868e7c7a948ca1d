"""SFT rows to input_ids/labels, fast: each conversation rendered once, every segment tokenized in one batch.

`data.chat_segments` finds the trainable part of each assistant turn by rendering the conversation 1 + 2 x turns
times (the prefix with a generation prompt, the prefix with the turn). Here the template's shape is learned once
per tokenizer from a probe conversation (`TurnShape`: the generation prompt before an assistant turn and the
end-of-turn text after one), and each row is rendered once and cut at those character spans. A template whose
probe does not cut exactly like `chat_segments` (one that rewrites earlier turns, say) and any row whose text
does not show the learned shape fall back to `chat_segments`, so the segments - and so the masks - are the
same as the slow path's (tests/integration/test_sft_tokens.py checks every demo dataset).

Segments are still tokenized one by one as before (a prompt is tokenized as a chat front end would), but in one
batched call per chunk, which the fast tokenizers run in Rust. Large datasets are split across worker processes
(`workers`), each rendering and tokenizing a contiguous chunk, so the order is kept.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ftbench.core.recipe import DataSection
from ftbench.train.data import (
    CHATML_TEMPLATE,
    IGNORE,
    DataReport,
    _apply,
    chat_segments,
    has_chat_template,
    row_messages,
    sft_segments,
)

PARALLEL_FROM_ROWS = 4000  # below this, starting worker processes costs more than it saves
Segments = list[tuple[str, bool]]


@dataclass(frozen=True)
class TurnShape:
    """What the chat template writes around an assistant turn's content."""

    header: str  # the generation prompt, right before the content
    suffix: str  # the end-of-turn text after a non-final turn's content (part of the trainable span)


PROBES = (
    [("user", "\x02q1\x02"), ("assistant", "\x02a1\x02"), ("user", "\x02q2\x02"), ("assistant", "\x02a2\x02")],
    [("system", "\x02s\x02"), ("user", "\x02q1\x02"), ("assistant", "\x02a1\x02")],
    [("user", "\x02q1\x02"), ("assistant", "\x02a1\x02"), ("user", "\x02q2\x02")],
)


def turn_shape(tokenizer: Any) -> TurnShape | None:
    """The template's assistant-turn shape, or None when cutting by it would differ from `chat_segments`."""
    first = [{"role": r, "content": c} for r, c in PROBES[0]]
    try:
        prompt = _apply(tokenizer, first[:1], True)
        header = prompt[len(_apply(tokenizer, first[:1], False)) :]
        with_turn = _apply(tokenizer, first[:2], False)
    except Exception:  # noqa: BLE001 - a template that refuses the probe (strict role order ...) keeps the slow path
        return None
    if not header or not with_turn.startswith(prompt + first[1]["content"]):
        return None
    shape = TurnShape(header, with_turn[len(prompt) + len(first[1]["content"]) :])
    for probe in PROBES:
        messages = [{"role": r, "content": c} for r, c in probe]
        try:
            if cut(tokenizer, messages, shape) != chat_segments(tokenizer, messages):
                return None
        except Exception:  # noqa: BLE001
            return None
    return shape


def cut(tokenizer: Any, messages: Sequence[Mapping[str, str]], shape: TurnShape) -> Segments | None:
    """`chat_segments` from one rendering, or None when this row's text does not show the template's shape."""
    full = _apply(tokenizer, messages, False)
    segments: Segments = []
    cursor = 0
    last = len(messages) - 1
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        at = full.find(shape.header + message["content"], cursor)
        if at < 0:
            return None
        start = at + len(shape.header)
        content_end = start + len(message["content"])
        if i == last:
            end = len(full)  # the slow path's "prefix with the turn" is the whole conversation
        elif full.startswith(shape.suffix, content_end):
            end = content_end + len(shape.suffix)
        else:
            return None
        segments.append((full[cursor:start], False))
        segments.append((full[start:end], True))
        cursor = end
    segments.append((full[cursor:], False))
    return [(t, trainable) for t, trainable in segments if t]


def row_segments(row: Mapping[str, Any], fmt: str, tokenizer: Any, shape: TurnShape | None) -> tuple[Segments, bool]:
    """(segments, uses_template) for one row: `data.sft_segments`, from one rendering where the shape allows."""
    if shape is not None and fmt != "text" and has_chat_template(tokenizer):
        fast = cut(tokenizer, row_messages(row, fmt), shape)
        if fast is not None:
            return fast, True
    return sft_segments(row, fmt, tokenizer)


def encode_rows(rows: Sequence[Mapping[str, Any]], fmt: str, tokenizer: Any, train_on_prompt: bool) -> list[Any]:
    """(input_ids, labels) per row, untruncated; segments tokenized in two batched calls (with and without
    special tokens, exactly as a per-segment tokenizer call would)."""
    if fmt not in ("text", "alpaca") and not has_chat_template(tokenizer):
        tokenizer.chat_template = CHATML_TEMPLATE  # as sft_segments does for chat rows
    shape = turn_shape(tokenizer) if has_chat_template(tokenizer) else None
    rendered = [row_segments(row, fmt, tokenizer, shape) for row in rows]
    plain = [text for segs, templated in rendered for j, (text, _) in enumerate(segs) if templated or j]
    special = [segs[0][0] for segs, templated in rendered if segs and not templated]
    plain_ids = iter(tokenizer(plain, add_special_tokens=False)["input_ids"] if plain else [])
    special_ids = iter(tokenizer(special, add_special_tokens=True)["input_ids"] if special else [])
    out = []
    for segs, templated in rendered:
        ids: list[int] = []
        labels: list[int] = []
        for j, (_, trainable) in enumerate(segs):
            piece = list(next(special_ids) if (j == 0 and not templated) else next(plain_ids))
            ids.extend(piece)
            labels.extend(piece if (trainable or train_on_prompt) else [IGNORE] * len(piece))
        out.append((ids, labels))
    return out


def _encode_chunk(args: tuple[Sequence[Mapping[str, Any]], str, Any, bool]) -> list[Any]:
    return encode_rows(*args)


def worker_count(rows: int, requested: int | None = None) -> int:
    """Processes for tokenizing `rows` rows: one below PARALLEL_FROM_ROWS, else one per usable core (max 8)."""
    if requested is not None:
        return max(1, requested)
    if rows < PARALLEL_FROM_ROWS:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(8, cores))


def encode_parallel(
    rows: Sequence[Mapping[str, Any]], fmt: str, tokenizer: Any, train_on_prompt: bool, workers: int
) -> list[Any]:
    """`encode_rows` over contiguous chunks in `workers` forked processes (the tokenizer travels by fork)."""
    if workers <= 1 or len(rows) < 2 * workers:
        return encode_rows(rows, fmt, tokenizer, train_on_prompt)
    import multiprocessing

    size = -(-len(rows) // workers)
    chunks = [(rows[i : i + size], fmt, tokenizer, train_on_prompt) for i in range(0, len(rows), size)]
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # each worker is one process; no thread pool inside
    with multiprocessing.get_context("fork").Pool(len(chunks)) as pool:
        parts = pool.map(_encode_chunk, chunks)
    return [pair for part in parts for pair in part]


def tokenize_sft(
    rows: Sequence[Mapping[str, Any]],
    fmt: str,
    tokenizer: Any,
    data: DataSection,
    report: DataReport,
    progress: Any = None,
    workers: int | None = None,
) -> list[dict[str, list[int]]]:
    """input_ids/labels per row, truncated to max_length; rows with nothing left to learn are dropped."""
    if progress is not None:
        progress("tokenizing", 0, len(rows))
    encoded = encode_parallel(rows, fmt, tokenizer, data.train_on_prompt, worker_count(len(rows), workers))
    out = []
    for ids, labels in encoded:
        if len(ids) > data.max_length:
            report.truncated += 1
            ids, labels = ids[: data.max_length], labels[: data.max_length]
        if all(label == IGNORE for label in labels[1:]):
            report.dropped_empty += 1
            continue
        out.append({"input_ids": ids, "labels": labels})
    if progress is not None:
        progress("tokenizing", len(rows), len(rows))
    return out
