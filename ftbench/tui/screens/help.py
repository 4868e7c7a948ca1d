"""The `?` screen: every key that works on the screen below, with its binding id for ftbench.toml [keymap]."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "dismiss", "Close", id="help_close"),
        Binding("q", "dismiss", "Close", show=False),
        Binding("question_mark", "dismiss", "Close", show=False),
        Binding("t", "app.tour", "Tour", id="help_tour"),
    ]

    def __init__(self, title: str, rows: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.help_title = title
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Static(Text(f"Keys — {self.help_title}", style="bold"), id="help-title")
            table: DataTable[str] = DataTable(id="help-table", cursor_type="row", zebra_stripes=True)
            table.add_columns("key", "action", "binding id (remap in ftbench.toml)")
            for key, description, binding_id in self.rows:
                table.add_row(key, description, binding_id)
            yield table
            yield Static(
                "t: the first-run tour.  ctrl+p: the command palette with every action.  Esc closes.", id="help-foot"
            )
