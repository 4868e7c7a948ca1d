"""A virtual table over a lazily read dataset: only the rows on screen are ever read.

Toolong-style line API: `virtual_size` is (width, row count) and `render_line(y)` asks the reader for the page
of 100 rows holding that line, through a small LRU cache. Rows a still-running index has not reached yet are
drawn as "indexing…" rather than blocking the event loop; the screen refreshes the view as the index grows.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ftbench.catalog.datasets import DatasetReader, Row

PAGE_ROWS = 100
CACHE_PAGES = 64
MAX_CELL = 36
NUM_WIDTH = 9
DIM = Style(dim=True)
DIM_ITALIC = Style(dim=True, italic=True)
RED = Style(color="red")
REVERSE = Style(reverse=True)


def cell_text(value: Any) -> str:
    """A one-line preview of a value: newlines shown as ⏎, containers as compact JSON."""
    text = (
        value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    )
    return text.replace("\r", "").replace("\n", "⏎").replace("\t", " ")


def column_widths(columns: list[str], rows: list[Row]) -> list[int]:
    """Each column as wide as its name or its widest value on the first page, capped (wider when few)."""
    cap = MAX_CELL if len(columns) > 2 else 2 * MAX_CELL
    widths = []
    for col in columns:
        seen = [len(cell_text(r.data[col])) for r in rows if r.data and col in r.data]
        widths.append(max(4, min(cap, max([len(col), *seen]))))
    return widths


def _fit(text: str, width: int) -> str:
    """Exactly `width` terminal cells (wide characters counted as two), with … when cut."""
    if len(text) <= width and cell_len(text) <= width:
        return text + " " * (width - cell_len(text))
    return set_cell_size(text, width - 1) + "…"


class DatasetTable(ScrollView, can_focus=True):
    """Rows of a DatasetReader as a scrollable table with a cursor row."""

    DEFAULT_CSS = """
    DatasetTable { height: 1fr; border: round $panel; }
    DatasetTable:focus { border: round $accent; }
    """
    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First row", show=False),
        Binding("end", "jump(-1)", "Last row", show=False),
    ]

    cursor = reactive(0, always_update=True)

    class RowHighlighted(Message):
        """The cursor moved to `row` (None when the row is not read yet)."""

        def __init__(self, index: int, row: Row | None) -> None:
            super().__init__()
            self.index = index
            self.row = row

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reader: DatasetReader | None = None
        self.columns: list[str] = []
        self.widths: list[int] = []
        self.row_count = 0
        self._pages: OrderedDict[int, list[Row]] = OrderedDict()
        self._base_style: Style | None = None

    # ----------------------------------------------------------------- data
    def load(
        self, reader: DatasetReader | None, first_page: list[Row] | None = None, columns: list[str] | None = None
    ) -> None:
        """Show `reader` from its first row; `first_page` (already read off the loop) seeds the cache."""
        self.reader = reader
        self._pages.clear()
        first_page = first_page or []
        if first_page:
            self._pages[0] = first_page[:PAGE_ROWS] if len(first_page) >= PAGE_ROWS else first_page
        self.columns = columns if columns is not None else (reader.columns() if reader else [])
        self.widths = column_widths(self.columns, first_page)
        self.set_row_count(reader.row_count()[0] if reader else 0)
        self.scroll_to(0, 0, animate=False)
        self.cursor = 0

    def set_row_count(self, count: int) -> None:
        """The index grew (or finished): resize the scroll area and redraw."""
        self.row_count = count
        width = NUM_WIDTH + 1 + sum(w + 3 for w in self.widths)
        self.virtual_size = Size(width, count + 1)  # + the header line
        if self._pages and 0 in self._pages and len(self._pages[0]) < PAGE_ROWS and count > len(self._pages[0]):
            del self._pages[0]  # the seeded first page was short; read it in full now
        self.refresh()

    def row(self, index: int) -> Row | None:
        """Row `index` from the cache or the reader; None when the index has not reached it yet."""
        if self.reader is None or index < 0 or index >= self.row_count:
            return None
        page = index // PAGE_ROWS
        rows = self._pages.get(page)
        if rows is None:
            if not self._ready(page * PAGE_ROWS + PAGE_ROWS - 1):
                return None
            rows = self.reader.rows(page * PAGE_ROWS, PAGE_ROWS)
            self._pages[page] = rows
            while len(self._pages) > CACHE_PAGES:
                self._pages.popitem(last=False)
        else:
            self._pages.move_to_end(page)
        offset = index - page * PAGE_ROWS
        return rows[offset] if offset < len(rows) else None

    def _ready(self, last: int) -> bool:
        ready = getattr(self.reader, "ready", None)
        return True if ready is None else bool(ready(min(last, self.row_count - 1)))

    # ----------------------------------------------------------------- rendering
    def header_text(self) -> Text:
        text = Text("#".rjust(NUM_WIDTH) + " ", style="bold")
        for col, width in zip(self.columns, self.widths, strict=True):
            text.append("│ ", style="dim")
            text.append(_fit(col, width) + " ", style="bold")
        return text

    def row_text(self, index: int) -> Text:
        """Row `index` as styled text (what the line shows, for tests and copy)."""
        return Text.assemble(*((seg.text, seg.style) for seg in self.row_segments(index)))

    def row_segments(self, index: int) -> list[Segment]:
        """Segments built by hand rather than through Text.render: a jump redraws a whole screen of rows."""
        row = self.row(index)
        segments = [Segment(f"{index + 1:>{NUM_WIDTH},} ", DIM)]
        if row is None:
            segments.append(Segment("│ indexing…", DIM_ITALIC))
        elif row.error is not None or row.data is None:
            segments += [Segment("│ ", DIM), Segment(f"bad row: {row.error}", RED)]
        else:
            for col, width in zip(self.columns, self.widths, strict=True):
                segments.append(Segment("│ ", DIM))
                segments.append(Segment(_fit(cell_text(row.data[col]) if col in row.data else "", width) + " "))
        return segments

    def render_lines(self, crop: Region) -> list[Strip]:
        self._base_style = self.rich_style  # computed once per frame, not once per line
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        base = self._base_style if self._base_style is not None else self.rich_style
        width = self.scrollable_content_region.width
        scroll_x, scroll_y = self.scroll_offset
        if y == 0:
            segments = [s for s in self.header_text().render(self.app.console) if s.text != "\n"]
        else:
            index = scroll_y + y - 1
            if index >= self.row_count:
                return Strip.blank(width, base)
            segments = self.row_segments(index)
            if index == self.cursor:
                segments = list(Segment.apply_style(segments, post_style=REVERSE))
        strip = Strip(segments).crop(scroll_x, scroll_x + width)
        return (
            strip.extend_cell_length(width).apply_style(base) if strip.cell_length < width else strip.apply_style(base)
        )

    # ----------------------------------------------------------------- cursor
    def watch_cursor(self, index: int) -> None:
        self._scroll_cursor_visible()
        self.refresh()
        self.post_message(self.RowHighlighted(index, self.row(index)))

    def _scroll_cursor_visible(self) -> None:
        visible = max(self.scrollable_content_region.height - 1, 1)
        top = int(self.scroll_offset.y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + visible:
            self.scroll_to(y=self.cursor - visible + 1, animate=False)

    def go_to(self, index: int) -> None:
        """Put the cursor on row `index` (clamped) and scroll it into view."""
        self.cursor = max(0, min(index, max(self.row_count - 1, 0)))

    def action_cursor(self, delta: int) -> None:
        self.go_to(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self.go_to(self.cursor + direction * max(self.scrollable_content_region.height - 1, 1))

    def action_jump(self, index: int) -> None:
        self.go_to(self.row_count - 1 if index < 0 else index)
