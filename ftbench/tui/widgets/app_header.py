"""The one-line header every numbered screen shares: the palette icon, a tab per screen, then the title.

The tab bar is how a new user finds every screen: each tab names its key, the current one is highlighted,
and a click switches to it. The list comes from `Services.screens` (so this module needs nothing from
tui/app.py); an app that offers none (`ftbench chat` on its own) shows no tabs. Below `NARROW` columns the
title gives its room to the tabs: the highlighted tab already says where you are.
"""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import Header, Static
from textual.widgets._header import HeaderIcon, HeaderTitle

from ftbench.tui.services import services

NARROW = 100  # below this many columns the header shows tabs only


def tabs_markup(screens: tuple[tuple[str, str, str], ...], current: str, short: bool = False) -> Content:
    """Content markup with one clickable tab per (mode, title, key); `short` keeps only the key and 4 letters."""
    parts = []
    for mode, title, key in screens:
        label = f" {key} {title[:4] if short else title} "
        style = "reverse bold" if mode == current else "dim" if short else ""
        action = f"app.switch_screen_to('{mode}')"
        parts.append(Content.from_markup(f"[{style} @click={action}]$label[/]", label=label))
    return Content("").join(parts)


class ScreenTabs(Static):
    DEFAULT_CSS = """
    ScreenTabs { width: auto; height: 1; }
    """

    def on_mount(self) -> None:
        self.tooltip = "Click a tab, press its digit, or ctrl+PgUp / ctrl+PgDn from anywhere"
        self.show_tabs()

    def show_tabs(self) -> None:
        screens = services(self.app).screens
        self.display = bool(screens)
        if not screens:
            return
        current = getattr(self.app, "current_mode", "")
        full = tabs_markup(screens, current)
        room = self.app.size.width - 4
        self.update(full if full.cell_length <= room else tabs_markup(screens, current, short=True))


class AppHeader(Header):
    """Header with the screen tabs between the icon and the title; a click never toggles a tall header."""

    DEFAULT_CSS = """
    AppHeader { layout: horizontal; }
    AppHeader HeaderIcon { dock: none; width: 3; padding: 0 1 0 1; }
    AppHeader HeaderTitle { width: 1fr; content-align: right middle; padding: 0 1; }
    AppHeader.-narrow HeaderTitle { display: none; }
    """

    def __init__(self) -> None:
        super().__init__(icon="≡")

    def compose(self) -> ComposeResult:
        yield HeaderIcon().data_bind(Header.icon)
        yield ScreenTabs()
        yield HeaderTitle()

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < NARROW, "-narrow")
        self.query_one(ScreenTabs).show_tabs()
        self.call_after_refresh(self._retitle)

    def _retitle(self) -> None:
        self.query_one(HeaderTitle).update(self.format_title())

    def format_title(self) -> Content:
        """A numbered screen's tab already names it, so the title is the workspace; a long path keeps its end."""
        title, sub_title = self.screen_title, self.screen_sub_title
        if not sub_title or title not in {t for _, t, _ in services(self.app).screens}:
            return self.app.format_title(title, sub_title)
        room = self.query_one(HeaderTitle).content_size.width
        if 1 < room < len(sub_title):
            sub_title = "…" + sub_title[-(room - 1) :]
        return Content(sub_title)

    def _on_click(self) -> None:
        """Header toggles a 3-line layout on click; here a click belongs to the tab under it."""
