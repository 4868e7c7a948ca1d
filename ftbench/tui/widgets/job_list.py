"""Reading job folders for the TUI: the job list, and incremental log and event tails.

Job folders are the truth (DESIGN.md), so the list comes from each folder's status.json, re-read only when
its mtime changes, and active jobs go through `jobs.refresh` so a vanished process shows as failed. Rows
are plain dicts of display strings: the screen redraws only when a row's text actually changed.
Everything here runs in thread workers; nothing touches widgets.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftbench.core.event_schema import ENVELOPE
from ftbench.core.events import EventTail
from ftbench.core.humanize import human_age, human_duration, plain_number
from ftbench.core.jobs import ACTIVE_STATES, Job, job_dirs, refresh, waiting_note
from ftbench.core.layout import JobLayout
from ftbench.core.tail import LineTail
from ftbench.core.workspace import Workspace

# Each state has a symbol and a word, so states read the same without colour (and in tmux captures).
STATE_LABELS = {
    "queued": ("⧗", "queued", "magenta"),
    "starting": ("◌", "starting", "cyan"),
    "running": ("▶", "running", "bold green"),
    "stopping": ("◍", "stopping", "yellow"),
    "succeeded": ("✓", "succeeded", "green"),
    "failed": ("✗", "failed", "bold red"),
    "stopped": ("■", "stopped", "yellow"),
}


def state_label(state: str) -> tuple[str, str]:
    symbol, word, style = STATE_LABELS.get(state, ("?", state or "unknown", "dim"))
    return f"{symbol} {word}", style


def progress_text(progress: dict[str, Any] | None, active: bool = False) -> str:
    """The Jobs list's progress cell: "step 30/60 ETA 0:12" while training, "quantize 1/2 50%" otherwise."""
    if not progress:
        return "-"
    phase, done, total = progress.get("phase") or "", progress.get("done"), progress.get("total")
    eta = progress.get("eta_s")
    if phase == "training" and isinstance(done, (int, float)):
        text = f"step {plain_number(done)}" + (
            f"/{plain_number(total)}" if isinstance(total, (int, float)) and total else ""
        )
        return text + (f" ETA {human_duration(eta)}" if active and isinstance(eta, (int, float)) else "")
    if isinstance(done, (int, float)) and isinstance(total, (int, float)) and total:
        return f"{phase} {plain_number(done)}/{plain_number(total)} {100 * done / total:.0f}%".strip()
    if isinstance(done, (int, float)):
        return f"{phase} {done:g}".strip()
    return phase or "-"


def job_row(job: Job, clock: Callable[[], float]) -> dict[str, Any]:
    s = job.status
    label, style = state_label(job.state)
    return {
        "id": job.id,
        "dir": str(job.dir),
        "kind": s.get("kind") or "?",
        "name": s.get("name") or job.id,
        "state": job.state,
        "state_label": label,
        "state_style": style,
        "progress": waiting_note(s) or progress_text(s.get("progress"), active=job.state in ACTIVE_STATES),
        "age": human_age(clock() - s["created_at"]) if s.get("created_at") else "-",
        "created_at": s.get("created_at") or 0,
        "error": (s.get("error") or {}).get("message") or "",
        "hint": (s.get("error") or {}).get("hint") or "",
        "attempt": s.get("attempt", 1),
        "result": s.get("result") or {},
        "serve": s.get("serve") or {},
        "slurm": slurm_summary(job),
    }


def slurm_summary(job: Job) -> str:
    """For a Slurm job: its id, Slurm's state and the sbatch options, as the info pane shows them."""
    info = job.status.get("slurm") or {}
    if not info.get("job_id"):
        return ""
    try:
        script = (job.dir / "slurm.sbatch").read_text(encoding="utf-8")
    except OSError:
        script = ""
    options = " ".join(line.split(None, 1)[1] for line in script.splitlines() if line.startswith("#SBATCH "))
    reason = f" ({info['reason']})" if info.get("reason") and info["reason"] != "None" else ""
    return f"Slurm job {info['job_id']}: {info.get('state') or '?'}{reason}\nsbatch {options}\nscript: {job.dir / 'slurm.sbatch'}"


@dataclass
class JobScanner:
    """Lists jobs from their folders; unchanged final jobs cost one stat() per scan."""

    ws: Workspace
    clock: Callable[[], float]
    _cache: dict[Path, tuple[float, dict[str, Any]]] = field(default_factory=dict)

    def scan(self) -> list[dict[str, Any]]:
        jobs: list[Job] = []
        for job_dir in job_dirs(self.ws):
            status_path = JobLayout(job_dir).status
            try:
                mtime = status_path.stat().st_mtime
            except OSError:
                continue
            cached = self._cache.get(job_dir)
            if cached and cached[0] == mtime and cached[1].get("state") not in ACTIVE_STATES:
                status = cached[1]
            else:
                try:
                    status = json.loads(status_path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue
                if status.get("state") in ACTIVE_STATES:
                    try:
                        status = refresh(Job(job_dir, status)).status
                    except Exception:  # noqa: BLE001 - a folder deleted under us is just gone
                        continue
                self._cache[job_dir] = (mtime, status)
            jobs.append(Job(job_dir, status))
        rows = [job_row(j, self.clock) for j in jobs]
        return sorted(rows, key=lambda r: (r["created_at"], r["id"]), reverse=True)


def _fmt_value(value: Any) -> str:
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.2e}"
        return f"{value:.4g}"
    if isinstance(value, list):
        return f"[{len(value)}]"
    if isinstance(value, dict):
        return "{…}"
    return str(value)


def format_event(event: dict[str, Any]) -> str:
    """One readable line per event, without the time (keeps snapshots stable) or the attempt unless >1."""
    kind = event.get("type", "?")
    if kind == "log":
        return f"log        {event.get('message', '')}"
    if kind == "gpu":
        devices = event.get("devices") or []
        used = sum(d.get("mem_used") or 0 for d in devices) / 1024**3
        return f"gpu        {len(devices)} device(s) {used:.1f} GiB used"
    parts = [f"{k}={_fmt_value(v)}" for k, v in event.items() if k not in ENVELOPE and v is not None]
    prefix = f"{kind:<10} " + (f"(attempt {event['attempt']}) " if event.get("attempt", 1) != 1 else "")
    return prefix + " ".join(parts)


@dataclass
class JobFollower:
    """Tails one job's log.txt and events.jsonl; switching jobs starts a fresh tail."""

    job_dir: Path
    max_initial_events: int = 200
    log: LineTail = field(init=False)
    events: EventTail = field(init=False)
    started: bool = False

    def __post_init__(self) -> None:
        self.log = LineTail(JobLayout(self.job_dir).log, start_from_end=32 * 1024)
        self.events = EventTail(JobLayout(self.job_dir).events)

    def read_new(self) -> tuple[list[str], list[dict[str, Any]]]:
        lines = self.log.read_new_shown()
        events = self.events.read_new()
        if not self.started:
            self.started = True
            events = events[-self.max_initial_events :]
        return lines, events
