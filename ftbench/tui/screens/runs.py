"""Screen 2, Runs: every training run with its numbers and loss sparkline; filter, sort, compare.

Pick two or more runs (space) to overlay their smoothed loss curves and list the recipe keys in which
they differ, side by side. Rows come from a thread worker that rescans about once a second and posts
only when a row changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Input, Static

from ftbench.core.workspace import Workspace
from ftbench.tui.messages import RunsChanged
from ftbench.tui.screens.polling import PollingScreen
from ftbench.tui.services import services
from ftbench.tui.widgets.app_header import AppHeader
from ftbench.tui.widgets.loss_chart import LossChart, Series
from ftbench.tui.widgets.run_data import gen_keys, gen_value
from ftbench.tui.widgets.run_summary import SORT_KEYS, matches, recipe_diff, sort_rows
from ftbench.tui.widgets.sparkline import sparkline

COLUMNS = (
    ("pick", "", 1),
    ("state", "state", 11),
    ("name", "name", 20),
    ("task", "task", 6),
    ("method", "method", 6),
    ("model", "model", 16),
    ("dataset", "dataset", 12),
    ("best_eval", "best eval", 9),
    ("duration", "time", 7),
    ("spark", "loss", 16),
)
OVERLAY_STYLES = ("bold cyan", "bold magenta", "bold yellow", "bold green", "bold red", "bold blue")


class RunsScreen(PollingScreen):
    TITLE = "Runs"
    BINDINGS = [
        Binding("space", "pick", "Pick to compare", id="runs_pick"),
        Binding("o", "cycle_sort", "Sort", id="runs_sort"),
        Binding("slash", "focus_filter", "Filter", key_display="/", id="runs_filter"),
        Binding("enter", "open_monitor", "Monitor", id="runs_monitor"),
        Binding("escape", "clear", "Clear", show=False, id="runs_clear"),
    ]

    def __init__(self, ws: Workspace) -> None:
        super().__init__()
        self.ws = ws
        self.all_rows: list[dict[str, Any]] = []
        self.rows: list[dict[str, Any]] = []
        self.picked: list[str] = []
        self.diff_rows: list[tuple[str, list[Any]]] = []
        self.gen_rows: list[tuple[str, list[str]]] = []
        self.sort_key = "created"
        self.query_text = ""

    def compose(self) -> ComposeResult:
        yield AppHeader()
        yield Input(placeholder="filter: words, or state:running task:sft model:smol …", id="runs-filter")
        table: DataTable[Text | str] = DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        for key, label, width in COLUMNS:
            table.add_column(label, key=key, width=width)
        yield table
        with Horizontal(id="runs-compare"):
            chart = LossChart(id="runs-overlay")
            chart.border_title = "compare: smoothed loss (pick runs with space)"
            yield chart
            diff = Static(Text("Pick two or more runs to see how their recipes differ.", style="dim"), id="runs-diff")
            diff.border_title = "recipe differences"
            yield diff
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#runs-table", DataTable).focus()
        self._watch()

    @work(thread=True, exclusive=True, group="runs-watch", name="runs-watch")
    def _watch(self) -> None:
        from ftbench.tui.widgets.run_summary import RunScanner

        app_services = services(self.app)
        scanner = RunScanner(self.ws, app_services.clock)
        poll_s = app_services.poll_s
        last = None
        for _ in self.poll_ticks(poll_s):
            rows = scanner.scan()
            key = [
                (r["id"], r["state_label"], r["best_eval"], r["duration"], len(r["loss_ema"]), r["progress"])
                for r in rows
            ]
            if key != last:
                last = key
                self.post_message(RunsChanged(rows))

    def on_runs_changed(self, message: RunsChanged) -> None:
        self.all_rows = message.rows
        self.refresh_table()
        self.refresh_compare()

    # ------------------------------------------------------------------ table
    def refresh_table(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        cursor_id = self._cursor_id()
        self.rows = sort_rows([r for r in self.all_rows if matches(r, self.query_text)], self.sort_key)
        table.clear()
        for row in self.rows:
            table.add_row(*(self._cell(row, key) for key, _, _ in COLUMNS), key=row["id"])
        ids = [r["id"] for r in self.rows]
        if cursor_id in ids:
            table.move_cursor(row=ids.index(cursor_id), animate=False)
        self.query_one(
            "#runs-overlay", LossChart
        ).border_subtitle = f"sort: {self.sort_key}  {len(self.rows)}/{len(self.all_rows)} runs"

    def _cell(self, row: dict[str, Any], key: str) -> Text:
        if key == "pick":
            return Text("✔" if row["id"] in self.picked else " ", style="bold cyan")
        if key == "state":
            return Text(row["state_label"], style=row["state_style"])
        if key == "spark":
            return Text(sparkline(row["spark_points"], width=16), style="cyan")
        return Text(str(row[key]), no_wrap=True, overflow="ellipsis")

    def _cursor_id(self) -> str | None:
        table = self.query_one("#runs-table", DataTable)
        if table.row_count == 0:
            return None
        try:
            return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        except Exception:  # noqa: BLE001
            return None

    # ------------------------------------------------------------------ compare
    def refresh_compare(self) -> None:
        by_id = {r["id"]: r for r in self.all_rows}
        picked = [by_id[i] for i in self.picked if i in by_id]
        series = [
            Series(r["name"][:18], r["loss_ema"], OVERLAY_STYLES[i % len(OVERLAY_STYLES)]) for i, r in enumerate(picked)
        ]
        self.query_one("#runs-overlay", LossChart).set_series(series)
        diff_widget = self.query_one("#runs-diff", Static)
        self.diff_rows = recipe_diff([r["recipe"] for r in picked]) if len(picked) >= 2 else []
        gens = [r.get("gen") or {} for r in picked]  # the recipe `eval:` section's newest generation scores
        self.gen_rows = (
            [(key, [gen_value(g, key) for g in gens]) for key in gen_keys(*gens)] if len(picked) >= 2 else []
        )
        if len(picked) < 2:
            diff_widget.update(Text("Pick two or more runs to see how their recipes differ.", style="dim"))
            return
        diffs = self.diff_rows
        table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
        table.add_column("key", style="dim")
        for i, r in enumerate(picked):
            table.add_column(r["name"][:16], style=OVERLAY_STYLES[i % len(OVERLAY_STYLES)])
        for key, values in diffs:
            table.add_row(key, *("-" if v is None else str(v) for v in values))
        if not diffs:
            table.add_row("(same recipe)", *("" for _ in picked))
        for key, values in self.gen_rows:
            table.add_row(f"gen {key}", *values, style="magenta")
        diff_widget.update(table)

    # ------------------------------------------------------------------ actions
    def action_pick(self) -> None:
        run_id = self._cursor_id()
        if run_id is None:
            return
        if run_id in self.picked:
            self.picked.remove(run_id)
        else:
            self.picked.append(run_id)
        table = self.query_one("#runs-table", DataTable)
        row = next(r for r in self.rows if r["id"] == run_id)
        table.update_cell(run_id, "pick", self._cell(row, "pick"))
        self.refresh_compare()

    def action_cycle_sort(self) -> None:
        self.sort_key = SORT_KEYS[(SORT_KEYS.index(self.sort_key) + 1) % len(SORT_KEYS)]
        self.refresh_table()

    def action_focus_filter(self) -> None:
        self.query_one("#runs-filter", Input).focus()

    def action_clear(self) -> None:
        box = self.query_one("#runs-filter", Input)
        if box.has_focus and box.value:
            box.value = ""
        else:
            self.query_one("#runs-table", DataTable).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_text = event.value
        self.refresh_table()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one("#runs-table", DataTable).focus()

    def action_open_monitor(self) -> None:
        run_id = self._cursor_id()
        row = next((r for r in self.rows if r["id"] == run_id), None)
        if row is not None:
            self._open_monitor(Path(row["dir"]))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open_monitor()
