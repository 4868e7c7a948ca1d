"""Eval sets: what a user points `ftbench eval` at, turned into prompts with references.

Accepted, so that no one has to convert a file before scoring:
- a JSONL/JSON of prompts: `prompt` (text) or `messages` (a chat; a final assistant turn is the reference when
  no `reference` is given), with `reference` (text) or `references` (list);
- any SFT-format dataset (alpaca, messages, sharegpt): the last assistant turn is the reference and the turns
  before it are the prompt, rendered exactly as training saw them (train/data.row_messages);
- a run id: the run's eval file, or its held-out eval split drawn exactly as training drew it.
Torch-free: the CLI checks an eval set before any job starts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ftbench.catalog.formats import detect_format, row_problem
from ftbench.core.errors import FtbenchError

SFT_FORMATS = ("alpaca", "messages", "sharegpt")


@dataclass(frozen=True)
class EvalItem:
    """One prompt: the chat up to the answer, and the acceptable answers (empty when scoring is off)."""

    id: str
    messages: list[dict[str, str]]
    references: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def item_id(index: int, messages: Sequence[Mapping[str, Any]]) -> str:
    """Stable across runs of the same file: the cache of a killed eval is matched by these ids (an encoder eval
    passes its row as a one-item list)."""
    digest = hashlib.sha1(json.dumps(list(messages), sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:10]
    return f"{index:05d}-{digest}"


def _prompt_row(row: Mapping[str, Any], where: str) -> tuple[list[dict[str, str]], list[str]]:
    if "messages" in row:
        messages = [{"role": str(m["role"]), "content": str(m["content"])} for m in row["messages"]]
    else:
        messages = [{"role": "user", "content": str(row["prompt"])}]
    if row.get("system") and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": str(row["system"])})
    refs = row.get("references", row.get("reference"))
    if refs is None and messages[-1]["role"] == "assistant":
        refs = messages[-1]["content"]
    if messages[-1]["role"] == "assistant":
        messages = messages[:-1]
    if isinstance(refs, str):
        refs = [refs]
    if refs is not None and not (isinstance(refs, list) and all(isinstance(r, str) for r in refs)):
        raise FtbenchError(
            f"{where}: `references` must be a list of strings, not {refs!r}.", 'Write "references": ["...", "..."].'
        )
    if not messages or messages[-1]["role"] != "user":
        raise FtbenchError(
            f"{where}: the prompt must end with a user turn.", "End `messages` with a user (or assistant) turn."
        )
    return messages, list(refs or [])


def _sft_row(row: Mapping[str, Any], fmt: str) -> tuple[list[dict[str, str]], list[str]]:
    from ftbench.train.data import row_messages

    messages = row_messages(row, fmt)
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None:
        return messages, []
    return messages[:last], [messages[last]["content"]]


def items_from_rows(rows: Sequence[Mapping[str, Any]], source: str) -> list[EvalItem]:
    """Prompt-file rows (prompt/messages) or SFT-format rows, each with its reference(s)."""
    if not rows:
        raise FtbenchError(f"Eval set {source} has no rows.", "Point --data at a JSONL file with at least one prompt.")
    is_prompt_file = all(isinstance(r, Mapping) and ("prompt" in r or "messages" in r) for r in rows[:20])
    fmt = None if is_prompt_file else detect_format(rows)
    if not is_prompt_file and fmt not in SFT_FORMATS:
        keys = ", ".join(sorted(map(str, rows[0]))) if isinstance(rows[0], Mapping) else type(rows[0]).__name__
        raise FtbenchError(
            f"Eval set {source} has rows with {keys}, neither prompts (prompt/messages + reference) nor an SFT format.",
            'Write one {"prompt": ..., "reference": ...} per line, or pass an alpaca/messages/sharegpt dataset.',
        )
    items = []
    for i, row in enumerate(rows):
        where = f"{source}: row {i + 1}"
        if fmt is not None:
            problem = row_problem(fmt, row)
            if problem:
                raise FtbenchError(f"{where}: {problem}.", "Fix the row or remove it.")
            messages, refs = _sft_row(row, fmt)
        else:
            if not isinstance(row, Mapping) or not ("prompt" in row or "messages" in row):
                raise FtbenchError(
                    f"{where} has neither `prompt` nor `messages`.", 'Write {"prompt": "...", "reference": "..."}.'
                )
            messages, refs = _prompt_row(row, where)
        items.append(EvalItem(item_id(i, messages), messages, refs))
    return items


def load_eval_file(path: Path, limit: int | None = None) -> list[EvalItem]:
    from ftbench.train.io import read_rows

    if not path.is_file() and not path.is_dir():
        raise FtbenchError(
            f"Eval set {path} does not exist.", "Pass a JSONL file of prompts with references, or a run id."
        )
    rows = read_rows(path, skip_bad_rows=False, max_rows=limit).rows
    return items_from_rows(rows, str(path))


def run_eval_rows(run_dir: Path, limit: int | None = None) -> list[EvalItem]:
    """A run's held-out rows: its data.eval file, else the eval split that training held out (same seed)."""
    from ftbench.core.recipe import validate_recipe
    from ftbench.train.data import load_rows

    spec = json.loads((run_dir / "job.json").read_text(encoding="utf-8"))
    raw = spec.get("params", {}).get("recipe")
    if not raw:
        raise FtbenchError(
            f"Job {run_dir.name} is not a training run (no recipe).", "Pass --data FILE with prompts and references."
        )
    recipe = validate_recipe(raw, source=f"{run_dir}/recipe.yaml")
    if recipe.task != "sft":
        raise FtbenchError(
            f"Run {run_dir.name} is a {recipe.task} run; generation eval takes SFT runs.",
            "Score encoder runs with `ftbench predict RUN FILE --json` (accuracy / F1 / EM as in training).",
        )
    if not recipe.data.eval and not recipe.data.eval_split:
        raise FtbenchError(
            f"Run {run_dir.name} held out no eval rows (no data.eval, eval_split 0).", "Pass --data FILE."
        )
    rows = load_rows(recipe.data, recipe.task).eval
    return items_from_rows(rows[:limit] if limit else rows, f"{run_dir.name} eval split")


def check_references(items: Sequence[EvalItem], source: str, allow_missing: bool) -> None:
    """Bad input before the job: prompts without references score nothing unless that was asked for."""
    missing = [i for i, item in enumerate(items) if not item.references]
    if missing and not allow_missing:
        raise FtbenchError(
            f"Eval set {source}: {len(missing)} of {len(items)} prompts have no reference (first: row {missing[0] + 1}).",
            'Add "reference" to each row, or pass --no-reference to only generate (no scores).',
        )


def resolve_items(data: str | None, run_dir: str | None, limit: int | None = None) -> list[EvalItem]:
    """The eval set of an `ftbench eval`: a file (--data), else the held-out rows of a run."""
    if data:
        return load_eval_file(Path(data), limit)
    if run_dir:
        return run_eval_rows(Path(run_dir), limit)
    raise FtbenchError(
        "No eval set: pass --data FILE, or an adapter run whose held-out rows to use.", "ftbench eval MODEL --data FILE"
    )
