"""The first-run guide: the next three steps on a new workspace, each one key away (`?` then `t` reopens it).

A workspace is new while no training run was ever started in it and nobody closed the guide; closing it is
remembered in `<workspace>/.cache/tui-state.json` (written atomically), so it opens once per workspace.
"""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from ftbench.core.atomic import atomic_write_json
from ftbench.core.workspace import Workspace

STATE_FILE = ".cache/tui-state.json"
# (screen mode, key, what to do there): the path from data to a model you can talk to
STEPS: tuple[tuple[str, str, str], ...] = (
    ("datasets", "3", "Look at a dataset: its rows, detected format and stats."),
    ("new_run", "5", "Start a run from a recipe: pick one, check it says ✓ valid, press F5."),
    ("chat", "6", "Chat with its adapter (t in the run's monitor), or export it to GGUF (g)."),
)


def _state(ws: Workspace) -> dict[str, Any]:
    try:
        loaded = json.loads((ws.root / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def guide_due(ws: Workspace) -> bool:
    """Open the guide by itself: nobody closed it here, and no run was ever started in this workspace."""
    if _state(ws).get("guide_dismissed"):
        return False
    try:
        return not any(ws.runs_dir.iterdir())
    except OSError:
        return True


def remember_dismissed(ws: Workspace) -> None:
    state = _state(ws)
    state["guide_dismissed"] = True
    (ws.root / STATE_FILE).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(ws.root / STATE_FILE, state)


class GuideScreen(ModalScreen[str | None]):
    """Dismissed with the mode to open (a click on a step) or None (Esc / enter / any other key)."""

    BINDINGS = [Binding("escape,enter", "go('')", "Close", id="guide_close")]

    def on_key(self, event: events.Key) -> None:
        """Any other key closes the guide and then does what it does anywhere: `3`, `5`, `6` open the steps'
        screens, `q` quits, a remapped key keeps its meaning. The guide never traps a key."""
        event.stop()
        event.prevent_default()
        self.dismiss(None)
        self.app.post_message(events.Key(event.key, event.character))

    def compose(self) -> ComposeResult:
        with Vertical(id="guide-box"):
            yield Static(Text("Start here: three steps to a fine-tuned model", style="bold"), id="guide-title")
            for n, (mode, key, text) in enumerate(STEPS, 1):
                line = Content.from_markup(
                    f"[@click=screen.go('{mode}')] [b reverse] $key [/] {n}. $text[/]", key=key, text=text
                )
                yield Static(line, classes="guide-step")
            yield Static(
                "Screens: the tabs at the top (click one), their digit keys, or ctrl+PgUp / ctrl+PgDn from anywhere, "
                "even inside a text box. Esc leaves a text box.\n"
                "Esc or enter closes this guide for good; ? then t opens it again.",
                id="guide-foot",
            )

    def action_go(self, mode: str) -> None:
        self.dismiss(mode or None)
