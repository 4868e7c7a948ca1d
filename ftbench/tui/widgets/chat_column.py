"""One chat column: a variant's name and state, its own message history, and its last reply's speed.

The column only displays; the chat screen owns the transcript and the server. Streaming appends to the
reply widget piece by piece (`append`), and `finish` writes time to first token and tokens/s under it.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

STATUS_STYLE = {"loading": "yellow", "ready": "green", "busy": "cyan", "error": "red", "off": "grey50"}


def format_stats(done: dict[str, Any]) -> str:
    """'12 tok · TTFT 85 ms · 41.3 tok/s' from a `done` event (n/a where a number is missing)."""
    ttft = f"{done['ttft_s'] * 1000:.0f} ms" if done.get("ttft_s") is not None else "n/a"
    tps = f"{done['tok_s']:.1f} tok/s" if done.get("tok_s") is not None else "n/a"
    tail = " · stopped" if done.get("cancelled") else (" · max tokens" if done.get("stop_reason") == "length" else "")
    return f"{done.get('tokens', 0)} tok · TTFT {ttft} · {tps}{tail}"


class ChatMessage(Static):
    """One message bubble; role decides the style."""

    DEFAULT_CSS = """
    ChatMessage { padding: 0 1; margin: 0 0 1 0; }
    ChatMessage.user { background: $boost; color: $text; }
    ChatMessage.assistant { color: $text; }
    ChatMessage.error { color: $error; }
    """

    def __init__(self, role: str, content: str = "") -> None:
        super().__init__(Text(content), classes=role)
        self.role = role
        self.text = content

    def set_content(self, content: str) -> None:
        self.text = content
        self.update(Text(content))


class ChatColumn(Vertical):
    """A column for one variant; `enabled` decides whether the next prompt goes to it."""

    DEFAULT_CSS = """
    ChatColumn { width: 1fr; border: round $panel; margin: 0 0 0 0; }
    ChatColumn.off { opacity: 60%; }
    ChatColumn.selected { border: round $accent; }
    ChatColumn > .col-head { height: 1; padding: 0 1; text-style: bold; }
    ChatColumn > .col-sub { height: 1; padding: 0 1; color: $text-muted; }
    ChatColumn > VerticalScroll { height: 1fr; }
    ChatColumn > .col-stats { height: 1; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, name: str, kind: str, description: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.variant = name
        self.kind = kind
        self.description = description
        self.status = "loading"
        self.detail = ""
        self.enabled = True
        self.overrides: dict[str, Any] = {}
        self.reply: ChatMessage | None = None
        self.last_stats = ""

    def compose(self) -> ComposeResult:
        yield Static(self._head_text(), classes="col-head")
        yield Static(Text(self.description, overflow="ellipsis", no_wrap=True), classes="col-sub")
        yield VerticalScroll(classes="col-body")
        yield Static("", classes="col-stats")

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).anchor()

    # -- state ---------------------------------------------------------------------------------------------

    def _head_text(self) -> Text:
        state = "off" if not self.enabled and self.status == "ready" else self.status
        text = Text.assemble((self.variant, "bold"), "  ", (f"● {state}", STATUS_STYLE.get(state, "white")))
        if self.overrides:
            text.append("  " + " ".join(f"{k}={v}" for k, v in sorted(self.overrides.items())), style="italic")
        return text

    def _refresh_head(self) -> None:
        if self.is_mounted:
            self.query_one(".col-head", Static).update(self._head_text())
            self.set_class(not self.enabled, "off")

    def set_status(self, status: str, detail: str = "") -> None:
        self.status = status
        self.detail = detail
        self._refresh_head()
        if detail and self.is_mounted:
            self.query_one(".col-stats", Static).update(Text(detail, overflow="ellipsis", no_wrap=True))

    def set_enabled(self, enabled: bool) -> None:
        self.enabled = enabled
        self._refresh_head()

    def set_overrides(self, overrides: dict[str, Any]) -> None:
        self.overrides = dict(overrides)
        self._refresh_head()

    # -- messages ------------------------------------------------------------------------------------------

    def _body(self) -> VerticalScroll:
        return self.query_one(VerticalScroll)

    def add_message(self, role: str, content: str) -> ChatMessage:
        msg = ChatMessage(role, content)
        self._body().mount(msg)
        return msg

    def load_history(self, messages: list[dict[str, Any]]) -> None:
        for m in messages:
            self.add_message(m["role"], m["content"])
        last = next((m for m in reversed(messages) if m["role"] == "assistant"), None)
        if last is not None and "tokens" in last:
            self.last_stats = format_stats(last)
            self.query_one(".col-stats", Static).update(self.last_stats)

    def start_reply(self, prompt: str) -> None:
        self.add_message("user", prompt)
        self.reply = self.add_message("assistant", "")
        self.set_status("busy")

    def append(self, piece: str) -> None:
        if self.reply is not None:
            self.reply.set_content(self.reply.text + piece)

    def finish(self, done: dict[str, Any]) -> None:
        if self.reply is not None and done.get("text") is not None and done["text"] != self.reply.text:
            self.reply.set_content(done["text"])  # the server's final text wins over the streamed pieces
        self.reply = None
        self.last_stats = format_stats(done)
        self.set_status("ready")
        self.query_one(".col-stats", Static).update(self.last_stats)

    def fail(self, message: str) -> None:
        if self.reply is not None and not self.reply.text:
            self.reply.remove()
        self.reply = None
        self.add_message("error", message)
        self.set_status("error" if self.status in ("loading", "error") else "ready")

    def clear(self) -> None:
        self._body().remove_children()
        self.reply = None
        self.last_stats = ""
        self.query_one(".col-stats", Static).update("")
