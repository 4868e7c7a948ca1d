"""Screen 7, Evals: every `ftbench eval` job, its variants x metrics table, and the prompts where variants disagree.

Reads only job folders (status.json, metrics.json, predictions.jsonl) and builds its table with
evaluate/report.py's `metrics_table`, so it shows exactly the numbers of `ftbench eval --json` and report.md.
The per-example table lists each prompt with its reference and every variant's answer and score, most
disagreeing first (`d` switches to file order), to find where an adapter or a quant goes wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable, Footer, Static

from ftbench.core.workspace import Workspace
from ftbench.evaluate.report import metrics_table, read_predictions, read_summary
from ftbench.tui.screens.polling import PollingScreen
from ftbench.tui.widgets.app_header import AppHeader

JOB_COLUMNS = (("state", "state", 10), ("name", "eval", 36), ("variants", "variants", 28), ("progress", "progress", 12))


class EvalsChanged(Message):
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        super().__init__()
        self.rows = rows


def scan_evals(ws: Workspace) -> list[dict[str, Any]]:
    """Eval jobs, newest first, from their status.json files."""
    from ftbench.core.jobs import job_dirs, read_status

    rows = []
    for job_dir in job_dirs(ws):
        try:
            status = read_status(job_dir)
        except Exception:  # noqa: BLE001 - a folder being written: next poll
            continue
        if status.get("kind") != "eval":
            continue
        progress = status.get("progress") or {}
        done, total = progress.get("done"), progress.get("total")
        rows.append(
            {
                "id": job_dir.name,
                "dir": str(job_dir),
                "state": status.get("state", "?"),
                "name": status.get("name", job_dir.name),
                "variants": ", ".join((status.get("meta") or {}).get("variants", [])),
                "progress": f"{done}/{total}" if done is not None and total else "",
                "created": status.get("created_at", 0),
            }
        )
    return sorted(rows, key=lambda r: -r["created"])


class EvalsScreen(PollingScreen):
    TITLE = "Evals"
    BINDINGS = [
        Binding("d", "toggle_order", "Sort examples", id="evals_sort"),
        Binding("tab", "focus_next", "Next table", show=False, id="evals_next"),
    ]

    def __init__(self, ws: Workspace) -> None:
        super().__init__()
        self.ws = ws
        self.rows: list[dict[str, Any]] = []
        self.selected: str | None = None
        self.by_disagreement = True
        self.summary: dict[str, Any] | None = None
        self.predictions: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield AppHeader()
        jobs: DataTable[Text | str] = DataTable(id="evals-jobs", cursor_type="row", zebra_stripes=True)
        for key, label, width in JOB_COLUMNS:
            jobs.add_column(label, key=key, width=width)
        yield jobs
        metrics = Static(
            Text("No eval selected. Start one with `ftbench eval MODEL --adapter RUN --data FILE`.", style="dim"),
            id="evals-metrics",
        )
        metrics.border_title = "variants x metrics (bold *: best of the column)"
        yield metrics
        examples: DataTable[Text | str] = DataTable(id="evals-examples", cursor_type="row", zebra_stripes=True)
        examples.border_title = "examples"
        yield examples
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#evals-jobs", DataTable).focus()
        self._watch()

    @work(thread=True, exclusive=True, group="evals-watch", name="evals-watch")
    def _watch(self) -> None:
        last = None
        for _ in self.poll_ticks(getattr(self.app, "poll_s", 1.0)):
            rows = scan_evals(self.ws)
            key = [(r["id"], r["state"], r["progress"]) for r in rows]
            if key != last:
                last = key
                self.post_message(EvalsChanged(rows))

    def on_evals_changed(self, message: EvalsChanged) -> None:
        self.rows = message.rows
        table = self.query_one("#evals-jobs", DataTable)
        table.clear()
        for row in self.rows:
            table.add_row(
                *(Text(str(row[k]), no_wrap=True, overflow="ellipsis") for k, _, _ in JOB_COLUMNS), key=row["id"]
            )
        ids = [r["id"] for r in self.rows]
        if self.selected in ids:
            table.move_cursor(row=ids.index(self.selected), animate=False)
        if ids:
            self.show_job(self.selected if self.selected in ids else ids[0])

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "evals-jobs" and event.row_key is not None:
            self.show_job(str(event.row_key.value))

    def show_job(self, job_id: str) -> None:
        row = next((r for r in self.rows if r["id"] == job_id), None)
        if row is None:
            return
        self.selected = job_id
        self.summary = read_summary(Path(row["dir"]))
        self.predictions = read_predictions(Path(row["dir"])) if self.summary else []
        widget = self.query_one("#evals-metrics", Static)
        if self.summary is None:
            widget.update(
                Text(
                    f"{row['name']}: {row['state']} {row['progress']} (the table appears when it finishes)", style="dim"
                )
            )
        else:
            widget.update(self.metrics_renderable(self.summary))
        self.refresh_examples()

    @staticmethod
    def metrics_renderable(summary: dict[str, Any]) -> Table:
        headers, rows, marks = metrics_table(summary)
        table = Table(box=None, header_style="bold", pad_edge=False)
        for i, h in enumerate(headers):
            table.add_column(h, justify="left" if i == 0 else "right")
        for cells, mark in zip(rows, marks, strict=True):
            table.add_row(
                *(
                    Text(c + ("*" if m else ""), style="bold green" if m else "")
                    for c, m in zip(cells, mark, strict=True)
                )
            )
        return table

    def refresh_examples(self) -> None:
        table = self.query_one("#evals-examples", DataTable)
        table.clear(columns=True)
        if not self.summary:
            return
        names = [v["name"] for v in self.summary["variants"]]
        primary = self.summary.get("primary")
        table.add_column("id", width=6)
        table.add_column("disagree", width=8)
        table.add_column("prompt", width=28)
        table.add_column("reference", width=22)
        for name in names:
            table.add_column(f"{name}" + (f" ({primary})" if primary else ""), width=26)
        rows = (
            sorted(self.predictions, key=lambda r: -r.get("disagreement", 0.0))
            if self.by_disagreement
            else self.predictions
        )
        for r in rows:
            answers = []
            for name in names:
                a = r["answers"].get(name, {})
                score = a.get("scores", {}).get(primary) if primary else None
                answers.append(
                    Text(
                        ("" if score is None else f"{score:.2f} ") + " ".join(a.get("prediction", "").split()),
                        no_wrap=True,
                        overflow="ellipsis",
                    )
                )
            table.add_row(
                r["id"][:5],
                f"{r.get('disagreement', 0.0):.2f}",
                Text(" ".join(r["prompt"].split()), no_wrap=True, overflow="ellipsis"),
                Text(" ".join((r["references"] or ["-"])[0].split()), no_wrap=True, overflow="ellipsis"),
                *answers,
            )
        table.border_subtitle = (
            f"{len(rows)} prompts, {'most disagreeing first' if self.by_disagreement else 'file order'} (d)"
        )

    def action_toggle_order(self) -> None:
        self.by_disagreement = not self.by_disagreement
        self.refresh_examples()
