"""The GPU pane: per device VRAM bar (threshold colours), utilisation, temperature and power.

It only renders; the app samples NVML in a thread worker and pushes reports here, so a slow or missing
driver never blocks the UI. Without NVML it says "no NVIDIA GPU" and why, never raises. The run monitor
uses the same pane with a history sparkline per device from the run's `gpu` events.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Static

from ftbench.core.gpu import GpuInfo, GpuReport, headline
from ftbench.core.humanize import human_gib
from ftbench.tui.services import services
from ftbench.tui.widgets.sparkline import bar, sparkline

WARN, CRIT = 0.70, 0.90
COMPACT = 94  # columns a GPU line needs with the device name


def level_style(fraction: float | None) -> str:
    """Green under 70 %, yellow under 90 %, red above: VRAM near full is the usual reason a run dies."""
    if fraction is None:
        return "dim"
    if fraction >= CRIT:
        return "bold red"
    if fraction >= WARN:
        return "yellow"
    return "green"


def _num(value: float | None, fmt: str, unit: str) -> str:
    return "n/a" if value is None else f"{value:{fmt}}{unit}"


def render_gpu_line(
    gpu: GpuInfo, bar_width: int = 16, history: Sequence[float] | None = None, name_width: int = 22
) -> Text:
    frac = gpu.mem_fraction
    line = Text()
    line.append(f"GPU{gpu.index} ", style="bold")
    if name_width:
        line.append(f"{gpu.name[:name_width]:<{name_width}} ")
    line.append(bar(frac, bar_width), style=level_style(frac))
    used = human_gib(gpu.mem_used).replace(" GiB", "")
    line.append(f" {used}/{human_gib(gpu.mem_total)}")
    line.append(f" {_num(frac * 100 if frac is not None else None, '3.0f', '%')}", style=level_style(frac))
    line.append(f"  util {_num(gpu.util, '3.0f', '%')}")
    line.append(f"  {_num(gpu.temp, '.0f', '°C')}")
    power = _num(gpu.power, ".0f", "")
    limit = _num(gpu.power_limit, ".0f", " W") if gpu.power_limit is not None else "W"
    line.append(f"  {power}/{limit}" if gpu.power_limit is not None else f"  {power} W")
    if history:
        line.append("\n     VRAM history ")
        line.append(sparkline(history, width=30, lo=0.0, hi=1.0), style=level_style(history[-1]))
    return line


def render_report(
    report: GpuReport | None,
    bar_width: int = 16,
    history: dict[int, list[float]] | None = None,
    name_width: int = 22,
) -> Text:
    if report is None or not report.available:
        label, _, rest = headline(report).partition(" ")
        return Text.assemble((label + " ", "bold"), (rest, "dim"))
    lines = [render_gpu_line(g, bar_width, (history or {}).get(g.index), name_width) for g in report.gpus]
    return Text("\n").join(lines)


class GpuPane(Static):
    """Shows the latest GpuReport; `show_report` is called by the app (live) or the monitor (run events)."""

    DEFAULT_CSS = """
    GpuPane { height: auto; padding: 0 1; border-top: solid $panel-lighten-2; }
    """

    def __init__(self, *, live: bool = True, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.live = live
        self.report: GpuReport | None = None
        self.history: dict[int, list[float]] = {}

    def on_mount(self) -> None:
        if self.live:
            self.show_report(services(self.app).gpu_report())

    def show_report(self, report: GpuReport | None, history: dict[int, list[float]] | None = None) -> None:
        if report == self.report and history == (self.history or None):
            return
        self.report = report
        self.history = history or {}
        self._render_now()

    def on_resize(self) -> None:
        self._render_now()

    def _render_now(self) -> None:
        """Under COMPACT columns the device name goes, so each GPU stays on one line at 80 columns."""
        width = self.size.width
        name_width = 0 if 0 < width < COMPACT else 22
        self.update(render_report(self.report, history=self.history, name_width=name_width))
