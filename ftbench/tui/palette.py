"""Every ftbench action in one list: for the TUI's command palette (ctrl+p) and the `?` help screen.

Both derive from the bindings that carry an id (the ids users remap in ftbench.toml [keymap]), on the
current screen first and then the app, so a new action shows up in the palette and the help the moment
it gets a key, with the same words as the footer. Widget keys (cursor movement...) are left out.
(Not to be confused with ftbench/commands/, the CLI's subcommands.) It takes any Textual App and is told
the numbered screens, so it needs nothing from tui/app.py, which imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.dom import DOMNode
from textual.screen import Screen


def described_bindings(app: App[Any], screen: Screen) -> Iterator[tuple[str, Binding, DOMNode]]:
    """(key shown to the user, binding, node that runs it) for each binding with an id and a description."""
    seen: set[str] = set()
    keymap = getattr(app, "_keymap", {}) or {}
    for node in (screen, app):
        for bindings in node._bindings.key_to_bindings.values():
            for binding in bindings:
                if not binding.description or not binding.id or binding.id in seen:
                    continue
                if node is app and app.check_action(*_parse(binding.action)) is False:
                    continue
                seen.add(binding.id)
                if binding.id in keymap:
                    display = app.get_key_display(Binding(keymap[binding.id].split(",")[0], binding.action, ""))
                else:
                    display = binding.key_display or app.get_key_display(binding)
                yield display, binding, node


def _parse(action: str) -> tuple[str, tuple[object, ...]]:
    name, _, rest = action.partition("(")
    args = tuple(a.strip().strip("'\"") for a in rest.rstrip(")").split(",") if a.strip()) if rest else ()
    return name, args


def palette_commands(
    app: App[Any], screen: Screen, screens: Iterable[tuple[str, str, str]], open_screen: Callable[[str], object]
) -> Iterator[SystemCommand]:
    """`screens` are the numbered screens present, as (mode, title, key)."""
    for mode, title, key in screens:
        yield SystemCommand(f"Go to {title}", f"Switch to the {title} screen (key {key})", partial(open_screen, mode))
    for display, binding, node in described_bindings(app, screen):
        if binding.action.startswith("switch_screen_to"):
            continue
        title = binding.description[:1].upper() + binding.description[1:]
        yield SystemCommand(
            title,
            binding.tooltip or f"{binding.description} (key {display})",
            partial(app.run_action, binding.action, node),
        )
