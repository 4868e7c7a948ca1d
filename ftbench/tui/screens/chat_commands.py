"""The chat screen's slash commands (/set, /system, /add, /remove, /toggle, /clear, /save, /help).

A mixin so the screen's module stays about columns, the server and the prompt; every command acts on the
screen's own transcript and columns, and a bad command is an `FtbenchError` the prompt handler shows.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from ftbench.chat.protocol import GenSettings
from ftbench.core.errors import FtbenchError

if TYPE_CHECKING:
    from ftbench.chat.transcripts import Transcript
    from ftbench.tui.widgets.chat_column import ChatColumn

HELP = (
    "Type a message for every enabled column. Commands: /set key=value [@column] · /system TEXT · "
    "/add MODEL_OR_ADAPTER [as NAME] · /remove NAME · /toggle NAME · /clear · /save. "
    "esc stops replies, ctrl+r restarts the server, ctrl+o closes chat and frees the models."
)


class ChatCommands:
    """Slash commands for `ChatScreen`, which provides the attributes and methods declared here."""

    if TYPE_CHECKING:  # provided by ChatScreen and Textual's Screen; declared only for the type checker
        transcript: Transcript

        def column(self, name: str) -> ChatColumn: ...
        def columns(self) -> list[ChatColumn]: ...
        def _update_bar(self) -> None: ...
        def remove_variant(self, name: str) -> None: ...
        def add_variant_ref(self, ref: str, name: str | None = None) -> Any: ...
        def action_save(self) -> None: ...
        def notify(self, message: str, *args: Any, **kwargs: Any) -> None: ...

    def run_command(self, line: str) -> None:
        parts = shlex.split(line[1:])
        if not parts:
            return
        cmd, args = parts[0].lower(), parts[1:]
        if cmd == "help":
            self.notify(HELP, timeout=15)
        elif cmd == "set":
            self.cmd_set(args)
        elif cmd == "system":
            self.transcript.settings = self.transcript.settings.merged({"system": " ".join(args)})
            self._update_bar()
        elif cmd == "add":
            name = args[2] if len(args) == 3 and args[1] == "as" else None
            if not args or (len(args) > 1 and name is None):
                raise FtbenchError(
                    "Usage: /add MODEL_OR_ADAPTER [as NAME].", "Example: /add 20261122-141503-sft-demo-3f2a"
                )
            self.add_variant_ref(args[0], name)
        elif cmd == "remove":
            self.remove_variant(self._need_column(args))
        elif cmd == "toggle":
            col = self.column(self._need_column(args))
            col.set_enabled(not col.enabled)
        elif cmd == "clear":
            self.transcript.history.clear()
            for col in self.columns():
                col.clear()
        elif cmd == "save":
            self.action_save()
        else:
            raise FtbenchError(
                f"Unknown command /{cmd}.", "Commands: /set /system /add /remove /toggle /clear /save /help."
            )

    def _need_column(self, args: list[str]) -> str:
        names = [c.variant for c in self.columns()]
        if len(args) != 1 or args[0] not in names:
            raise FtbenchError(f"Name one column: {', '.join(names) or 'none open'}.", "Example: /toggle base")
        return args[0]

    def cmd_set(self, args: list[str]) -> None:
        """/set key=value ... [@column]: shared settings, or one column's overrides."""
        target = next((a[1:] for a in args if a.startswith("@")), None)
        pairs = [a for a in args if not a.startswith("@")]
        if not pairs or any("=" not in p for p in pairs):
            raise FtbenchError(
                "Usage: /set key=value [key=value ...] [@column].", "Keys: " + ", ".join(GenSettings().to_dict()) + "."
            )
        changes = dict(p.split("=", 1) for p in pairs)
        if target is None:
            self.transcript.settings = self.transcript.settings.merged(changes)
            self._update_bar()
            return
        self._need_column([target])
        merged = {**self.transcript.overrides.get(target, {}), **changes}
        self.transcript.settings.merged(merged)  # validates before storing
        typed = {k: getattr(GenSettings.from_dict(merged), k) for k in merged}
        self.transcript.overrides[target] = typed
        self.column(target).set_overrides(typed)
