"""The export-with-eval dialog: an eval file (and an optional label rule) for `ftbench export --eval`.

The run monitor's plain export (g) starts at once; this dialog (G) asks first for prompts with references, so
the export job also scores the merged model and each quant on them and writes the retention table into the
export card. The file is checked here, before any job exists (the same check `ftbench export --eval` runs);
a bad file or pattern is shown in the dialog, which stays open to fix it. Esc cancels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from ftbench.core.errors import FtbenchError
from ftbench.core.workspace import Workspace


def eval_params(ws: Workspace, eval_file: str, label_pattern: str) -> dict[str, Any]:
    """The export job's eval params from the dialog's fields (a relative path is the workspace's, as in the CLI)."""
    from ftbench.evaluate.retention import check_eval_file

    given = Path(eval_file.strip()).expanduser()
    path = (given if given.is_absolute() or given.exists() else ws.root / given).resolve()
    pattern = label_pattern.strip() or None
    check_eval_file(str(path), pattern)
    return {"eval": str(path), "eval_label_pattern": pattern}


class ExportEvalScreen(ModalScreen[dict[str, Any] | None]):
    DEFAULT_CSS = """
    ExportEvalScreen { align: center middle; }
    ExportEvalScreen #export-box { width: 80%; height: auto; border: round $accent; padding: 0 1; background: $surface; }
    ExportEvalScreen #export-error { color: $error; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="export_eval_cancel")]

    def __init__(self, ws: Workspace, source_name: str, quants: list[str]) -> None:
        super().__init__()
        self.ws = ws
        self.source_name = source_name
        self.quants = quants

    def compose(self) -> ComposeResult:
        with Vertical(id="export-box"):
            yield Static(
                Text(f"Export {self.source_name} ({', '.join(self.quants)}) and score each quant", style="bold")
            )
            yield Input(placeholder="eval file: JSONL prompts with references (or an SFT file)", id="export-eval")
            yield Input(placeholder=r"label pattern, optional, e.g. Sentiment: (\w+)", id="export-label")
            yield Static("", id="export-error")
            yield Static("Enter starts the export · Esc cancels", classes="dim")

    def on_mount(self) -> None:
        self.query_one("#export-eval", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        eval_file = self.query_one("#export-eval", Input).value
        if not eval_file.strip():
            self.query_one("#export-error", Static).update("Give an eval file, or press Esc and export with g.")
            return
        try:
            params = eval_params(self.ws, eval_file, self.query_one("#export-label", Input).value)
        except FtbenchError as exc:
            self.query_one("#export-error", Static).update(f"{exc.message} {exc.hint or ''}".strip())
            return
        self.dismiss(params)

    def action_cancel(self) -> None:
        self.dismiss(None)
