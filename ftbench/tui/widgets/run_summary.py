"""Run summaries for the Runs screen: one row per training run, filters, sort keys and recipe diffs.

Per run the scanner keeps an EventTail and a RunView, so each rescan reads only the bytes appended since
the last one; the recipe frozen in the run folder is parsed once per mtime. Pure logic, no widgets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ftbench.core.events import EventTail, downsample
from ftbench.core.humanize import human_duration
from ftbench.core.layout import JobLayout
from ftbench.core.workspace import Workspace
from ftbench.tui.widgets.job_list import JobScanner
from ftbench.tui.widgets.run_data import RunView

SORT_KEYS = ("created", "name", "best_eval", "duration", "state")


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for key, value in obj.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): obj}


def recipe_diff(recipes: list[dict[str, Any]]) -> list[tuple[str, list[Any]]]:
    """Keys whose values differ between recipes (missing = None), sorted; what makes two runs different."""
    flat = [_flatten(r or {}) for r in recipes]
    keys = sorted(set().union(*flat)) if flat else []
    return [(k, [f.get(k) for f in flat]) for k in keys if len({repr(f.get(k)) for f in flat}) > 1]


@dataclass
class _RunCache:
    tail: EventTail
    view: RunView = field(default_factory=RunView)
    recipe_mtime: float | None = None
    recipe: dict[str, Any] = field(default_factory=dict)


def _short(value: Any) -> str:
    return Path(str(value)).name if value else "-"


@dataclass
class RunScanner:
    ws: Workspace
    clock: Callable[[], float]
    _jobs: JobScanner = field(init=False)
    _runs: dict[str, _RunCache] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._jobs = JobScanner(self.ws, self.clock)

    def scan(self) -> list[dict[str, Any]]:
        rows = []
        for job in self._jobs.scan():
            if job["kind"] != "train":
                continue
            job_dir = Path(job["dir"])
            cache = self._runs.setdefault(job["id"], _RunCache(EventTail(JobLayout(job_dir).events)))
            cache.view.add_all(cache.tail.read_new())
            self._load_recipe(job_dir, cache)
            rows.append(self._row(job, cache))
        return rows

    def _load_recipe(self, job_dir: Path, cache: _RunCache) -> None:
        path = JobLayout(job_dir).recipe
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return
        if mtime != cache.recipe_mtime:
            cache.recipe_mtime = mtime
            try:
                loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError):
                loaded = None
            cache.recipe = loaded if isinstance(loaded, dict) else {}

    def _row(self, job: dict[str, Any], cache: _RunCache) -> dict[str, Any]:
        from ftbench.core.jobs import read_status

        status = read_status(Path(job["dir"]))
        recipe, meta, view = cache.recipe, status.get("meta") or {}, cache.view
        method = recipe.get("method")
        method_name = method.get("name", "lora") if isinstance(method, dict) else (method or meta.get("method"))
        model = recipe.get("model")
        model_path = model.get("path") if isinstance(model, dict) else model
        data = recipe.get("data")
        data_path = data.get("train") if isinstance(data, dict) else data
        best = view.best_eval()
        result = status.get("result") or {}
        if best is not None:
            best_text, best_value = f"{best[1]:.4f}", best[1]
        else:
            metric = next(
                ((k, v) for k, v in sorted(result.items()) if k.startswith("eval_") and isinstance(v, (int, float))),
                None,
            )
            best_text = f"{metric[0][5:]} {metric[1]:.4g}" if metric else "-"
            best_value = float(metric[1]) if metric else None
        started = status.get("started_at") or status.get("created_at")
        ended = status.get("ended_at") or (
            self.clock() if job["state"] in ("running", "starting", "stopping") else None
        )
        duration = ended - started if started and ended else None
        return {
            **job,
            "task": recipe.get("task") or meta.get("task") or "-",
            "method": method_name or meta.get("method") or "-",
            "model": _short(model_path or meta.get("model")),
            "dataset": _short(data_path or meta.get("dataset")),
            "best_eval": best_text,
            "best_value": best_value,
            "duration": human_duration(duration),
            "duration_s": duration or 0.0,
            "spark_points": [v for _, v in downsample(view.loss_ema, 60)],
            "loss_ema": downsample(view.loss_ema, 400),
            "eval_loss": downsample(view.eval_loss, 200),
            "gen": dict(view.gen_metrics),
            "recipe": recipe,
        }


def matches(row: dict[str, Any], query: str) -> bool:
    """Space-separated terms; `key:value` tests one field (state:running, task:sft), a bare word any text."""
    for term in query.lower().split():
        if ":" in term:
            key, _, value = term.partition(":")
            if value not in str(row.get(key, "")).lower():
                return False
        elif not any(
            term in str(row.get(k, "")).lower() for k in ("name", "id", "model", "dataset", "task", "method", "state")
        ):
            return False
    return True


def sort_rows(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    if key == "name":
        return sorted(rows, key=lambda r: r["name"])
    if key == "best_eval":  # lower eval loss first; runs without one last
        return sorted(rows, key=lambda r: (r["best_value"] is None, r["best_value"] or 0.0))
    if key == "duration":
        return sorted(rows, key=lambda r: r["duration_s"], reverse=True)
    if key == "state":
        return sorted(rows, key=lambda r: (r["state"], -r["created_at"]))
    return sorted(rows, key=lambda r: r["created_at"], reverse=True)
