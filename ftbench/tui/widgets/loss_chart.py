"""A braille line chart for loss curves: several series, linear or log y axis, drawn in one pass.

Each terminal cell holds a 2x4 braille dot grid, so a 60x12 pane gives 120x48 dots, enough to read a
loss curve. Rendering is a pure function of the (already downsampled) points and the size, so the chart
costs nothing between updates and snapshot tests see exactly the same picture every time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from ftbench.core.humanize import short_number

# dot (x in 0..1, y in 0..3 from the top) -> braille bit
_BITS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
Y_LABEL_WIDTH = 8


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[float, float]]
    style: str = "white"


def render_chart(series: Sequence[Series], width: int, height: int, log_y: bool = False, title: str = "") -> Text:
    """The chart as text of `height` lines by `width` columns (y labels on the left, x range below)."""
    plot_w, plot_h = width - Y_LABEL_WIDTH, height - 1
    usable = [s for s in series if s.points]
    if plot_w < 4 or plot_h < 2 or not usable:
        return Text("waiting for the first logged step…" if width > 10 else "", style="dim")

    def ty(v: float) -> float | None:
        if log_y:
            return math.log10(v) if v > 0 else None
        return v

    xs = [p[0] for s in usable for p in s.points]
    ys = [y for s in usable for p in s.points if (y := ty(p[1])) is not None and math.isfinite(y)]
    if not ys:
        return Text("no positive values to plot on a log scale", style="dim")
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if y1 - y0 < 1e-12:
        y0, y1 = y0 - 0.5, y1 + 0.5
    if x1 - x0 < 1e-12:
        x1 = x0 + 1
    dots_w, dots_h = plot_w * 2, plot_h * 4
    cells = [[0] * plot_w for _ in range(plot_h)]
    colours: list[list[str | None]] = [[None] * plot_w for _ in range(plot_h)]

    def plot(dx: int, dy: int, style: str) -> None:
        if 0 <= dx < dots_w and 0 <= dy < dots_h:
            cy, cx = dy // 4, dx // 2
            cells[cy][cx] |= _BITS[dx % 2][dy % 4]
            colours[cy][cx] = style

    for s in usable:
        prev: tuple[int, int] | None = None
        for x, raw in s.points:
            y = ty(raw)
            if y is None or not math.isfinite(y):
                prev = None
                continue
            dx = int(round((x - x0) / (x1 - x0) * (dots_w - 1)))
            dy = int(round((y1 - y) / (y1 - y0) * (dots_h - 1)))
            if prev is None:
                plot(dx, dy, s.style)
            else:
                _line(prev, (dx, dy), lambda a, b, st=s.style: plot(a, b, st))
            prev = (dx, dy)

    def label(v: float) -> str:
        return short_number(10**v if log_y else v)

    out = Text(no_wrap=True, overflow="crop")
    for row in range(plot_h):
        if row == 0:
            lab = label(y1)
        elif row == plot_h - 1:
            lab = label(y0)
        elif row == plot_h // 2 and plot_h > 4:
            lab = label((y0 + y1) / 2)
        else:
            lab = ""
        out.append(f"{lab:>{Y_LABEL_WIDTH - 1}}┤", style="dim")
        for col in range(plot_w):
            bits = cells[row][col]
            out.append(chr(0x2800 + bits) if bits else " ", style=colours[row][col] or "")
        out.append("\n")
    axis = f"{' ' * (Y_LABEL_WIDTH - 1)}└ step {short_number(x0)} … {short_number(x1)}" + ("  log" if log_y else "")
    out.append(axis, style="dim")
    room = width - len(axis) - 2
    if room > 4:
        out.append("  ")
        for i, s in enumerate(usable):
            if i:
                out.append(" ")
            out.append(f"━ {s.name}"[: max(0, room)], style=s.style)
            room -= len(s.name) + 3
            if room <= 4:
                break
    return out


def _line(a: tuple[int, int], b: tuple[int, int], plot) -> None:
    """Bresenham between two dots, both ends included."""
    (x0, y0), (x1, y1) = a, b
    dx, dy = abs(x1 - x0), -abs(y1 - y0)
    sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
    err = dx + dy
    while True:
        plot(x0, y0)
        if x0 == x1 and y0 == y1:
            return
        e2 = 2 * err
        if e2 >= dy:
            err += dy
            x0 += sx
        if e2 <= dx:
            err += dx
            y0 += sy


class LossChart(Widget):
    """Draws `series`; call `set_series` with new data, it repaints once (never on a timer)."""

    DEFAULT_CSS = "LossChart { height: 1fr; min-height: 6; }"
    log_y: reactive[bool] = reactive(False)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.series: list[Series] = []

    def set_series(self, series: list[Series]) -> None:
        if series != self.series:
            self.series = series
            self.refresh()

    def render(self) -> Text:
        size = self.content_size
        return render_chart(self.series, size.width, size.height, log_y=self.log_y)
