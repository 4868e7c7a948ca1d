"""Numbers for people: sizes, counts, ages, durations and row counts, the same in the CLI and every screen.

Every such formatter lives here (grep before writing another), so a size or an age reads the same everywhere.
"""

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


def human_duration(seconds: float | None) -> str:
    """A clock-style duration for elapsed times and ETAs: 0:42, 12:05, 1:02:03."""
    if seconds is None:
        return "-"
    seconds = int(max(0, seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def file_age(mtime: float, now: float) -> str:
    """How long ago a file changed, as a listing column: now, 5m, 2h, 3d."""
    delta = now - mtime
    return "now" if delta < 60 else human_age(delta)


def human_gib(n: float | None) -> str:
    """Memory in GiB (MiB below one GiB), as nvidia-smi users read it: 40.0 GiB, 300 MiB."""
    if n is None:
        return "n/a"
    gib = n / 1024**3
    return f"{gib:.1f} GiB" if gib >= 1 else f"{n / 1024**2:.0f} MiB"


def decimal_size(n: float) -> str:
    """Bytes in powers of ten, as disk space and file cards state them: 1.23 GB, 45.6 MB."""
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def short_number(v: float) -> str:
    """A number in at most about six characters, for chart axes: 0, 0.5, 123, 1.2e+04, 3.0e-03."""
    if v == 0:
        return "0"
    if abs(v) >= 1e4 or abs(v) < 1e-2:
        return f"{v:.1e}"
    return f"{v:.3g}"


def plain_number(v: float) -> str:
    """A count as people read and copy it, never in exponent form: 1000000, 36, 2.5."""
    return str(int(v)) if float(v).is_integer() else f"{v:g}"
