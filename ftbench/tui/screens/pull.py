"""The Pull dialog (Models screen, `p`): type a Hub repo id, Enter starts a pull job.

The job is started through `ftbench.hub.launch` (light: a repo id check and a job folder), so the TUI never
imports huggingface_hub. The download runs detached (follow it on the Jobs screen); the model shows up in
the Models list from the Hugging Face cache when it finishes (`r` rescans).
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from ftbench.core.errors import FtbenchError
from ftbench.core.workspace import Workspace


class PullScreen(ModalScreen[str | None]):
    """Dismisses with the started job's id, or None when closed with Esc."""

    DEFAULT_CSS = """
    PullScreen { align: center middle; }
    PullScreen #pull-box { width: 70; height: auto; border: round $accent; padding: 0 1; background: $surface; }
    """
    BINDINGS = [Binding("escape", "cancel", "Close", id="pull_close")]

    def __init__(self, ws: Workspace) -> None:
        super().__init__()
        self.ws = ws

    def compose(self) -> ComposeResult:
        with Vertical(id="pull-box"):
            yield Static("Pull a model from the Hugging Face Hub into the HF cache")
            yield Input(placeholder="owner/name, e.g. HuggingFaceTB/SmolLM2-135M-Instruct", id="pull-repo")
            yield Static("Enter starts the download as a job; Esc closes.", id="pull-note")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        from ftbench.hub.launch import start_pull_job

        try:
            job = start_pull_job(self.ws, event.value)
        except FtbenchError as exc:
            self.query_one("#pull-note", Static).update(f"{exc.message} {exc.hint or ''}".strip())
            return
        self.dismiss(job.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
