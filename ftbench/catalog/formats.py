"""Dataset formats: which one a file is in, and whether a row fits it. Torch-free, so the TUI's dataset browser
and the trainer's preflight use the same rules.

The formats themselves (fields, detection order, how a row is shown) are the FormatSpec table in
core/specs.py; this module applies it to rows. Formats and their fields (a `columns` mapping renames file
columns to these names):

| format         | fields                                   |
|----------------|------------------------------------------|
| alpaca         | instruction, input (optional), output    |
| messages       | messages: [{role, content}, ...]         |
| sharegpt       | conversations: [{from, value}, ...]      |
| text           | text                                     |
| preference     | prompt, chosen, rejected                 |
| unpaired       | prompt, completion, label (true: good)   |
| prompts        | prompt, answer (optional reference)      |
| classification | text, label (int, str or list: multi-label) |
| ner            | tokens, ner_tags                          |
| squad          | question, context, answers               |

Detection looks at the keys of the first rows; the most specific match wins (squad and preference before
text, classification only when there is a label next to text).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ftbench.core.specs import FORMAT_SPECS

FORMAT_FIELDS: dict[str, tuple[str, ...]] = {name: spec.fields for name, spec in FORMAT_SPECS.items()}
# Order matters: the first format whose required fields are all present wins (the table's order).
DETECTION_ORDER: tuple[str, ...] = tuple(FORMAT_SPECS)
ROLES = ("system", "user", "assistant", "tool")
SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bing": "assistant",
    "bard": "assistant",
    "tool": "tool",
    "function_call": "assistant",
    "observation": "tool",
}


# Column names that mean a format field without a mapping (multi-label files usually say `labels`).
FIELD_ALIASES: dict[str, tuple[str, ...]] = {"label": ("labels",)}


def mapped(row: Mapping[str, Any], columns: Mapping[str, str] | None) -> dict[str, Any]:
    """The row with columns renamed to format field names (`columns` is field -> file column)."""
    out = dict(row)
    for field, column in (columns or {}).items():
        if column in row:
            out[field] = row[column]
    for field, aliases in FIELD_ALIASES.items():
        if field not in out:
            alias = next((a for a in aliases if a in row), None)
            if alias is not None:
                out[field] = row[alias]
    return out


def detect_format(rows: Iterable[Mapping[str, Any]], columns: Mapping[str, str] | None = None) -> str | None:
    """The format of the first rows (by their keys, after the column mapping), or None if none fits."""
    sample = [mapped(r, columns) for r, _ in zip(rows, range(20), strict=False) if isinstance(r, Mapping)]
    if not sample:
        return None
    fits = {fmt: sum(all(f in row for f in FORMAT_FIELDS[fmt]) for row in sample) for fmt in DETECTION_ORDER}
    for fmt in DETECTION_ORDER:
        if fits[fmt] == len(sample):
            return fmt
    # A few rows lacking a field do not hide the format of the rest: the format most rows fit wins, and the
    # row check then names each row and the field it lacks ("row 13: missing field 'output'").
    best = max(DETECTION_ORDER, key=lambda fmt: fits[fmt])  # max keeps the first of equals: detection order
    return best if fits[best] * 2 > len(sample) else None


def describe_formats() -> str:
    return "; ".join(f"{fmt} ({', '.join(FORMAT_FIELDS[fmt])})" for fmt in DETECTION_ORDER)


def row_problem(fmt: str, row: Any, columns: Mapping[str, str] | None = None) -> str | None:
    """Why `row` does not fit `fmt` (one short phrase), or None when it does."""
    if not isinstance(row, Mapping):
        return f"a row must be an object, not {type(row).__name__}"
    r = mapped(row, columns)
    missing = [f for f in FORMAT_FIELDS[fmt] if f not in r or r[f] is None]
    if missing:
        present = ", ".join(sorted(map(str, row))) or "none"
        return f"missing field {', '.join(repr(m) for m in missing)} for format {fmt} (columns present: {present})"
    if fmt == "alpaca":
        return _strings(r, ("instruction", "output")) or (
            _strings(r, ("input",)) if r.get("input") is not None else None
        )
    if fmt in ("text", "classification") and not isinstance(r["text"], str):
        return f"'text' must be a string, not {type(r['text']).__name__}"
    if fmt == "messages":
        return _turns(r["messages"], "messages", "role", "content", ROLES)
    if fmt == "sharegpt":
        return _turns(r["conversations"], "conversations", "from", "value", tuple(SHAREGPT_ROLES))
    if fmt == "preference":
        if not isinstance(r["prompt"], (str, list)):
            return "'prompt' must be a string or a list of messages"
        for key in ("chosen", "rejected"):
            if not isinstance(r[key], (str, list)):
                return f"'{key}' must be a string or a list of messages"
        return None
    if fmt == "unpaired":
        if not isinstance(r["prompt"], (str, list)) or not isinstance(r["completion"], (str, list)):
            return "'prompt' and 'completion' must be strings or lists of messages"
        if not isinstance(r["label"], bool):
            return f"'label' must be true (a good completion) or false (a bad one), not {r['label']!r}"
        return None
    if fmt == "prompts":
        if not isinstance(r["prompt"], (str, list)):
            return "'prompt' must be a string or a list of messages"
        answer = r.get("answer")
        return None if answer is None or isinstance(answer, str) else "'answer' must be a string"
    if fmt == "ner":
        tokens, tags = r["tokens"], r["ner_tags"]
        if not isinstance(tokens, list) or not isinstance(tags, list):
            return "'tokens' and 'ner_tags' must be lists"
        if len(tokens) != len(tags):
            return f"'tokens' has {len(tokens)} items but 'ner_tags' has {len(tags)}"
        return None
    if fmt == "squad":
        answers = r["answers"]
        if not isinstance(answers, Mapping) or "text" not in answers or "answer_start" not in answers:
            return "'answers' must be an object with 'text' and 'answer_start' lists"
        return _strings(r, ("question", "context"))
    return None


def _strings(r: Mapping[str, Any], keys: Sequence[str]) -> str | None:
    for key in keys:
        if not isinstance(r.get(key), str):
            return f"'{key}' must be a string, not {type(r.get(key)).__name__}"
    return None


def _turns(turns: Any, name: str, role_key: str, text_key: str, roles: Sequence[str]) -> str | None:
    if not isinstance(turns, list) or not turns:
        return f"'{name}' must be a non-empty list"
    for i, turn in enumerate(turns):
        if not isinstance(turn, Mapping) or role_key not in turn or text_key not in turn:
            return f"'{name}[{i}]' needs '{role_key}' and '{text_key}'"
        if turn[role_key] not in roles:
            return f"'{name}[{i}].{role_key}' is {turn[role_key]!r}; allowed: {', '.join(roles)}"
        if not isinstance(turn[text_key], str):
            return f"'{name}[{i}].{text_key}' must be a string"
    return None


def sharegpt_to_messages(conversations: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """ShareGPT turns ({from, value}) as chat messages ({role, content})."""
    return [{"role": SHAREGPT_ROLES[t["from"]], "content": t["value"]} for t in conversations]
