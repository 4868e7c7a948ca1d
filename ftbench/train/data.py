"""From rows to token sequences for causal LMs: format checks, rendering, prompt masking, truncation, packing.

Rendering: every row becomes a list of (text, trainable) segments. Chat-style rows (messages, sharegpt, and
alpaca when the tokenizer has a chat template) are rendered with the tokenizer's chat template; the text the
template adds for each assistant turn (content plus its end-of-turn marker) is trainable, everything else
(system, user turns, the role headers) is the prompt. Segments are tokenized separately, exactly as a chat
front end tokenizes a prompt before generating, and labels of prompt tokens are -100 unless
`data.train_on_prompt` is set.

Batches keep `training.batch_size` examples per step, so the optimizer takes the same steps as padded
batches and reaches the same loss. Padding-free batches (`data.padding_free`, default on) lay a batch's
examples end to end in rows of at most `max_length` tokens (one row under flash_attention_2, whose varlen
kernel costs nothing extra for a long row) instead of padding each to the longest. Packing (`data.packing`,
default off) places the whole set best-fit-decreasing into rows of at most `max_length` tokens before
batching: fuller rows, but `batch_size` then counts rows, so an epoch takes fewer, larger steps.

Rows holding several examples carry `position_ids` that restart at 0 for every example and no attention
mask; transformers derives a block-diagonal causal mask from restarting position ids (and flash attention
uses them as sequence boundaries), so tokens never attend across examples, and the first token of every
example is never predicted from its neighbour. That detection only runs without a KV cache, so such batches
pass `use_cache=False` (tests/integration/test_train_data.py checks the logits of a packed example equal its
logits alone). With both switches off, batches are padded to their longest row (never to max_length) with an
attention mask.
"""

from __future__ import annotations

import bisect
import heapq
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftbench.catalog.formats import describe_formats, detect_format, mapped, row_problem, sharegpt_to_messages
from ftbench.core.errors import FtbenchError
from ftbench.core.recipe import DataSection
from ftbench.core.specs import task_spec
from ftbench.train.io import Rows, read_rows

IGNORE = -100
CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
ALPACA_PROMPT = "Below is an instruction that describes a task{inp_note}. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n{input_block}### Response:\n"


@dataclass
class DataReport:
    """What happened to the rows: shown in the run log and kept in the run's metrics."""

    format: str
    train_rows: int = 0
    eval_rows: int = 0
    bad_lines: int = 0
    bad_rows: int = 0
    truncated: int = 0
    dropped_empty: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class LoadedRows:
    train: list[dict[str, Any]]
    eval: list[dict[str, Any]]
    report: DataReport


def load_rows(data: DataSection, task: str) -> LoadedRows:
    """Read, detect the format, check every row and split off eval rows; fails before any model loads."""
    train = read_rows(data.train, data.skip_bad_rows, data.max_rows, data.columns)
    if not train.rows:
        raise FtbenchError(
            f"Dataset {data.train} has no rows.", "Point data.train at a file with at least one example."
        )
    fmt = data.format if data.format != "auto" else detect_format(train.rows, data.columns)
    if fmt is None:
        cols = ", ".join(sorted(map(str, train.rows[0])))
        raise FtbenchError(
            f"Cannot tell the format of {data.train} from its columns ({cols}).",
            f"Set data.format and map columns with data.columns (e.g. {{instruction: question}}). Known formats: {describe_formats()}.",
        )
    allowed = task_spec(task).formats
    if fmt not in allowed:
        raise FtbenchError(
            f"{data.train} is in the {fmt} format, which task {task} cannot train on.",
            f"Task {task} needs one of: {', '.join(allowed)} (set data.format / data.columns if detection was wrong).",
        )
    report = DataReport(format=fmt, bad_lines=len(train.bad_lines))
    rows = _checked(train, fmt, data, report, str(data.train))
    if data.eval:
        ev = read_rows(data.eval, data.skip_bad_rows, columns=data.columns)
        report.bad_lines += len(ev.bad_lines)
        eval_rows = _checked(ev, fmt, data, report, str(data.eval))
    elif data.eval_split > 0:
        order = list(range(len(rows)))
        random.Random(1234).shuffle(order)
        n_eval = max(1, round(len(rows) * data.eval_split))
        if n_eval >= len(rows):
            raise FtbenchError(
                f"data.eval_split {data.eval_split} leaves no training rows out of {len(rows)}.",
                "Use a smaller eval_split or more data.",
            )
        held = set(order[:n_eval])
        eval_rows = [r for i, r in enumerate(rows) if i in held]
        rows = [r for i, r in enumerate(rows) if i not in held]
    else:
        eval_rows = []
    report.train_rows, report.eval_rows = len(rows), len(eval_rows)
    return LoadedRows(rows, eval_rows, report)


def _checked(loaded: Rows, fmt: str, data: DataSection, report: DataReport, source: str) -> list[dict[str, Any]]:
    good = []
    for number, row in zip(loaded.numbers, loaded.rows, strict=True):  # numbered as the Datasets screen shows them
        problem = row_problem(fmt, row, data.columns)
        if problem is None:
            good.append(mapped(row, data.columns))
            continue
        if not data.skip_bad_rows:
            raise FtbenchError(
                f"{source}: row {number}: {problem}.",
                "Fix the row, map columns with data.columns, or set data.skip_bad_rows: true.",
            )
        report.bad_rows += 1
    if not good:
        raise FtbenchError(f"{source}: no row fits the {fmt} format.", "Check data.format and data.columns.")
    return good


# ---------------------------------------------------------------------------------------------------------
# rendering


def ensure_chat_template(tokenizer: Any, data: DataSection) -> str | None:
    """Apply data.chat_template (a Jinja string or a file path); returns a note when a default was added."""
    if data.chat_template:
        template = data.chat_template
        if "{%" not in template and Path(template).is_file():
            template = Path(template).read_text(encoding="utf-8")
        tokenizer.chat_template = template
        return "Using the chat template from data.chat_template."
    return None


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def _apply(tokenizer: Any, messages: Sequence[Mapping[str, str]], generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=generation_prompt)


def chat_segments(tokenizer: Any, messages: Sequence[Mapping[str, str]]) -> list[tuple[str, bool]]:
    """Segments of a conversation rendered with the chat template; every assistant turn is trainable."""
    full = _apply(tokenizer, messages, False)
    segments: list[tuple[str, bool]] = []
    cursor = 0
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prefix = _apply(tokenizer, messages[:i], True)
        upto = _apply(tokenizer, messages[: i + 1], False)
        if full.startswith(prefix) and full.startswith(upto) and len(prefix) >= cursor:
            start, end = len(prefix), len(upto)
        else:  # a template that rewrites earlier turns: fall back to the content itself
            start = full.find(message["content"], cursor)
            if start < 0:
                continue
            end = start + len(message["content"])
        segments.append((full[cursor:start], False))
        segments.append((full[start:end], True))
        cursor = end
    segments.append((full[cursor:], False))
    return [(t, trainable) for t, trainable in segments if t]


def row_messages(row: Mapping[str, Any], fmt: str) -> list[dict[str, str]]:
    if fmt == "messages":
        return [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
    if fmt == "sharegpt":
        return sharegpt_to_messages(row["conversations"])
    if fmt == "alpaca":
        user = row["instruction"] + (f"\n\n{row['input']}" if row.get("input") else "")
        msgs = [{"role": "system", "content": row["system"]}] if row.get("system") else []
        return [*msgs, {"role": "user", "content": user}, {"role": "assistant", "content": row["output"]}]
    raise ValueError(fmt)


def alpaca_prompt(instruction: str, inp: str | None) -> str:
    """The classic Alpaca prompt, for tokenizers without a chat template."""
    return ALPACA_PROMPT.format(
        inp_note=", paired with an input that provides further context" if inp else "",
        instruction=instruction,
        input_block=f"### Input:\n{inp}\n\n" if inp else "",
    )


def sft_segments(row: Mapping[str, Any], fmt: str, tokenizer: Any) -> tuple[list[tuple[str, bool]], bool]:
    """(segments, uses_template) for one SFT row."""
    eos = tokenizer.eos_token or ""
    if fmt == "text":
        return [(row["text"] + eos, True)], False
    if fmt == "alpaca" and not has_chat_template(tokenizer):
        return [(alpaca_prompt(row["instruction"], row.get("input")), False), (row["output"] + eos, True)], False
    if not has_chat_template(tokenizer):
        tokenizer.chat_template = CHATML_TEMPLATE
    return chat_segments(tokenizer, row_messages(row, fmt)), True


def preference_texts(row: Mapping[str, Any], tokenizer: Any) -> tuple[str, str, str]:
    """(prompt, chosen, rejected) texts; with a chat template the prompt ends with the assistant header and each
    answer with the template's end-of-turn text."""
    prompt = row["prompt"]
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]

    def answer(value: Any) -> str:
        return value if isinstance(value, str) else [m for m in value if m.get("role") == "assistant"][-1]["content"]

    chosen, rejected = answer(row["chosen"]), answer(row["rejected"])
    if not has_chat_template(tokenizer):
        if isinstance(prompt, str):
            eos = tokenizer.eos_token or ""
            return prompt, chosen + eos, rejected + eos
        tokenizer.chat_template = CHATML_TEMPLATE
    prefix = _apply(tokenizer, messages, True)

    def completion(text: str) -> str:
        full = _apply(tokenizer, [*messages, {"role": "assistant", "content": text}], False)
        return full[len(prefix) :] if full.startswith(prefix) else text + (tokenizer.eos_token or "")

    return prefix, completion(chosen), completion(rejected)


# ---------------------------------------------------------------------------------------------------------
# tokenizing and packing


def _ids(tokenizer: Any, text: str, special: bool) -> list[int]:
    return list(tokenizer(text, add_special_tokens=special)["input_ids"])


def tokenize_preference(
    rows: Sequence[Mapping[str, Any]], tokenizer: Any, max_length: int, max_prompt_length: int, report: DataReport
) -> list[dict[str, list[int]]]:
    """prompt_ids, chosen_ids, rejected_ids per row; the prompt is cut from the left, answers from the right."""
    out = []
    for row in rows:
        prompt, chosen, rejected = preference_texts(row, tokenizer)
        p = _ids(tokenizer, prompt, special=not has_chat_template(tokenizer))
        c, r = _ids(tokenizer, chosen, False), _ids(tokenizer, rejected, False)
        if len(p) > max_prompt_length or len(p) + max(len(c), len(r)) > max_length:
            report.truncated += 1
            p = p[-max_prompt_length:]
            room = max(1, max_length - len(p))
            c, r = c[:room], r[:room]
        out.append({"prompt_ids": p, "chosen_ids": c, "rejected_ids": r})
    return out


def pack(examples: Sequence[Mapping[str, list[int]]], max_length: int) -> list[dict[str, list[int]]]:
    """The whole set best-fit-decreasing into rows of <= max_length tokens (shuffled with a fixed seed)."""
    packed = [join_examples([examples[i] for i in members]) for members in best_fit(examples, max_length)]
    random.Random(0).shuffle(packed)
    return packed


def best_fit(examples: Sequence[Mapping[str, list[int]]], max_length: int) -> list[list[int]]:
    """Best-fit-decreasing: indices of the examples in each row of at most max_length tokens.

    The free space of the open rows is kept sorted, so each example finds the fullest row it still fits in
    by bisection: O(n log n), which keeps 50k examples to well under a second."""
    order = sorted(range(len(examples)), key=lambda i: -len(examples[i]["input_ids"]))
    bins: list[list[int]] = []
    free: list[int] = []  # sorted free space of the open rows
    owner: list[int] = []  # the row each `free` entry belongs to
    for i in order:
        n = len(examples[i]["input_ids"])
        at = bisect.bisect_left(free, n)
        if at < len(free):
            rest, row = free.pop(at) - n, owner.pop(at)
            bins[row].append(i)
        else:
            rest, row = max_length - n, len(bins)
            bins.append([i])
        at = bisect.bisect_left(free, rest)
        free.insert(at, rest)
        owner.insert(at, row)
    return bins


def balanced_rows(examples: Sequence[Mapping[str, list[int]]], limit: int) -> list[list[int]]:
    """A batch's examples spread over as few rows of at most `limit` tokens as the total needs (one more while
    they do not fit), longest first onto the shortest row, so the rows come out near one length and padding
    them to the longest costs little (filling rows in turn, as `best_fit` does, would leave a short last row
    padded out to `limit`)."""
    lengths = [len(ex["input_ids"]) for ex in examples]
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    count = max(1, -(-sum(lengths) // limit))
    while True:
        rows: list[list[int]] = [[] for _ in range(count)]
        heap = [(0, r) for r in range(count)]
        for i in order:
            load, r = heapq.heappop(heap)
            rows[r].append(i)
            heapq.heappush(heap, (load + lengths[i], r))
        if max(load for load, _ in heap) <= limit or count >= len(lengths):
            return rows
        count += 1


def join_examples(members: Sequence[Mapping[str, list[int]]]) -> dict[str, list[int]]:
    """One row of examples end to end, position ids restarting per example (a member that is itself a packed
    row keeps its own); no token is trained on the token before its example's first."""
    ids: list[int] = []
    labels: list[int] = []
    positions: list[int] = []
    for ex in members:
        pos = list(ex.get("position_ids", range(len(ex["input_ids"]))))
        ids.extend(ex["input_ids"])
        labels.extend(IGNORE if p == 0 else lab for p, lab in zip(pos, ex["labels"], strict=True))
        positions.extend(pos)
    return {"input_ids": ids, "labels": labels, "position_ids": positions}


def mark_eval(examples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tag eval examples so the shared collator does not count them as training tokens."""
    return [{**ex, "_eval": True} for ex in examples]


class SftCollator:
    """Pads a batch to its longest row (rounded up to a multiple of 8) and counts the real tokens it hands out
    for training (rows marked `_eval` by `mark_eval` are not counted).

    Rows that hold several examples get position_ids and no attention mask (see the module docstring); the
    padding tail is given positions of its own block so it never joins a real example. `padding_free` first
    lays the batch's examples end to end in rows of at most `row_limit` tokens (`balanced_rows`; one row when
    it is None). `sparse_logits` adds the mask of trained positions that train/sparse_logits.py computes the
    loss on. `tokens` is read by the events callback."""

    def __init__(
        self,
        pad_id: int,
        packed: bool,
        pad_to_multiple_of: int = 8,
        pad_to: int | None = None,
        padding_free: bool = False,
        row_limit: int | None = None,
        sparse_logits: bool = False,
    ) -> None:
        self.pad_id = pad_id
        self.packed = packed or padding_free
        self.multiple = pad_to_multiple_of
        self.pad_to = pad_to
        self.padding_free = padding_free
        self.row_limit = row_limit
        self.sparse_logits = sparse_logits
        self.tokens = 0

    def __call__(self, batch: Sequence[Mapping[str, list[int]]]) -> dict[str, Any]:
        import torch

        self.tokens += sum(len(b["input_ids"]) for b in batch if not b.get("_eval"))
        if self.padding_free:
            limit = self.row_limit or sum(len(b["input_ids"]) for b in batch)
            batch = [join_examples([batch[i] for i in members]) for members in balanced_rows(batch, limit)]
        ids, labels, extra = self._padded(batch)
        out: dict[str, Any] = {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels)}
        out["position_ids" if self.packed else "attention_mask"] = torch.tensor(extra)
        if self.packed:
            out["use_cache"] = False  # with a KV cache object present, transformers skips packed-sequence masking
        if self.sparse_logits:
            from ftbench.train.sparse_logits import MASK_KEY, trained_positions

            out[MASK_KEY] = trained_positions(out["labels"])
        return out

    def _padded(self, batch: Sequence[Mapping[str, list[int]]]) -> tuple[list[Any], list[Any], list[Any]]:
        longest = self.pad_to or max(len(b["input_ids"]) for b in batch)
        if self.multiple and not self.pad_to:
            longest = -(-longest // self.multiple) * self.multiple
        ids, labels, extra = [], [], []
        for b in batch:
            n = len(b["input_ids"])
            gap = longest - n
            ids.append(list(b["input_ids"]) + [self.pad_id] * gap)
            labels.append(list(b["labels"]) + [IGNORE] * gap)
            if self.packed:
                extra.append(list(b.get("position_ids", range(n))) + list(range(gap)))
            else:
                extra.append([1] * n + [0] * gap)
        return ids, labels, extra


class PreferenceCollator:
    """Chosen rows then rejected rows in one padded batch, prompts masked out of the labels."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id
        self.tokens = 0

    def __call__(self, batch: Sequence[Mapping[str, list[int]]]) -> dict[str, Any]:
        import torch

        seqs = [(b["prompt_ids"], b["chosen_ids"]) for b in batch] + [
            (b["prompt_ids"], b["rejected_ids"]) for b in batch
        ]
        longest = max(len(p) + len(a) for p, a in seqs)
        counted = not batch[0].get("_eval")
        ids, labels, mask = [], [], []
        for p, a in seqs:
            n = len(p) + len(a)
            self.tokens += n if counted else 0
            ids.append(p + a + [self.pad_id] * (longest - n))
            labels.append([IGNORE] * len(p) + a + [IGNORE] * (longest - n))
            mask.append([1] * n + [0] * (longest - n))
        return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels), "attention_mask": torch.tensor(mask)}
