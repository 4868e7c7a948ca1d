"""The Datasets screen's stats pane: pick a tokenizer and max_length, stream the file, show the numbers.

The pane owns its worker: `start(path)` opens its own reader (the table keeps paging its own) and streams
every row through `catalog.datasets.compute_stats`; `StatsProgress` and `StatsDone` bubble up so the
screen can drive its progress bar. `stats_renderable` is a pure function, tested without an app.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Select, Static

from ftbench.catalog.datasets import DatasetStats

PROGRESS_EVERY_S = 0.1  # at most ten progress messages a second


def histogram_text(lengths: dict[str, Any], width: int = 30) -> Text:
    """Token-length histogram as horizontal bars, bins over max_length in red."""
    counts, edges = lengths["counts"], lengths["edges"]
    top = max(counts) or 1
    limit = lengths.get("max_length")
    text = Text()
    for i, count in enumerate(counts):
        lo, hi = edges[i], edges[i + 1]
        over = bool(limit) and lo >= limit
        bar = "█" * max(1 if count else 0, round(width * count / top))
        text.append(f"{lo:>7.0f}–{hi:<7.0f} ", style="dim")
        text.append(bar.ljust(width), style="red" if over else "cyan")
        text.append(f" {count:,}\n")
    return text


def stats_renderable(stats: DatasetStats) -> Table:
    """The Stats panel: totals, bad rows with line numbers, label/tag counts and the length histogram."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    grid.add_row("rows", f"{stats.rows:,}" + ("" if stats.complete else " (stopped early)"))
    grid.add_row("format", stats.format)
    grid.add_row("duplicates", f"{stats.duplicates:,}")
    bad = Text(f"{stats.bad_count:,}", style="red" if stats.bad_count else "")
    for line, why in stats.bad_rows[:8]:
        bad.append(f"\nline {line}: {why}", style="red")
    if stats.bad_count > 8:
        bad.append(f"\n… {stats.bad_count - 8:,} more", style="dim")
    grid.add_row("bad rows", bad)
    for title, counts in (("labels", stats.labels), ("tags", stats.tags)):
        if counts:
            total = sum(counts.values())
            shown = ", ".join(f"{k}: {v:,} ({v / total:.0%})" for k, v in list(counts.items())[:12])
            grid.add_row(title, shown + (" …" if len(counts) > 12 else ""))
    tl = stats.token_lengths
    if tl:
        summary = f"mean {tl['mean']:.0f} · p50 {tl['p50']:.0f} · p95 {tl['p95']:.0f} · max {tl['max']:,}"
        if tl.get("max_length"):
            summary += f" · over {tl['max_length']}: {tl['over']:,} ({tl['over_share']:.1%})"
        grid.add_row("tokens", summary)
        grid.add_row("", histogram_text(tl))
    else:
        grid.add_row("tokens", Text("pick a tokenizer for a length histogram", style="dim"))
    grid.add_row("time", f"{stats.seconds:.2f} s")
    return grid


class StatsProgress(Message):
    def __init__(self, done: int, total: int) -> None:
        super().__init__()
        self.done = done
        self.total = total


class StatsDone(Message):
    def __init__(self, stats: DatasetStats | None, error: str | None = None) -> None:
        super().__init__()
        self.stats = stats
        self.error = error


class StatsPane(Vertical):
    DEFAULT_CSS = """
    StatsPane { height: 1fr; border: round $panel; }
    StatsPane #ds-stats-bar { height: 3; }
    StatsPane #ds-tokenizer { width: 1fr; }
    StatsPane #ds-maxlen { width: 18; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.border_title = "stats"
        self.stats: DatasetStats | None = None
        self.path: str | None = None
        self._stop = threading.Event()

    def compose(self) -> ComposeResult:
        with Horizontal(id="ds-stats-bar"):
            yield Select[str]([], prompt="tokenizer: none", id="ds-tokenizer", allow_blank=True)
            yield Input(value="1024", placeholder="max_length", id="ds-maxlen", type="integer")
        yield Static("", id="ds-stats")

    def set_tokenizers(self, tokenizers: list[tuple[str, str]]) -> None:
        """(model name, folder) choices; the first becomes the default."""
        select = self.query_one("#ds-tokenizer", Select)
        select.set_options([(name, path) for name, path in tokenizers])
        if tokenizers:
            select.value = tokenizers[0][1]

    def stop(self) -> None:
        self._stop.set()

    def on_unmount(self) -> None:
        self.stop()

    def start(self, path: str) -> None:
        """(Re)compute the stats of `path` with the chosen tokenizer and max_length."""
        self._stop.set()
        self._stop = threading.Event()
        self.path = path
        select = self.query_one("#ds-tokenizer", Select)
        tokenizer = select.value if isinstance(select.value, str) else None
        raw = self.query_one("#ds-maxlen", Input).value.strip()
        max_length = int(raw) if raw.isdigit() and int(raw) > 0 else None
        self.query_one("#ds-stats", Static).update(Text("Computing…", style="dim"))
        self._compute(path, tokenizer, max_length, self._stop)

    @work(thread=True, exclusive=True, group="ds-stats", exit_on_error=False)
    def _compute(self, path: str, tokenizer_path: str | None, max_length: int | None, stop: threading.Event) -> None:
        from ftbench.catalog.datasets import compute_stats, load_tokenizer, open_dataset
        from ftbench.core.errors import FtbenchError

        last = 0.0

        def progress(done: int, total: int) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= PROGRESS_EVERY_S:
                last = now
                self.post_message(StatsProgress(done, total))

        try:
            tokenizer = load_tokenizer(tokenizer_path) if tokenizer_path else None
            with open_dataset(path) as reader:  # its own reader: stats stream the file, the view keeps paging
                stats = compute_stats(reader, tokenizer, max_length, progress=progress, stop=stop)
        except FtbenchError as exc:
            self.post_message(StatsDone(None, exc.message))
            return
        except Exception as exc:  # noqa: BLE001 - any failure shows in the panel
            self.post_message(StatsDone(None, f"{type(exc).__name__}: {exc}"))
            return
        if not stop.is_set():
            self.post_message(StatsDone(stats))

    def on_stats_done(self, message: StatsDone) -> None:
        panel = self.query_one("#ds-stats", Static)
        if message.stats is None:
            panel.update(Text(f"Stats failed: {message.error}", style="red"))
            return
        self.stats = message.stats
        panel.update(stats_renderable(message.stats))
