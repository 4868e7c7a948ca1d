"""Screen 1, Jobs: every job in the workspace, live, with the selected job's log and events.

A thread worker scans the job folders about once a second and tails the selected job's files by byte
offset; it posts messages only when something changed, so an idle screen costs no redraws. Reopening the
app reattaches to running jobs simply because their folders are still there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Log, Static

from ftbench.core.errors import FtbenchError
from ftbench.core.workspace import Workspace
from ftbench.tui.messages import JobsChanged, JobTail
from ftbench.tui.screens.polling import PollingScreen
from ftbench.tui.services import services
from ftbench.tui.widgets.app_header import AppHeader
from ftbench.tui.widgets.gpu_pane import GpuPane

COLUMNS = (
    ("state", "state", 12),
    ("kind", "kind", 7),
    ("name", "name", 22),
    ("progress", "progress", 22),
    ("age", "age", 5),
)


class JobsScreen(PollingScreen):
    TITLE = "Jobs"
    BINDINGS = [
        Binding("enter", "open_monitor", "Monitor", id="jobs_monitor"),
        Binding("s", "stop_job", "Stop", id="jobs_stop"),
        Binding("c", "checkpoint", "Checkpoint now", id="jobs_checkpoint"),
        Binding("r", "rescan", "Refresh", show=False, id="jobs_refresh"),
    ]

    def __init__(self, ws: Workspace) -> None:
        super().__init__()
        self.ws = ws
        self.rows: list[dict[str, Any]] = []
        self.selected: str | None = None  # job dir of the highlighted row; read by the worker thread

    def compose(self) -> ComposeResult:
        yield AppHeader()
        with Horizontal(id="jobs-main"):
            table: DataTable[Text | str] = DataTable(id="jobs-table", cursor_type="row", zebra_stripes=True)
            for key, label, width in COLUMNS:
                table.add_column(label, key=key, width=width)
            yield table
            with Vertical(id="job-detail"):
                yield Static("No jobs yet. Start one from New run (5) or `ftbench train RECIPE`.", id="job-info")
                log = Log(id="job-log", max_lines=5000, highlight=False)
                log.border_title = "log"
                yield log
                events = Log(id="job-events", max_lines=2000, highlight=False)
                events.border_title = "events"
                yield events
        yield GpuPane(id="gpu-pane")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#jobs-table", DataTable).focus()
        self.call_after_refresh(self._watch)  # the first frame comes before any file is read

    @work(thread=True, exclusive=True, group="jobs-watch", name="jobs-watch")
    def _watch(self) -> None:
        from ftbench.tui.widgets.job_list import JobFollower, JobScanner

        app_services = services(self.app)
        scanner = JobScanner(self.ws, app_services.clock)
        poll_s = app_services.poll_s
        last_rows: list[dict[str, Any]] | None = None
        follower: JobFollower | None = None
        for _ in self.poll_ticks(poll_s):
            rows = scanner.scan()
            if rows != last_rows:
                last_rows = rows
                self.post_message(JobsChanged(rows))
            selected = self.selected
            if selected is None and rows:
                selected = rows[0]["dir"]
            reset = False
            if selected and (follower is None or str(follower.job_dir) != selected):
                follower, reset = JobFollower(Path(selected)), True
            if follower is not None:
                lines, events = follower.read_new()
                if lines or events or reset:
                    self.post_message(JobTail(follower.job_dir.name, lines, events, reset))

    # ------------------------------------------------------------------ updates
    def on_jobs_changed(self, message: JobsChanged) -> None:
        table = self.query_one("#jobs-table", DataTable)
        old_ids = [r["id"] for r in self.rows]
        new_ids = [r["id"] for r in message.rows]
        previous = {r["id"]: r for r in self.rows}
        self.rows = message.rows
        if old_ids == new_ids:
            for row in message.rows:
                before = previous[row["id"]]
                for key, _, _ in COLUMNS:
                    if self._cell_text(before, key) != self._cell_text(row, key):
                        table.update_cell(row["id"], key, self._cell(row, key))
        else:
            cursor_id = self._row_id_at_cursor(table)
            table.clear()
            for row in message.rows:
                table.add_row(*(self._cell(row, key) for key, _, _ in COLUMNS), key=row["id"])
            if cursor_id in new_ids:
                table.move_cursor(row=new_ids.index(cursor_id), animate=False)
        self._show_info()

    @staticmethod
    def _cell_text(row: dict[str, Any], key: str) -> str:
        return row["state_label"] if key == "state" else str(row[key])

    def _cell(self, row: dict[str, Any], key: str) -> Text:
        if key == "state":
            return Text(row["state_label"], style=row["state_style"])
        return Text(str(row[key]), overflow="ellipsis", no_wrap=True)

    def _row_id_at_cursor(self, table: DataTable) -> str | None:
        if not self.rows and table.row_count == 0:
            return None
        try:
            return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        except Exception:  # noqa: BLE001 - empty table
            return None

    def current_row(self) -> dict[str, Any] | None:
        table = self.query_one("#jobs-table", DataTable)
        job_id = self._row_id_at_cursor(table)
        return next((r for r in self.rows if r["id"] == job_id), None)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        row = self.current_row()
        if row and row["dir"] != self.selected:
            self.selected = row["dir"]
            self.wake()
        self._show_info()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open_monitor()

    def _show_info(self) -> None:
        row = self.current_row()
        info = self.query_one("#job-info", Static)
        if row is None:
            if not self.rows:
                info.update("No jobs yet. Start one from New run (5) or `ftbench train RECIPE`.")
            return
        text = Text.assemble((row["id"], "bold"), "  ", (row["state_label"], row["state_style"]))
        text.append(f"\n{row['kind']} · attempt {row['attempt']} · {row['progress']}")
        if row.get("slurm"):
            text.append(f"\n{row['slurm']}", style="magenta")
        if row["error"]:
            text.append(f"\n{row['error']}", style="red")
            if row["hint"]:
                text.append(f"\nhint: {row['hint']}", style="dim")
        if row["kind"] == "serve" and row["serve"].get("url") and row["state"] == "running":
            import socket

            from ftbench.serve.connect import serve_card

            text.append("\n" + "\n".join(serve_card(row["serve"], socket.gethostname())))
        if row["kind"] == "export" and row["result"].get("files"):
            from ftbench.core.export_card import render_card

            text.append("\n" + render_card(row["result"]))
        info.update(text)

    def on_job_tail(self, message: JobTail) -> None:
        log = self.query_one("#job-log", Log)
        events = self.query_one("#job-events", Log)
        if message.reset:
            log.clear()
            events.clear()
        if message.lines:
            log.write_lines(message.lines)
        if message.events:
            from ftbench.tui.widgets.job_list import format_event

            events.write_lines([format_event(e) for e in message.events])

    # ------------------------------------------------------------------ actions
    def _job(self):
        from ftbench.core.jobs import find_job

        row = self.current_row()
        if row is None:
            self.notify("No job selected.", severity="warning")
            return None
        return find_job(self.ws, row["dir"])

    def action_open_monitor(self) -> None:
        row = self.current_row()
        if row is not None:
            self._open_monitor(Path(row["dir"]))

    def action_stop_job(self) -> None:
        job = self._job()
        if job is None:
            return
        if not job.active:
            self.notify(f"{job.id} is already {job.state}.", severity="warning")
            return
        self._stop_in_background(job)

    @work(thread=True, group="job-control")
    def _stop_in_background(self, job) -> None:
        from ftbench.core.job_stop import stop_job

        self.app.call_from_thread(self.notify, f"Stopping {job.id}…")
        job = stop_job(job, grace_s=self.ws.config.defaults.stop_grace_s)
        self.app.call_from_thread(self.notify, f"{job.id} is {job.state}.")
        self.wake()

    def action_checkpoint(self) -> None:
        from ftbench.core.jobs import request_control

        try:
            job = self._job()
            if job is None:
                return
            request_control(job, "checkpoint")
        except FtbenchError as exc:
            self.notify(f"{exc.message} {exc.hint or ''}".strip(), severity="error")
            return
        self.notify(f"Asked {job.id} to save a checkpoint at its next step.")

    def action_rescan(self) -> None:
        self.wake()
