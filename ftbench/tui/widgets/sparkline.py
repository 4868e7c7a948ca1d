"""Text sparklines and bars: cheap one-line renderings of a series, used in tables and panes.

Textual's Sparkline widget needs a widget per series; a run table wants a sparkline per row inside a
DataTable cell, so this renders plain strings of block characters instead.
"""

from __future__ import annotations

from collections.abc import Sequence

BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float | None], width: int = 20, lo: float | None = None, hi: float | None = None) -> str:
    """`width` block characters summarising `values` (bucket means); missing values are spaces."""
    data = [v for v in values if v is not None]
    if not data or width <= 0:
        return ""
    if len(values) > width:  # bucket means, so a long run still fits
        size = len(values) / width
        buckets = []
        for b in range(width):
            chunk = [v for v in values[int(b * size) : max(int((b + 1) * size), int(b * size) + 1)] if v is not None]
            buckets.append(sum(chunk) / len(chunk) if chunk else None)
        values = buckets
    lo = min(data) if lo is None else lo
    hi = max(data) if hi is None else hi
    span = hi - lo
    out = []
    for v in values:
        if v is None:
            out.append(" ")
            continue
        level = 0 if span <= 0 else int(round((min(max(v, lo), hi) - lo) / span * (len(BLOCKS) - 1)))
        out.append(BLOCKS[level])
    return "".join(out)


def bar(fraction: float | None, width: int = 20) -> str:
    """A filled bar with eighth-block resolution; unknown is a dotted bar."""
    if fraction is None:
        return "·" * width
    fraction = min(max(fraction, 0.0), 1.0)
    eighths = int(round(fraction * width * 8))
    full, part = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[part] if part and full < width else ""
    return ("█" * full + partial).ljust(width, "░")[:width]
