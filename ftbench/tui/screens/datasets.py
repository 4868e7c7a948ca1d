"""Screen 3, Datasets: every dataset on the box; a lazy table + rendered record preview; stats on request.

Discovery (a `CatalogFeed`: rows as files are found, rows/format as each is read or taken from the
workspace's metadata cache), opening a file, indexing, searching and stats all run in thread workers that
post messages; the event loop only draws. A 1 GB JSONL shows its first page at once (read straight from the
memory map) while its line index is built in the background; the row count reads "~1,525,000" until the index
is exact.
Nothing here imports torch, transformers or `datasets`; token lengths use the `tokenizers` library only.
"""

from __future__ import annotations

import threading
import time

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, ProgressBar, Select, Static

from ftbench.catalog.datasets import DatasetInfo, DatasetReader, DatasetStats, Row
from ftbench.core.humanize import file_age, human_size, rows_text
from ftbench.core.workspace import Workspace
from ftbench.tui.catalog_feed import (
    CatalogDetails,
    CatalogDone,
    CatalogFeed,
    CatalogRows,
    FeedScreen,
    found_subtitle,
    visible_keys,
)
from ftbench.tui.services import services
from ftbench.tui.widgets.app_header import AppHeader
from ftbench.tui.widgets.dataset_view import DatasetTable
from ftbench.tui.widgets.record_view import RecordView
from ftbench.tui.widgets.stats_pane import StatsDone, StatsPane, StatsProgress

HEAD_ROWS = 100
PROGRESS_EVERY_S = 0.1


class TokenizersFound(Message):
    """(model name, folder) of every model with a tokenizer.json, for the stats histogram."""

    def __init__(self, tokenizers: list[tuple[str, str]]) -> None:
        super().__init__()
        self.tokenizers = tokenizers


class DatasetOpened(Message):
    def __init__(
        self, info: DatasetInfo, reader: DatasetReader | None, head: list[Row], columns: list[str], error: str | None
    ) -> None:
        super().__init__()
        self.info = info
        self.reader = reader
        self.head = head
        self.columns = columns
        self.error = error


class IndexProgress(Message):
    def __init__(self, path: str, done: int, total: int, rows: int, exact: bool) -> None:
        super().__init__()
        self.path = path
        self.done = done
        self.total = total
        self.rows = rows
        self.exact = exact


class SearchDone(Message):
    def __init__(self, text: str, index: int | None) -> None:
        super().__init__()
        self.text = text
        self.index = index


class DatasetsScreen(FeedScreen, Screen[None]):
    """Datasets list on the left; the chosen dataset's table, record view and stats on the right."""

    TITLE = "Datasets"
    DEFAULT_CSS = """
    DatasetsScreen #ds-list { width: 60; height: 1fr; border: round $panel; }
    DatasetsScreen #ds-list:focus { border: round $accent; }
    DatasetsScreen #ds-right { width: 1fr; }
    DatasetsScreen #ds-info { height: 1; padding: 0 1; }
    DatasetsScreen #ds-progress { height: 1; padding: 0 1; }
    DatasetsScreen #ds-table { height: 1fr; }
    DatasetsScreen #ds-record { height: 1fr; }
    DatasetsScreen #ds-stats-panel { display: none; }
    DatasetsScreen #ds-prompt { dock: bottom; display: none; }
    DatasetsScreen.-stats #ds-stats-panel { display: block; }
    DatasetsScreen.-stats #ds-record { display: none; }
    DatasetsScreen.-records #ds-table { display: none; }
    DatasetsScreen.-prompt #ds-prompt { display: block; }
    """
    BINDINGS = [
        Binding("g", "prompt('goto')", "Go to row", id="datasets_goto"),
        Binding("slash", "prompt('search')", "Search", key_display="/", id="datasets_search"),
        Binding("n", "search_next", "Next match", id="datasets_next"),
        Binding("s", "stats", "Stats", id="datasets_stats"),
        Binding("t", "toggle_view", "Table/records", id="datasets_toggle"),
        Binding("r", "rescan", "Rescan", id="datasets_rescan"),
        Binding("escape", "close_prompt", "Close", show=False, id="datasets_escape"),
    ]

    def __init__(self, ws: Workspace, *, hf_cache: bool | None = None) -> None:
        super().__init__()
        self.ws = ws
        self.hf_cache = hf_cache
        self.datasets: list[DatasetInfo] = []
        self.keys: list[str] = []  # row keys, parallel to `datasets`
        self.complete: set[str] = set()  # keys whose rows/format are in
        self.feed: CatalogFeed | None = None
        self.listing_done = False
        self.tokenizers: list[tuple[str, str]] = []
        self.current: DatasetInfo | None = None
        self.reader: DatasetReader | None = None
        self.prompt_mode = ""
        self.last_search = ""
        self._index_stop = threading.Event()
        self._first_page_shown = threading.Event()

    # ----------------------------------------------------------------- layout
    def compose(self) -> ComposeResult:
        yield AppHeader()
        with Horizontal():
            table: DataTable[str | Text] = DataTable(id="ds-list", cursor_type="row", zebra_stripes=True)
            table.border_title = "datasets"
            for key, label, width in (
                ("name", "name", 16),
                ("format", "format", 14),
                ("rows", "rows", 8),
                ("size", "size", 7),
                ("age", "age", 3),
            ):
                table.add_column(label, key=key, width=width)
            yield table
            with Vertical(id="ds-right"):
                yield Static(Text("Scanning dataset folders…", style="dim"), id="ds-info")
                yield ProgressBar(id="ds-progress", show_eta=False)
                view = DatasetTable(id="ds-table")
                view.border_title = "rows"
                yield view
                record = RecordView(id="ds-record")
                record.border_title = "record"
                yield record
                yield StatsPane(id="ds-stats-panel")
        yield Input(id="ds-prompt")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#ds-list", DataTable).focus()
        self.query_one("#ds-progress", ProgressBar).display = False

    def on_unmount(self) -> None:  # FeedScreen.on_unmount cancels the feed
        self._index_stop.set()
        if self.reader is not None:
            self.reader.close()

    @property
    def now(self) -> float:
        return services(self.app).clock()

    # ----------------------------------------------------------------- discovery
    def discover(self) -> None:
        from ftbench.catalog.datasets import DatasetCatalog

        self.datasets, self.keys, self.complete = [], [], set()
        self.listing_done = False
        table = self.query_one("#ds-list", DataTable)
        table.clear()
        table.border_subtitle = "scanning…"
        self.start_feed(DatasetCatalog(self.ws, hf_cache=self.hf_cache))

    def _cells(self, d: DatasetInfo, complete: bool) -> tuple[Text, str, str, str, str]:
        name = Text(d.name, no_wrap=True, overflow="ellipsis", style="red" if d.error else "")
        fmt, rows = (d.format, rows_text(d.rows, d.rows_exact)) if complete else ("…", "…")
        return name, fmt, rows, human_size(d.size_bytes), file_age(d.mtime, self.now)

    def on_catalog_rows(self, message: CatalogRows) -> None:
        if message.feed is not self.feed:
            return
        table = self.query_one("#ds-list", DataTable)
        for entry in message.entries:
            self.datasets.append(entry.info)
            self.keys.append(entry.key)
            if entry.complete:
                self.complete.add(entry.key)
            table.add_row(*self._cells(entry.info, entry.complete), key=entry.key)
        table.border_subtitle = f"{len(self.datasets)} found, scanning…"
        if self.current is None and self.datasets:
            self.open_dataset(self.datasets[0])
        self._prefer_visible()

    def on_catalog_details(self, message: CatalogDetails) -> None:
        """Fill in rows and format; the open dataset's info is updated in place (workers compare it by identity)."""
        if message.feed is not self.feed:
            return
        table = self.query_one("#ds-list", DataTable)
        index = {key: i for i, key in enumerate(self.keys)}
        for entry in message.entries:
            shown = self.datasets[index[entry.key]]
            counted = (shown.rows, shown.rows_exact) if shown.rows_exact else None  # the open file's index won
            vars(shown).update(vars(entry.info))
            if counted is not None:
                shown.rows, shown.rows_exact = counted
            self.complete.add(entry.key)
            for column, value in zip(("name", "format", "rows", "size", "age"), self._cells(shown, True), strict=True):
                table.update_cell(entry.key, column, value)
            if shown is self.current:
                self._show_info()
                record = self.query_one("#ds-record", RecordView)
                if record.row is not None:
                    record.show_row(record.row, shown.format)

    def on_catalog_done(self, message: CatalogDone) -> None:
        if message.feed is not self.feed or message.cancelled:
            return
        self.listing_done = True
        table = self.query_one("#ds-list", DataTable)
        table.border_subtitle = found_subtitle(len(self.datasets), message.notes)
        for note in message.notes[:3]:
            self.notify(note, severity="warning")
        if not self.datasets:
            roots = ", ".join(str(r) for r in self.ws.dataset_roots())
            self._info(Text(f"No datasets under {roots}. Add folders to dataset_dirs in ftbench.toml.", style="yellow"))
        self._find_tokenizers()

    @work(thread=True, exclusive=True, group="ds-tokenizers", exit_on_error=False)
    def _find_tokenizers(self) -> None:
        """Models with a tokenizer.json, for the stats histogram: after the datasets, from the models' cache."""
        from ftbench.catalog.model_listing import tokenizer_models

        try:
            usable = tokenizer_models(self.ws, hf_cache=self.hf_cache)
        except Exception:  # noqa: BLE001 - no tokenizers just means no histogram
            usable = []
        self.post_message(TokenizersFound([(m.name, m.path) for m in usable]))

    def _prefer_visible(self) -> None:
        """Ask the feed for the open dataset's details first, then the rows on screen."""
        if self.feed is None or self.feed.done:
            return
        first = [k for k, d in zip(self.keys, self.datasets, strict=True) if d is self.current][:1]
        self.feed.prefer(visible_keys(self.query_one("#ds-list", DataTable), self.keys, first))

    def on_tokenizers_found(self, message: TokenizersFound) -> None:
        self.tokenizers = message.tokenizers
        self.query_one(StatsPane).set_tokenizers(self.tokenizers)

    @on(DataTable.RowHighlighted, "#ds-list")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        idx = event.cursor_row
        if 0 <= idx < len(self.datasets) and self.datasets[idx] is not self.current:
            self.open_dataset(self.datasets[idx])
            self._prefer_visible()

    # ----------------------------------------------------------------- open + index
    def open_dataset(self, info: DatasetInfo) -> None:
        self.current = info
        self._index_stop.set()
        self._index_stop = threading.Event()
        self.query_one(StatsPane).stop()
        self.remove_class("-stats")
        self._info(Text(f"Opening {info.name}…", style="dim"))
        self._open(info, self._index_stop)

    @work(thread=True, exclusive=True, group="ds-open", exit_on_error=False)
    def _open(self, info: DatasetInfo, stop: threading.Event) -> None:
        from ftbench.catalog.datasets import open_dataset
        from ftbench.core.errors import FtbenchError

        try:
            reader = open_dataset(info.path)
            head = reader.head(HEAD_ROWS)
            columns = reader.columns()
        except FtbenchError as exc:
            self.post_message(DatasetOpened(info, None, [], [], exc.message))
            return
        except Exception as exc:  # noqa: BLE001 - show any reader failure in the panel, never crash
            self.post_message(DatasetOpened(info, None, [], [], f"{type(exc).__name__}: {exc}"))
            return
        self._first_page_shown.clear()
        self.post_message(DatasetOpened(info, reader, head, columns, None))
        # Let the loop draw the first page before the index scan competes with it for the GIL and the disk.
        self._first_page_shown.wait(1.0)
        last = 0.0

        def progress(done: int, total: int) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= PROGRESS_EVERY_S:
                last = now
                rows, exact = reader.row_count()
                self.post_message(IndexProgress(info.path, done, total, rows, exact))

        reader.scan(progress=progress, stop=stop)
        if not stop.is_set():
            rows, exact = reader.row_count()
            done, total = reader.progress_bytes()
            self.post_message(IndexProgress(info.path, done, total, rows, exact))

    def on_dataset_opened(self, message: DatasetOpened) -> None:
        if message.info is not self.current:
            if message.reader is not None:
                message.reader.close()
            return
        if self.reader is not None and self.reader is not message.reader:
            old = self.reader
            self.reader = None
            old.close()
        self.reader = message.reader
        view = self.query_one("#ds-table", DatasetTable)
        view.load(message.reader, message.head, message.columns)
        if message.error:
            self._info(Text(f"{message.info.name}: {message.error}", style="red"))
            self.query_one("#ds-record", RecordView).show_row(None, "unknown")
            return
        self._show_info()
        view.go_to(0)
        self.call_after_refresh(self._first_page_shown.set)

    def on_index_progress(self, message: IndexProgress) -> None:
        if self.current is None or message.path != self.current.path:
            return
        self.current.rows, self.current.rows_exact = message.rows, message.exact
        bar = self.query_one("#ds-progress", ProgressBar)
        bar.display = not message.exact
        bar.update(total=max(message.total, 1), progress=message.done)
        self.query_one("#ds-table", DatasetTable).set_row_count(message.rows)
        if message.exact:
            table = self.query_one("#ds-list", DataTable)
            try:
                table.update_cell(self.current.path + "|" + self.current.name, "rows", rows_text(message.rows, True))
            except Exception:  # noqa: BLE001 - the list was rebuilt meanwhile
                pass
        self._show_info()

    def _show_info(self) -> None:
        info = self.current
        if info is None:
            return
        text = Text.assemble(
            (info.name, "bold"),
            "  ",
            (info.format, "cyan"),
            "  ",
            f"{rows_text(info.rows, info.rows_exact)} rows",
            "  ",
            human_size(info.size_bytes),
            "  ",
            (info.kind, "dim"),
        )
        note = getattr(self.reader, "note", "")
        if note:
            text.append(f"  ({note})", style="dim")
        self._info(text)

    def _info(self, text: Text) -> None:
        self.query_one("#ds-info", Static).update(text)

    @on(DatasetTable.RowHighlighted)
    def _row(self, event: DatasetTable.RowHighlighted) -> None:
        fmt = self.current.format if self.current else "unknown"
        self.query_one("#ds-record", RecordView).show_row(event.row, fmt)
        self.query_one("#ds-table", DatasetTable).border_subtitle = f"row {event.index + 1:,}"

    # ----------------------------------------------------------------- goto / search
    def action_prompt(self, mode: str) -> None:
        if self.reader is None:
            return
        self.prompt_mode = mode
        prompt = self.query_one("#ds-prompt", Input)
        prompt.value = self.last_search if mode == "search" else ""
        prompt.placeholder = (
            "row number (1-based), Enter to jump" if mode == "goto" else "text to find, Enter to search"
        )
        self.add_class("-prompt")
        prompt.focus()

    def action_close_prompt(self) -> None:
        self.remove_class("-prompt")
        self.query_one("#ds-table", DatasetTable).focus()

    @on(Input.Submitted, "#ds-prompt")
    def _prompt_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        self.action_close_prompt()
        view = self.query_one("#ds-table", DatasetTable)
        if self.prompt_mode == "goto":
            if not value.replace(",", "").isdigit():
                self.notify(f"'{value}' is not a row number.", severity="warning")
                return
            self.goto_row(int(value.replace(",", "")) - 1)
        elif value:
            self.last_search = value
            self._search(value, view.cursor)

    def goto_row(self, index: int) -> None:
        """Jump to a row; a row the index has not reached yet is read (and indexed up to) off the loop."""
        view = self.query_one("#ds-table", DatasetTable)
        if self.reader is not None and not self.reader.ready(index):
            self._read_to(index)
            return
        view.go_to(index)

    @work(thread=True, exclusive=True, group="ds-read", exit_on_error=False)
    def _read_to(self, index: int) -> None:
        assert self.reader is not None
        self.reader.rows(index, 1)
        rows, exact = self.reader.row_count()
        done, total = self.reader.progress_bytes()
        self.post_message(
            IndexProgress(
                str(self.reader.path) if self.current is None else self.current.path, done, total, rows, exact
            )
        )
        self.post_message(SearchDone("", index))

    def action_search_next(self) -> None:
        if self.last_search and self.reader is not None:
            self._search(self.last_search, self.query_one("#ds-table", DatasetTable).cursor + 1)

    @work(thread=True, exclusive=True, group="ds-search", exit_on_error=False)
    def _search(self, text: str, start: int) -> None:
        assert self.reader is not None
        hit = self.reader.search(text, start)
        if hit is None and start > 0:
            hit = self.reader.search(text, 0)  # wrap around to the top, like less and vim
        self.post_message(SearchDone(text, hit))

    def on_search_done(self, message: SearchDone) -> None:
        if message.index is None:
            self.notify(f"'{message.text}' not found.", severity="warning")
            return
        view = self.query_one("#ds-table", DatasetTable)
        if self.reader is not None:
            view.set_row_count(max(view.row_count, self.reader.row_count()[0]))
        view.go_to(message.index)

    # ----------------------------------------------------------------- view + stats
    def action_toggle_view(self) -> None:
        self.toggle_class("-records")

    def action_rescan(self) -> None:
        self.discover()

    def action_stats(self) -> None:
        if self.reader is None or self.current is None:
            return
        self.add_class("-stats")
        self.start_stats()

    @on(Select.Changed, "#ds-tokenizer")
    @on(Input.Submitted, "#ds-maxlen")
    def _stats_inputs(self, event: Message) -> None:
        if self.has_class("-stats"):
            self.start_stats()

    def start_stats(self) -> None:
        assert self.current is not None
        bar = self.query_one("#ds-progress", ProgressBar)
        bar.display = True
        bar.update(total=max(self.current.rows or 1, 1), progress=0)
        self.query_one(StatsPane).start(self.current.path)

    @property
    def stats(self) -> DatasetStats | None:
        return self.query_one(StatsPane).stats

    def on_stats_progress(self, message: StatsProgress) -> None:
        self.query_one("#ds-progress", ProgressBar).update(total=max(message.total, 1), progress=message.done)

    def on_stats_done(self, message: StatsDone) -> None:
        self.query_one("#ds-progress", ProgressBar).display = False
