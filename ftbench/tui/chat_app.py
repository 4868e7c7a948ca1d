"""`ftbench chat MODEL` without --prompt: the Chat screen as the whole app (no numbered screens, no jobs)."""

from __future__ import annotations

from textual.app import App

from ftbench.chat.transcripts import Transcript
from ftbench.core.workspace import Workspace
from ftbench.tui.screens.chat import ChatScreen
from ftbench.tui.services import Services


class ChatApp(App[int]):
    TITLE = "ftbench chat"

    def __init__(self, ws: Workspace, transcript: Transcript, server_args: list[str] | None = None) -> None:
        super().__init__()
        self.ws = ws
        self.transcript = transcript
        self.server_args = server_args
        self.services = Services(standalone_chat=True)  # closing the screen ends the app

    def on_mount(self) -> None:
        self.push_screen(ChatScreen(self.ws, transcript=self.transcript, server_args=self.server_args))


def run_chat_app(ws: Workspace, transcript: Transcript, server_args: list[str] | None = None) -> int:
    return int(ChatApp(ws, transcript, server_args).run() or 0)
