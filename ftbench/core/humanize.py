"""Numbers for people: sizes, counts, ages and row counts, the same in the CLI and every screen."""

from __future__ import annotations


def human_size(n: float | None) -> str:
    """Bytes in 1024 steps: 512 B, 14.0 KB, 260.0 MB, 1.2 GB."""
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def human_count(n: int | None) -> str:
    """Parameter and row counts: 134.5M, 22.7M, 512."""
    if n is None:
        return "?"
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(n)


def human_age(seconds: float | None) -> str:
    """The largest whole unit: 45s, 5m, 2h, 3d."""
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def rows_text(rows: int | None, exact: bool) -> str:
    """A row count, marked `~` while it is still an estimate."""
    if rows is None:
        return "?"
    return f"{rows:,}" if exact else f"~{rows:,}"
