"""The chat screen: one column per variant (base, adapters, merged model, GGUF) and one prompt box.

Models live in a chat server subprocess (ftbench.chat.server) reached through ChatClient, so this screen never
imports torch and survives the server crashing: columns show the error and ctrl+r restarts the server and
reloads them. The client's reader thread posts `ServerEvent`s; handlers here own every state change.

The prompt box takes text (sent to every enabled column; each column keeps its own history) or commands:
/set key=value [@column], /system TEXT, /add MODEL_OR_ADAPTER [as NAME], /remove NAME, /toggle NAME,
/clear, /save, /help. The transcript is saved to <workspace>/chats/<id>.jsonl after every reply.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from ftbench.chat.protocol import VariantSpec
from ftbench.chat.transcripts import Transcript
from ftbench.core.errors import FtbenchError
from ftbench.core.workspace import Workspace
from ftbench.tui.messages import ServerEvent, ServerStarted
from ftbench.tui.screens.chat_commands import ChatCommands
from ftbench.tui.services import services
from ftbench.tui.widgets.app_header import AppHeader
from ftbench.tui.widgets.chat_column import ChatColumn

ClientFactory = Callable[[Callable[[dict[str, Any]], None]], Any]


class ChatScreen(ChatCommands, Screen):
    """Chat with several variants side by side; `client_factory(on_event)` returns a started-later ChatClient."""

    TITLE = "Chat"
    DEFAULT_CSS = """
    ChatScreen { layout: vertical; }
    ChatScreen #chat-bar { height: 1; padding: 0 1; background: $panel; }
    ChatScreen #chat-columns { height: 1fr; }
    ChatScreen #chat-empty { width: 1fr; height: 1fr; content-align: center middle; color: $text-muted; }
    ChatScreen #chat-prompt { dock: bottom; margin: 0 0 1 0; }
    """
    BINDINGS = [
        Binding("escape", "stop", "Stop replies", id="chat_stop"),
        Binding("ctrl+r", "restart", "Restart server", id="chat_restart"),
        Binding("ctrl+s", "save", "Save chat", id="chat_save"),
        Binding("ctrl+o", "close_chat", "Close chat", id="chat_close"),
        Binding("f9", "serve", "Serve (OpenAI API)", id="chat_serve"),
    ]

    def __init__(
        self,
        ws: Workspace,
        variants: list[VariantSpec] | None = None,
        transcript: Transcript | None = None,
        client_factory: ClientFactory | None = None,
        server_args: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.ws = ws
        self.transcript = transcript or Transcript.new(list(variants or []))
        self.client_factory = client_factory or self._default_client
        self.server_args = list(server_args or [])
        self.client: Any = None
        self.pending: dict[int, tuple[str, str]] = {}  # request id -> (op, column)
        self.server_state = "stopped"
        self.saved_path: Path | None = None
        self.close_warned = False  # a close that could not save the chat asks for a second close
        self.queued: list[str] = []  # prompts typed while the columns load, sent in order once they are ready

    # -- layout --------------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        if not services(self.app).standalone_chat:
            yield AppHeader()
        yield Static(self._bar_text(), id="chat-bar")
        with Horizontal(id="chat-columns"):
            for spec in self.transcript.variants:
                yield self._column(spec)
            if not self.transcript.variants:
                yield Static(
                    "No model yet: /add MODEL (a folder, a .gguf, a run id) or open chat from a run.", id="chat-empty"
                )
        yield Input(placeholder="Message every column, or /help", id="chat-prompt")
        yield Footer()

    def _column(self, spec: VariantSpec) -> ChatColumn:
        col = ChatColumn(spec.name, spec.kind, f"{spec.kind}: {spec.describe()}", id=self._col_id(spec.name))
        col.overrides = dict(self.transcript.overrides.get(spec.name, {}))
        return col

    @staticmethod
    def _col_id(name: str) -> str:
        return "col-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in name)

    def column(self, name: str) -> ChatColumn:
        return self.query_one("#" + self._col_id(name), ChatColumn)

    def columns(self) -> list[ChatColumn]:
        return list(self.query(ChatColumn))

    def _bar_text(self) -> str:
        s = self.transcript.settings
        mode = "greedy" if s.greedy else f"temp {s.temperature} top_p {s.top_p} top_k {s.top_k}"
        system = f" · system: {s.system[:30]!r}" if s.system else ""
        return (
            f"server {self.server_state} · {mode} · max {s.max_new_tokens} · rep {s.repetition_penalty} · seed {s.seed}{system}"
            + (f" · {len(self.queued)} queued" if self.queued else "")
        )

    def _update_bar(self) -> None:
        self.query_one("#chat-bar", Static).update(self._bar_text())

    def on_mount(self) -> None:
        for col in self.columns():
            history = self.transcript.history.get(col.variant)
            if history:
                col.load_history(history)
        self.query_one("#chat-prompt", Input).focus()
        if self.transcript.variants:
            self.start_server()

    def on_unmount(self) -> None:
        self.stop_server()

    # -- server --------------------------------------------------------------------------------------------

    def _default_client(self, on_event: Callable[[dict[str, Any]], None]) -> Any:
        from ftbench.chat.client import ChatClient

        return ChatClient(on_event=on_event, log_path=self.ws.chats_dir / "server.log", server_args=self.server_args)

    def start_server(self) -> None:
        if self.server_state in ("starting", "running"):
            return
        self.server_state = "starting"
        self._update_bar()
        self.client = self.client_factory(self.post_message_event)
        self._start_worker(self.client)

    def post_message_event(self, event: dict[str, Any]) -> None:
        """Called on the client's reader thread: hand the event to the event loop."""
        self.post_message(ServerEvent(event))

    @work(thread=True, exclusive=True, group="chat-server", exit_on_error=False)
    def _start_worker(self, client: Any) -> None:
        try:
            client.start()
        except FtbenchError as exc:
            self.post_message(ServerStarted(exc.message))
            return
        self.post_message(ServerStarted())

    def stop_server(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            client.close()
        self.server_state = "stopped"
        self.pending.clear()

    def on_server_started(self, message: ServerStarted) -> None:
        if message.error:
            self.server_state = "failed"
            self._update_bar()
            for col in self.columns():
                col.fail(f"chat server failed to start: {message.error}")
            self._flush_queue()
            return
        self.server_state = "running"
        self._update_bar()
        for spec in self.transcript.variants:
            self._load(spec)

    def _load(self, spec: VariantSpec) -> None:
        self.column(spec.name).set_status("loading")
        rid = self.client.send("load", variant=spec.to_dict())
        self.pending[rid] = ("load", spec.name)

    def on_server_event(self, message: ServerEvent) -> None:
        event = message.event
        kind = event.get("type")
        if kind == "exit":
            self._server_exited(event)
            return
        rid = event.get("id")
        op, name = self.pending.get(rid, ("", event.get("variant", "")))
        if kind == "log":
            self.notify(str(event.get("message")), severity="warning")
            return
        if name not in {c.variant for c in self.columns()}:
            if kind in ("done", "error", "ok", "loaded"):
                self.pending.pop(rid, None)
            return
        col = self.column(name)
        if kind == "loaded":
            self.pending.pop(rid, None)
            shared = " · shares base" if event.get("base_reused") else ""
            col.set_status("ready", f"loaded in {event.get('load_s', 0):.2f} s{shared}")
            for warning in event.get("warnings", []):
                col.add_message("error", f"warning: {warning}")
                self.notify(f"{name}: {warning}", severity="warning")
        elif kind == "token":
            col.append(event.get("text", ""))
        elif kind == "done":
            self.pending.pop(rid, None)
            col.finish(event)
            self.transcript.add(
                name,
                "assistant",
                event.get("text", ""),
                ttft_s=event.get("ttft_s"),
                tok_s=event.get("tok_s"),
                tokens=event.get("tokens"),
            )
            if not any(op == "generate" for op, _ in self.pending.values()):
                self.save()
        elif kind == "error":
            self.pending.pop(rid, None)
            err = event.get("error") or {}
            text = err.get("message", "failed") + (f" ({err['hint']})" if err.get("hint") else "")
            if op == "generate" and self.transcript.history.get(name):
                self.transcript.history[name].pop()  # the unanswered prompt: keep the history consistent
            col.fail(text)
        self._flush_queue()

    def _server_exited(self, event: dict[str, Any]) -> None:
        if event.get("expected"):
            return
        self.server_state = "crashed"
        self.client = None
        self._update_bar()
        reason = f"chat server exited (code {event.get('returncode')})" + (
            f": {event['stderr_tail']}" if event.get("stderr_tail") else ""
        )
        for op, name in list(self.pending.values()):
            if op == "generate" and self.transcript.history.get(name):
                self.transcript.history[name].pop()
        self.pending.clear()
        for col in self.columns():
            if col.status in ("busy", "loading"):
                col.fail(reason)
            col.set_status("error", "server down: ctrl+r restarts")
        self.notify(reason + " — ctrl+r restarts it", severity="error", timeout=10)

    # -- prompt and commands -------------------------------------------------------------------------------

    @on(Input.Submitted, "#chat-prompt")
    def on_prompt(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        event.input.value = ""
        if not text:
            return
        try:
            if text.startswith("/"):
                self.run_command(text)
            else:
                self.submit_prompt(text)
        except FtbenchError as exc:
            self.notify(exc.message + (f"\n{exc.hint}" if exc.hint else ""), severity="error", timeout=8)

    def _loading(self) -> bool:
        busy = any(op in ("load", "generate") for op, _ in self.pending.values())
        return self.server_state == "starting" or busy or any(c.status == "loading" for c in self.columns())

    def submit_prompt(self, text: str) -> None:
        """Send now, or hold the prompt while columns load or answer: typed text is never silently dropped."""
        if self._loading():
            self.queued.append(text)
            self._update_bar()
            return
        self.send_prompt(text)

    def _flush_queue(self) -> None:
        """Send the oldest held prompt once nothing loads; if nothing can answer it, say so and give it back."""
        if not self.queued or self._loading():
            return
        text = self.queued.pop(0)
        self._update_bar()
        try:
            self.send_prompt(text)
        except FtbenchError as exc:
            held, self.queued = [text, *self.queued], []
            self.query_one("#chat-prompt", Input).value = "\n".join(held)[:2000]
            self.notify(f"Not sent: {exc.message} {exc.hint or ''}".strip(), severity="error", timeout=10)
            self._update_bar()

    def send_prompt(self, text: str) -> list[str]:
        """Send `text` to every enabled, ready column; returns the names it went to."""
        if self.client is None or self.server_state != "running":
            raise FtbenchError(f"The chat server is {self.server_state}.", "Press ctrl+r to (re)start it.")
        targets = [c for c in self.columns() if c.enabled and c.status == "ready"]
        if not targets:
            raise FtbenchError(
                "No column is ready to answer.", "Wait for loading to finish, or /toggle a column back on."
            )
        for col in targets:
            self.transcript.add(col.variant, "user", text)
            col.start_reply(text)
            settings = self.transcript.settings_for(col.variant)
            rid = self.client.send(
                "generate",
                variant=col.variant,
                messages=self.transcript.messages(col.variant),
                settings=settings.to_dict(),
            )
            self.pending[rid] = ("generate", col.variant)
        return [c.variant for c in targets]

    def add_variant(self, spec: VariantSpec) -> None:
        """A new column without touching the others; an adapter on a loaded base reuses its weights."""
        from ftbench.chat.variants import unique_name

        spec.name = unique_name(spec.name, {c.variant for c in self.columns()})
        self.transcript.variants.append(spec)
        for empty in self.query("#chat-empty"):
            empty.remove()
        self.query_one("#chat-columns", Horizontal).mount(self._column(spec))
        if self.server_state == "running":
            self.call_after_refresh(self._load, spec)
        else:
            self.start_server()

    def add_variant_ref(self, ref: str, name: str | None = None) -> VariantSpec:
        """/add: an adapter (run id or folder) on the first HF or GGUF column, else a model of its own."""
        from ftbench.chat.variants import resolve_adapter, resolve_model

        base = next((v for v in self.transcript.variants if v.kind in ("hf", "gguf")), None)
        try:
            spec = resolve_model(self.ws, ref, name, on_note=self.notify)
        except FtbenchError:
            if base is None:
                return self._add_adapter(ref, name)
            spec = resolve_adapter(self.ws, ref, base, name, on_note=self.notify)
        self.add_variant(spec)
        return spec

    def add_adapter(self, adapter: Path | str, name: str | None = None) -> VariantSpec | None:
        """Open chat on a run's adapter, full model or checkpoint from another screen; problems become a
        notification."""
        try:
            return self._add_adapter(adapter, name)
        except FtbenchError as exc:
            self.notify(exc.message + (f"\n{exc.hint}" if exc.hint else ""), severity="error", timeout=10)
            return None

    def _add_adapter(self, adapter: Path | str, name: str | None = None) -> VariantSpec:
        """An adapter column on the open HF base; with none open, its recorded base gets a column first.
        Full weights (a run's model/, a full fine-tune's checkpoint) become a model column of their own."""
        from ftbench.chat.variants import resolve_adapter, resolve_model
        from ftbench.core.artifacts import Weights, resolve

        found = resolve(self.ws, str(adapter), want=("adapter", "model"))
        assert isinstance(found, Weights)
        if found.note:
            self.notify(found.note, timeout=8)
        if found.kind == "model":
            spec = resolve_model(self.ws, str(found.path), name or found.label)
            self.add_variant(spec)
            return spec
        base = next((v for v in self.transcript.variants if v.kind == "hf"), None)
        if base is None:
            recorded = found.base or ""
            try:
                base = resolve_model(self.ws, recorded)
            except FtbenchError:
                base = resolve_model(self.ws, Path(recorded).name)
            self.add_variant(base)
        spec = resolve_adapter(self.ws, str(found.path), base, name or found.label)
        self.add_variant(spec)
        return spec

    def remove_variant(self, name: str) -> None:
        self.transcript.variants = [v for v in self.transcript.variants if v.name != name]
        self.column(name).remove()
        if self.client is not None and self.server_state == "running":
            rid = self.client.send("unload", variant=name)
            self.pending[rid] = ("unload", name)

    # -- actions -------------------------------------------------------------------------------------------

    def action_stop(self) -> None:
        if self.client is not None and any(op == "generate" for op, _ in self.pending.values()):
            self.client.cancel()

    def action_restart(self) -> None:
        self.stop_server()
        for col in self.columns():
            col.set_status("loading")
        self.start_server()

    def action_serve(self) -> None:
        from ftbench.serve.launch import options_for_variants
        from ftbench.tui.screens.serve import ServeScreen

        try:
            options = options_for_variants(self.transcript.variants)
        except FtbenchError as exc:
            self.notify(f"{exc.message} {exc.hint or ''}".strip(), severity="error", timeout=8)
            return
        self.app.push_screen(ServeScreen(self.ws, options))

    def action_save(self) -> None:
        path = self.save()
        if path is not None:
            self.notify(f"Saved chat {self.transcript.id} ({path})")

    def save(self) -> Path | None:
        """Save the transcript; on a full disk warn and keep it in memory (the next save tries again)."""
        path, problem = self.transcript.try_save(self.ws)
        if problem:
            self.notify(problem, severity="warning", timeout=10)
            return None
        self.saved_path = path
        return path

    def action_close_chat(self) -> None:
        """Stop the server (frees the GPU) and leave the screen; a chat that cannot be saved is not left on the
        first try, so it is not lost without a second, deliberate close."""
        if any(self.transcript.history.values()):
            if self.save() is None and not self.close_warned:
                self.close_warned = True
                self.notify("Close again to leave without saving this chat.", severity="warning", timeout=10)
                return
        self.stop_server()
        if services(self.app).standalone_chat:
            self.app.exit(0)
        elif len(self.app.screen_stack) > 1:
            self.app.pop_screen()
        else:
            for col in self.columns():
                col.set_status("error", "closed: ctrl+r starts the server again")
            self._update_bar()
