"""The run monitor: loss chart (train/eval, raw/smoothed, log toggle), sparklines, GPU history, log, checkpoints.

A thread worker reads the run's events.jsonl from byte 0 (the whole history after reopening the app),
then only new bytes, at most twice a second; the screen redraws only when a read brought something.
Actions go through the same core functions the CLI uses: stop, checkpoint now, resume (a new attempt of
the job in the same folder), chat with the adapter, and export (an `export` job). Chat and export take the
run's final weights, or, with a checkpoint highlighted in the checkpoint list, that checkpoint (`RUN@checkpoint-N`
through the artifacts resolver), so a checkpoint of a run that is still going can be tried or exported.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Log, OptionList, Static
from textual.widgets.option_list import Option

from ftbench.core.errors import FtbenchError
from ftbench.core.events import EventTail
from ftbench.core.humanize import human_duration, plain_number
from ftbench.core.jobs import ACTIVE_STATES, Job, find_job, read_status
from ftbench.core.layout import JobLayout
from ftbench.core.tail import LineTail
from ftbench.core.workspace import Workspace
from ftbench.tui.messages import RunData
from ftbench.tui.services import services
from ftbench.tui.widgets.app_header import AppHeader
from ftbench.tui.widgets.gpu_pane import GpuPane
from ftbench.tui.widgets.job_list import state_label
from ftbench.tui.widgets.loss_chart import LossChart, Series
from ftbench.tui.widgets.run_data import RunView, gen_metrics_line
from ftbench.tui.widgets.sparkline import sparkline

REDRAW_S = 0.5  # at most 2 Hz
STYLES = {"loss": "grey50", "loss (ema)": "bold cyan", "eval_loss": "bold magenta"}


class MonitorScreen(Screen[None]):
    TITLE = "Run monitor"
    BINDINGS = [
        Binding("escape", "back", "Back", id="monitor_back"),
        Binding("s", "stop_job", "Stop", id="monitor_stop"),
        Binding("c", "checkpoint", "Checkpoint now", id="monitor_checkpoint"),
        Binding("r", "resume", "Resume", id="monitor_resume"),
        Binding("l", "toggle_log", "Log scale", id="monitor_log_scale"),
        Binding("m", "toggle_smooth", "Smoothing", id="monitor_smoothing"),
        Binding("t", "chat", "Chat with adapter", id="monitor_chat"),
        Binding("g", "export", "Export GGUF", id="monitor_export"),
        Binding("G", "export_eval", "Export GGUF + eval each quant", id="monitor_export_eval", show=False),
        Binding("v", "serve", "Serve (OpenAI API)", id="monitor_serve"),
    ]

    def __init__(self, ws: Workspace, job_dir: Path) -> None:
        super().__init__()
        self.ws = ws
        self.job_dir = Path(job_dir)
        self.view = RunView()
        self.status: dict[str, Any] = {}
        self.smooth_only = False
        self.updates = 0  # how many redraws happened (tests assert it stays bounded)
        self._halt = threading.Event()

    def compose(self) -> ComposeResult:
        yield AppHeader()
        with Horizontal(id="monitor-main"):
            with Vertical(id="monitor-left"):
                yield Static("", id="monitor-stats")
                chart = LossChart(id="loss-chart")
                chart.border_title = "loss"
                yield chart
                yield Static("", id="monitor-sparks")
            with Vertical(id="monitor-right"):
                yield GpuPane(id="monitor-gpu")  # live until the run has GPU samples of its own
                checkpoints = OptionList(Option("no checkpoints yet", disabled=True), id="monitor-checkpoints")
                checkpoints.border_title = "checkpoints"
                checkpoints.border_subtitle = "enter: chat · g: export"
                yield checkpoints
                log = Log(id="monitor-log", max_lines=5000, highlight=False)
                log.border_title = "log"
                yield log
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = self.job_dir.name
        self._follow()

    def on_unmount(self) -> None:
        self._halt.set()

    @work(thread=True, exclusive=True, group="monitor", name="monitor-follow")
    def _follow(self) -> None:
        events = EventTail(JobLayout(self.job_dir).events)  # offset 0: the whole history first
        log = LineTail(JobLayout(self.job_dir).log, start_from_end=64 * 1024)
        last_mtime: float | None = None
        last_status: dict[str, Any] = {}
        last_check = 0.0
        first = True
        while not self._halt.is_set() and not services(self.app).stopping():
            new_events = events.read_new()
            lines = log.read_new_shown()
            status: dict[str, Any] = {}
            try:
                mtime = JobLayout(self.job_dir).status.stat().st_mtime
                # an active job is re-checked every few seconds even when its status file is quiet: its
                # process may have vanished, which only `refresh` notices
                stale = last_status.get("state") in ACTIVE_STATES and time.monotonic() - last_check > 3.0
                if mtime != last_mtime or stale:
                    last_mtime, last_check = mtime, time.monotonic()
                    job = Job(self.job_dir, read_status(self.job_dir))
                    if job.active:
                        from ftbench.core.jobs import refresh

                        job = refresh(job)
                    if job.status != last_status:
                        status = last_status = job.status
            except (OSError, FtbenchError):
                pass
            if new_events or lines or status or first:
                self.post_message(RunData(new_events, status, lines, first))
                first = False
            self._halt.wait(REDRAW_S)

    def on_run_data(self, message: RunData) -> None:
        self.view.add_all(message.events)
        if message.status:
            self.status = message.status
        if message.lines:
            self.query_one("#monitor-log", Log).write_lines(message.lines)
        self.redraw()

    # ------------------------------------------------------------------ drawing
    def redraw(self) -> None:
        self.updates += 1
        chart = self.query_one("#loss-chart", LossChart)
        width = max(20, chart.content_size.width * 2)
        series = [
            Series(name, points, STYLES[name])
            for name, points in self.view.chart_series(width, raw=not self.smooth_only)
            if points
        ]
        chart.set_series(series)
        self.query_one("#monitor-stats", Static).update(self._stats_text())
        self.query_one("#monitor-sparks", Static).update(self._sparks_text())
        self._show_gpu()
        self._show_checkpoints()

    def _show_gpu(self) -> None:
        """The run's own GPU samples when it has any; else this machine's, worded as on every other screen."""
        pane = self.query_one("#monitor-gpu", GpuPane)
        run_report = self.view.gpu_report()
        pane.live = run_report is None
        if run_report is not None:
            pane.show_report(run_report, self.view.gpu_history)
        else:
            pane.show_report(services(self.app).gpu_report())

    def _stats_text(self) -> Text:
        s, v = self.status, self.view
        label, style = state_label(s.get("state", "?"))
        text = Text.assemble((s.get("name") or self.job_dir.name, "bold"), "  ", (label, style))
        if s.get("attempt", 1) != 1:
            text.append(f"  attempt {s.get('attempt')}")
        tr = v.last_train
        progress = v.last_progress or s.get("progress") or {}
        parts = []
        if tr.get("step") is not None:
            total = tr.get("max_steps") or (progress.get("total") if progress.get("phase") == "training" else None)
            parts.append(f"step {tr['step']}" + (f"/{plain_number(total)}" if isinstance(total, (int, float)) else ""))
        if isinstance(tr.get("epoch"), (int, float)):
            parts.append(f"epoch {tr['epoch']:.2f}")
        if isinstance(tr.get("loss"), (int, float)):
            parts.append(f"loss {tr['loss']:.4f}")
        if isinstance(tr.get("tokens_per_s"), (int, float)):
            parts.append(f"{tr['tokens_per_s']:,.0f} tok/s")
        eta = tr.get("eta_s", progress.get("eta_s"))
        if isinstance(eta, (int, float)) and s.get("state") in ACTIVE_STATES:
            parts.append(f"ETA {human_duration(eta)}")
        best = v.best_eval()
        if best:
            parts.append(f"best eval_loss {best[1]:.4f} @ {best[0]:g}")
        if parts:
            text.append("\n" + " · ".join(parts))
        if v.gen_metrics:
            text.append("\n" + gen_metrics_line(v.gen_metrics, v.gen_step), style="magenta")
        error = s.get("error") or {}
        if error.get("message"):
            text.append(f"\n{error['message']}", style="red")
            if error.get("hint"):
                text.append(f"  hint: {error['hint']}", style="dim")
        return text

    def _sparks_text(self) -> Text:
        v = self.view
        text = Text()
        for label, values, fmt in (
            ("lr", v.lr, ".2e"),
            ("grad norm", v.grad_norm, ".3g"),
            ("tokens/s", v.tokens_per_s, ",.0f"),
        ):
            text.append(f"{label:>9} ", style="dim")
            text.append(sparkline(values, width=40) or "-")
            text.append(f" {values[-1]:{fmt}}\n" if values else "\n")
        if v.objective:  # orpo, simpo, kto, grpo: the objective's key metric (reward or margin)
            text.append(f"{v.objective_metric[:9]:>9} ", style="dim")
            text.append(f"{sparkline(v.objective, width=40)} {v.objective[-1]:.4g}\n")
        if v.torch_peak_allocated:
            text.append(f"{'peak':>9} {v.torch_peak_allocated / 1024**3:.2f} GiB allocated by torch")
        return text

    def checkpoint_names(self) -> list[str]:
        """checkpoint-N names from the run's checkpoint events, oldest first, each once."""
        names = [Path(str(cp.get("path", ""))).name or f"checkpoint-{cp.get('step')}" for cp in self.view.checkpoints]
        return list(dict.fromkeys(names))

    def _show_checkpoints(self) -> None:
        """Rebuild the list only when it changed, so the highlighted checkpoint stays where the user put it."""
        names = self.checkpoint_names()
        listing = self.query_one("#monitor-checkpoints", OptionList)
        if names == [opt.id for opt in listing.options if opt.id]:
            return
        highlighted = listing.highlighted_option.id if listing.highlighted_option is not None else None
        listing.clear_options()
        steps = {Path(str(cp.get("path", ""))).name: cp.get("step", "?") for cp in self.view.checkpoints}
        listing.add_options([Option(f"step {steps.get(name, '?')}  {name}", id=name) for name in names])
        if highlighted in names:
            listing.highlighted = names.index(highlighted)

    def selected_checkpoint(self) -> str | None:
        """The checkpoint highlighted in the list while the list has focus (else actions use the run)."""
        listing = self.query_one("#monitor-checkpoints", OptionList)
        option = listing.highlighted_option
        return option.id if listing.has_focus and option is not None and option.id else None

    # ------------------------------------------------------------------ actions
    def _job(self) -> Job:
        return find_job(self.ws, str(self.job_dir))

    def _guard(self, fn, *args, **kwargs) -> Any:
        try:
            return fn(*args, **kwargs)
        except FtbenchError as exc:
            self.notify(f"{exc.message} {exc.hint or ''}".strip(), severity="error", timeout=8)
            return None

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_toggle_log(self) -> None:
        chart = self.query_one("#loss-chart", LossChart)
        chart.log_y = not chart.log_y
        chart.border_title = "loss (log)" if chart.log_y else "loss"

    def action_toggle_smooth(self) -> None:
        self.smooth_only = not self.smooth_only
        self.redraw()

    def action_stop_job(self) -> None:
        job = self._guard(self._job)
        if job is None:
            return
        if not job.active:
            self.notify(f"{job.id} is already {job.state}.", severity="warning")
            return
        self._stop(job)

    @work(thread=True, group="monitor-control")
    def _stop(self, job: Job) -> None:
        from ftbench.core.job_stop import stop_job

        self.app.call_from_thread(self.notify, f"Stopping {job.id}; it saves a checkpoint first…")
        job = stop_job(job, grace_s=self.ws.config.defaults.stop_grace_s)
        self.app.call_from_thread(self.notify, f"{job.id} is {job.state}.")

    def action_checkpoint(self) -> None:
        from ftbench.core.jobs import request_control

        job = self._guard(self._job)
        if job is not None and self._guard(request_control, job, "checkpoint") is not None:
            self.notify("Checkpoint requested; it is saved at the next step.")

    def action_resume(self) -> None:
        from ftbench.core.jobs import restart_job
        from ftbench.core.registry import Registry

        job = self._guard(self._job)
        if job is None:
            return
        from ftbench.core.checkpoint_trust import TRUST_ENV
        from ftbench.core.remote_code import TRUST_REMOTE_CODE_ENV

        # Never inherit a trust switch from the app's environment: only `ftbench resume`'s live flags set them.
        env = {TRUST_ENV: "0", TRUST_REMOTE_CODE_ENV: "0"}
        new = self._guard(restart_job, job, env=env, on_launch=Registry(self.ws).sync_job)
        if new is not None:
            self.notify(f"Resumed {new.id} as attempt {new.status.get('attempt')}.")

    def action_chat(self) -> None:
        checkpoint = self.selected_checkpoint()
        if checkpoint is not None:
            self.chat_with(f"{self.job_dir}@{checkpoint}")
            return
        if self.adapter_path() is None:
            self.notify("This run has no adapter or model yet.", severity="warning")
            return
        self.chat_with(str(self.job_dir))

    def chat_with(self, ref: str) -> None:
        """Open the Chat screen on a run reference (the run, or RUN@checkpoint-N); chat resolves and explains it."""
        opener = services(self.app).open_chat
        if opener is None or not opener(ref):
            self.notify(f"Chat with it: ftbench chat MODEL --adapter {ref}", timeout=10)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_list.id == "monitor-checkpoints" and event.option.id:
            self.chat_with(f"{self.job_dir}@{event.option.id}")

    def adapter_path(self) -> Path | None:
        """The run's final weights (adapter/ or model/), else its newest complete checkpoint; None before either."""
        layout = JobLayout(self.job_dir)
        newest = layout.last_checkpoint()
        return layout.final_output() or (newest.path if newest else None)

    def action_export(self) -> None:
        self._export({})

    def action_export_eval(self) -> None:
        """Export with a quantization check: the dialog asks for an eval file, then the same export starts."""
        from ftbench.tui.screens.export_dialog import ExportEvalScreen

        if self._export_source() is None:
            return
        quants = list(self.ws.config.defaults.export_quants)
        name = self.status.get("name") or self.job_dir.name
        self.app.push_screen(ExportEvalScreen(self.ws, name, quants), lambda extra: extra and self._export(extra))

    def _export_source(self) -> tuple[str, str | None] | None:
        """(what to export, the checkpoint it is) or None, said why, when there is nothing to export yet."""
        from ftbench.core.artifacts import resolve

        checkpoint = self.selected_checkpoint()
        if checkpoint is None and self.status.get("state") in ACTIVE_STATES:
            self.notify(
                "The run is still going; export it when it has finished, or highlight a checkpoint in the list "
                "and press g to export that.",
                severity="warning",
            )
            return None
        source = str(self.job_dir)  # the export job resolves the run (its final weights) itself
        if checkpoint is not None:  # pinned now: the run may delete old checkpoints (save_total_limit)
            weights = self._guard(resolve, self.ws, f"{self.job_dir}@{checkpoint}", ("adapter", "model"))
            if weights is None:
                return None
            source = str(weights.path)
        return source, checkpoint

    def _export(self, extra: dict[str, Any]) -> None:
        from ftbench.core.jobs import start_job
        from ftbench.core.registry import Registry

        picked = self._export_source()
        if picked is None:
            return
        source, checkpoint = picked
        name = f"{self.status.get('name') or self.job_dir.name}" + (f"-{checkpoint}" if checkpoint else "")
        params = {"source": source, "quants": list(self.ws.config.defaults.export_quants), **extra}
        meta = {"source_run": self.job_dir.name, **({"checkpoint": checkpoint} if checkpoint else {})}
        job = self._guard(start_job, self.ws, "export", name, params, meta, on_launch=Registry(self.ws).sync_job)
        if job is not None:
            scored = " with an eval of each quant" if extra.get("eval") else ""
            self.notify(
                f"Export started: {job.id} ({', '.join(params['quants'])}){scored}. Follow it on the Jobs screen."
            )

    def action_serve(self) -> None:
        from ftbench.serve.launch import options_for_run
        from ftbench.tui.screens.serve import ServeScreen

        if self.status.get("state") in ACTIVE_STATES:
            self.notify("The run is still going; serve it when it has finished.", severity="warning")
            return
        options = self._guard(options_for_run, self.job_dir)
        if options is not None:
            self.app.push_screen(ServeScreen(self.ws, options))
