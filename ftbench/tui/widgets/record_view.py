"""One dataset row rendered the way a person reads it: a chat as turns, a NER row as tagged tokens.

Which layout a format gets is its FormatSpec's `view` (core/specs.py); a new format reuses one of these
layouts by naming it there, and needs code here only for a new kind of layout.

`render_record` is a pure function (row + format -> Rich renderable) so it is tested without an app;
`RecordView` is the scrollable pane that shows it.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from ftbench.catalog.datasets import Row
from ftbench.core.specs import FORMAT_SPECS, FormatSpec

ROLE_STYLES = {
    "system": "bold magenta",
    "user": "bold cyan",
    "human": "bold cyan",
    "assistant": "bold green",
    "gpt": "bold green",
    "tool": "bold yellow",
}
SECTION_STYLES = {"output": "bold green", "chosen": "bold green", "rejected": "bold red"}
TAG_STYLES = ("bold cyan", "bold magenta", "bold yellow", "bold green", "bold blue", "bold red")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _section(title: str, body: Any, style: str = "bold") -> list[RenderableType]:
    return [Text(title, style=style), Text("  " + _text(body).replace("\n", "\n  ")), Text("")]


def render_chat(turns: list[Any], role_key: str, text_key: str) -> list[RenderableType]:
    """Each turn as a coloured role label over its indented text."""
    out: list[RenderableType] = []
    for turn in turns:
        if not isinstance(turn, dict):
            out.append(Text(f"(turn is a {type(turn).__name__}, not an object)", style="red"))
            continue
        role = str(turn.get(role_key, "?"))
        out.append(Text(f"▌{role}", style=ROLE_STYLES.get(role, "bold")))
        out.append(Text("  " + _text(turn.get(text_key, "")).replace("\n", "\n  ")))
    return out


def tag_style(tag: Any) -> str:
    """Outside tags are dim; B-/I- tags of one entity type share a colour."""
    name = str(tag)
    if name in ("O", "0"):
        return "dim"
    entity = name.split("-", 1)[-1]
    return TAG_STYLES[sum(map(ord, entity)) % len(TAG_STYLES)]


def render_ner(tokens: list[Any], tags: list[Any]) -> Text:
    """token/TAG pairs on wrapped lines; tokens outside an entity show without a tag."""
    text = Text()
    for i, token in enumerate(tokens):
        tag = tags[i] if i < len(tags) else "?"
        style = tag_style(tag)
        text.append(str(token), style="" if style == "dim" else style)
        if style != "dim":
            text.append(f"/{tag}", style=style.replace("bold ", "") + " italic")
        text.append(" ")
    return text


def render_squad(row: dict[str, Any]) -> list[RenderableType]:
    """Question, then the context with each answer span highlighted."""
    context = str(row.get("context", ""))
    text = Text(context)
    answers = row.get("answers") or {}
    starts = answers.get("answer_start", []) if isinstance(answers, dict) else []
    texts = answers.get("text", []) if isinstance(answers, dict) else []
    for start, answer in zip(starts, texts, strict=False):
        if isinstance(start, int) and isinstance(answer, str):
            text.stylize("bold black on yellow", start, start + len(answer))
    return [*_section("question", row.get("question", ""), "bold cyan"), Text("context", style="bold"), text]


def render_record(row: Row | None, fmt: str = "unknown") -> RenderableType:
    """The whole row, laid out for its format; bad rows show why and their raw text."""
    if row is None:
        return Text("No row selected.", style="dim")
    where = f"row {row.index + 1:,}" + (f" · line {row.line:,}" if row.line is not None else "")
    head = Text(where, style="dim")
    if row.error is not None or row.data is None:
        return Group(head, Text(f"Bad row: {row.error}", style="bold red"), Text(row.raw[:4000]))
    data = row.data
    spec = FORMAT_SPECS.get(fmt)
    laid_out = _layout(data, spec) if spec else None
    if laid_out is None:  # an unknown format, a plain-fields one, or a row whose main field has the wrong shape
        return Group(head, *(part for key, value in data.items() for part in _section(str(key), value)))
    parts, shown = laid_out
    extra = [Text.assemble((f"{key}: ", "dim"), _text(value)) for key, value in data.items() if key not in shown]
    return Group(head, *parts, *extra)


def _layout(data: dict[str, Any], spec: FormatSpec) -> tuple[list[RenderableType], set[str]] | None:
    """The row laid out by its FormatSpec's `view` (core/specs.py), and the keys that layout showed."""
    keys = spec.view_keys
    if spec.view == "chat" and isinstance(data.get(keys[0]), list):
        return render_chat(data[keys[0]], keys[1], keys[2]), {keys[0]}
    if spec.view == "tokens" and isinstance(data.get(keys[0]), list):
        return [render_ner(data[keys[0]], data.get(keys[1]) or data.get("tags") or [])], {keys[0], keys[1], "tags"}
    if spec.view == "squad":
        return render_squad(data), {"question", "context", "answers"}
    if spec.view == "sections":
        parts: list[RenderableType] = []
        for key in keys:  # required fields always, optional ones when they say something
            if key in spec.fields or data.get(key):
                parts += _section(key, data.get(key, ""), SECTION_STYLES.get(key, "bold cyan"))
        return parts, set(keys)
    return None


class RecordView(VerticalScroll):
    """A scrollable pane showing one rendered row."""

    DEFAULT_CSS = """
    RecordView { height: 1fr; border: round $panel; padding: 0 1; }
    RecordView > Static { width: 100%; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.row: Row | None = None
        self.fmt = "unknown"
        self._body = Static(render_record(None))

    def compose(self):  # type: ignore[override]
        yield self._body

    def show_row(self, row: Row | None, fmt: str) -> None:
        self.row, self.fmt = row, fmt
        self._body.update(render_record(row, fmt))
        self.scroll_home(animate=False)
