"""The Serve dialog: starts a serve job for what the screen below shows, then shows how to reach it.

The job is started through `ftbench.serve.launch` (light: paths and job folders), and a thread worker waits
for its status.json to carry the URL, so the TUI never imports the web stack or the model libraries. The
text (URL, model names, an `ssh -L` line, a curl example) is a read-only TextArea, so it can be selected
and copied. Esc closes the dialog; the server keeps running as a job (stop it on the Jobs screen).
"""

from __future__ import annotations

import socket
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static, TextArea

from ftbench.core.errors import FtbenchError
from ftbench.core.workspace import Workspace


class ServeScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    ServeScreen { align: center middle; }
    ServeScreen #serve-box { width: 90%; height: auto; max-height: 80%; border: round $accent; padding: 0 1; background: $surface; }
    ServeScreen #serve-card { height: 8; }
    """
    BINDINGS = [Binding("escape", "dismiss", "Close", id="serve_close")]

    def __init__(self, ws: Workspace, options: Any) -> None:
        super().__init__()
        self.ws = ws
        self.options = options
        self.job_id: str | None = None
        self.card: list[str] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="serve-box"):
            yield Static(f"Starting a server for {self.options.model}…", id="serve-title")
            yield TextArea("", id="serve-card", read_only=True, show_line_numbers=False)
            yield Static(
                "Esc closes this; the server keeps running as a job (stop it on the Jobs screen).", id="serve-foot"
            )

    def on_mount(self) -> None:
        self.start()

    @work(thread=True, exclusive=True, group="serve-start", exit_on_error=False)
    def start(self) -> None:
        from ftbench.serve.connect import serve_card
        from ftbench.serve.launch import start_serve_job, wait_ready

        try:
            job = start_serve_job(self.ws, self.options)
            self.job_id = job.id
            self.app.call_from_thread(self._title, f"Serve job {job.id}: loading the models…")
            serve = wait_ready(job)
        except FtbenchError as exc:
            self.app.call_from_thread(
                self._title, f"Cannot serve: {exc.message}" + (f"\n{exc.hint}" if exc.hint else "")
            )
            return
        self.card = serve_card(serve, socket.gethostname())
        self.app.call_from_thread(self._show, job.id)

    def _title(self, text: str) -> None:
        self.query_one("#serve-title", Static).update(text)

    def _show(self, job_id: str) -> None:
        self._title(f"Serving as job {job_id} (OpenAI-compatible; select a line to copy it)")
        self.query_one("#serve-card", TextArea).load_text("\n".join(self.card))
