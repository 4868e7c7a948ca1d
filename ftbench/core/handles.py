"""What users type for jobs: ids, unique id prefixes, `last` / `last~N`, and `RUN@selector` suffixes.

Torch-free and dependent only on the job folder layout, so the resolver, `ftbench runs`, and (later) tab
completion share one notion of "which job is meant" and of the shortest prefix that still names it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ftbench.core.errors import FtbenchError
from ftbench.core.layout import CHECKPOINT_RE, JobLayout
from ftbench.core.workspace import Workspace

SELECTORS = ("last", "best")  # besides checkpoint-N


def job_kind(status: dict[str, Any]) -> str:
    """The artifact kind of a job folder: `run` for training, `export`, else `job`."""
    kind = status.get("kind", "train")
    return "run" if kind == "train" else "export" if kind == "export" else "job"


def job_status(job_dir: Path) -> dict[str, Any]:
    """status.json as a dict, {} when missing or unreadable (lookups never fail on one broken folder)."""
    try:
        data = json.loads(JobLayout(job_dir).status.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def split_selector(ref: str) -> tuple[str, str | None]:
    """`RUN@checkpoint-12` -> (`RUN`, `checkpoint-12`); a reference without a known selector is kept whole."""
    base, at, sel = ref.rpartition("@")
    if at and base and (sel in SELECTORS or CHECKPOINT_RE.fullmatch(sel)):
        return base, sel
    return ref, None


def job_dirs(ws: Workspace) -> list[Path]:
    """Every job folder in the workspace (runs/, exports/, jobs/)."""
    out = []
    for parent in ws.job_parents():
        if parent.is_dir():
            out.extend(child for child in parent.iterdir() if JobLayout(child).is_job())
    return out


def runs_newest_first(ws: Workspace) -> list[Path]:
    """Training runs by creation time, newest first (the folder name breaks ties: ids start with a time stamp)."""
    runs = [d for d in job_dirs(ws) if job_kind(job_status(d)) == "run"]
    return sorted(runs, key=lambda d: (job_status(d).get("created_at") or 0, d.name), reverse=True)


def match_job_ids(ws: Workspace, ref: str) -> list[Path]:
    """Job folders `ref` names as an id: `last`/`last~N`, the exact id, else every id it prefixes."""
    if ref == "last" or ref.startswith("last~"):
        back = ref.removeprefix("last~") if ref != "last" else "0"
        if not back.isdigit():
            raise FtbenchError(
                f"'{ref}' is not a run handle.", "Write `last` for the newest run, `last~1` for the one before."
            )
        runs = runs_newest_first(ws)
        if int(back) >= len(runs):
            have = f"only {len(runs)} run{'s' if len(runs) != 1 else ''}" if runs else "no runs"
            raise FtbenchError(
                f"'{ref}' needs {int(back) + 1} runs, but {ws.root} has {have}.", "List runs with `ftbench runs`."
            )
        return [runs[int(back)]]
    if not ref or "/" in ref or ref.startswith("."):
        return []
    dirs = job_dirs(ws)
    exact = [d for d in dirs if d.name == ref]
    return exact or [d for d in dirs if d.name.startswith(ref)]


def unique_prefixes(ids: Iterable[str], minimum: int = 8) -> dict[str, str]:
    """The shortest prefix of each id that no other id starts with (at least `minimum` characters)."""
    ids = sorted(set(ids))
    out = {}
    for i, job_id in enumerate(ids):
        neighbours = [ids[j] for j in (i - 1, i + 1) if 0 <= j < len(ids)]
        common = max((_common_prefix(job_id, other) for other in neighbours), default=0)
        out[job_id] = job_id[: min(len(job_id), max(minimum, common + 1))]
    return out


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def candidates(ws: Workspace, prefix: str) -> list[str]:
    """References that complete `prefix` (for tab completion): handles, job ids, RUN@selectors, checkpoint names."""
    if "@" in prefix:
        base, _, sel = prefix.rpartition("@")
        try:
            dirs = match_job_ids(ws, base)
        except FtbenchError:
            return []
        if len(dirs) != 1:
            return []
        names = [*SELECTORS, *(c.name for c in JobLayout(dirs[0]).checkpoints() if c.complete)]
        return [f"{base}@{n}" for n in names if n.startswith(sel)]
    handles = ["last", "last~1"] if runs_newest_first(ws) else []
    ids = sorted(d.name for d in job_dirs(ws))
    return [h for h in handles if h.startswith(prefix) and h != prefix] + [i for i in ids if i.startswith(prefix)]
