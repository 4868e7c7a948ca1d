"""What GPU runs on this box really used, beside what the estimator said, so estimates learn from runs.

Each training run on a GPU appends one entry (train/vram_record.py): the estimate's total, the measured peak
(torch's peak reserved memory plus the CUDA context), and the CUDA context itself, measured as the process's
memory in NVML minus what torch's allocator holds. `load_calibration` summarises them: the median ratio of
measured to estimated (shown on the Models screen as how far the estimate was off here) and the median context
size, which the estimator then uses instead of its constant. Kept in `<workspace>/.cache/vram-runs.json`,
the newest MAX_RUNS entries, written atomically under a file lock. Standard library only (the TUI reads it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

from ftbench.core.atomic import atomic_write_json

FILE = ".cache/vram-runs.json"
MAX_RUNS = 50


@dataclass(frozen=True)
class Calibration:
    runs: int  # GPU runs with both an estimate and a measured peak
    ratio: float | None  # median measured / estimated
    cuda_context: int | None  # median measured CUDA context, bytes

    def describe(self) -> str:
        """One line for the Models screen, or '' before the first measured run."""
        if not self.runs or self.ratio is None:
            return ""
        off = (self.ratio - 1) * 100
        text = f"On this box: runs peaked at {self.ratio:.2f}x their estimate ({off:+.0f}%, median of {self.runs})"
        if self.cuda_context:
            text += f"; CUDA context measured {self.cuda_context / 2**20:.0f} MiB"
        return text + "."


def _entries(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []


def record_run(workspace_root: Path, entry: dict[str, Any]) -> None:
    """Append one run's measurement (keeps the newest MAX_RUNS)."""
    from filelock import FileLock

    path = Path(workspace_root) / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        atomic_write_json(path, [*_entries(path), entry][-MAX_RUNS:])


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def load_calibration(workspace_root: Path) -> Calibration:
    entries = _entries(Path(workspace_root) / FILE)
    ratios = [
        e["measured_peak"] / e["estimate"]
        for e in entries
        if _positive(e.get("estimate")) and _positive(e.get("measured_peak"))
    ]
    contexts = [e["cuda_context"] for e in entries if _positive(e.get("cuda_context"))]
    return Calibration(
        runs=len(ratios),
        ratio=median(ratios) if ratios else None,
        cuda_context=int(median(contexts)) if contexts else None,
    )
