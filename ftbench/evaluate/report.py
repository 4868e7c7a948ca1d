"""What an eval leaves in its job folder, and the one table every front end shows from it.

metrics.json (variants x metrics, which variant is best per metric), predictions.jsonl (per prompt: the
references and each variant's answer with its scores, plus a disagreement score to sort by) and report.md.
The CLI, the report and the TUI's Evals screen all build their table with `metrics_table`, so they show the
same numbers. Standard library only: the TUI imports this module.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

METRICS_FILE, PREDICTIONS_FILE, REPORT_FILE = "metrics.json", "predictions.jsonl", "report.md"
# Column order of the table; only metrics some variant has are shown. The last six are the task metrics of
# encoder runs (classification, NER, QA), whose metrics.json names its own order in `columns`.
COLUMNS = (
    "label_accuracy",
    "exact_match",
    "token_f1",
    "rouge1",
    "rouge2",
    "rougeL",
    "bleu",
    "chrf",
    "perplexity",
    "accuracy",
    "f1_macro",
    "f1_micro",
    "precision",
    "recall",
    "f1",
)
TITLES = {
    "label_accuracy": "label acc %",
    "exact_match": "EM %",
    "token_f1": "F1 %",
    "rouge1": "ROUGE-1",
    "rouge2": "ROUGE-2",
    "rougeL": "ROUGE-L",
    "bleu": "BLEU",
    "chrf": "chrF",
    "perplexity": "ppl",
    "accuracy": "accuracy",
    "f1_macro": "F1 macro",
    "f1_micro": "F1 micro",
    "precision": "precision",
    "recall": "recall",
    "f1": "F1",
}
LOWER_IS_BETTER = frozenset({"perplexity"})
# The per-example score that disagreement is measured on, most telling first.
PRIMARY_ORDER = ("label_accuracy", "rougeL", "chrf", "token_f1", "accuracy", "f1")


def best_per_metric(variants: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """For each metric, the variant(s) with the best value (ties share the mark)."""
    best: dict[str, list[str]] = {}
    for key in COLUMNS:
        values = [(v["name"], v["metrics"][key]) for v in variants if isinstance(v["metrics"].get(key), (int, float))]
        if not values:
            continue
        pick = min if key in LOWER_IS_BETTER else max
        top = pick(value for _, value in values)
        best[key] = [name for name, value in values if abs(value - top) <= 1e-9]
    return best


def metrics_table(summary: dict[str, Any]) -> tuple[list[str], list[list[str]], list[list[bool]]]:
    """(headers, rows of formatted cells, which cells are the best of their column) from metrics.json.

    An encoder eval's metrics.json names its columns (its task's metrics, in training's order) and the
    decimals of each (4 for the 0..1 fractions training reports); it has no answer lengths."""
    variants = summary.get("variants", [])
    keys = [k for k in summary.get("columns") or COLUMNS if any(k in v["metrics"] for v in variants)]
    decimals = summary.get("decimals") or {}
    lengths = any(v["metrics"].get("length") for v in variants)
    best = summary.get("best") or best_per_metric(variants)
    headers = ["variant", *(TITLES.get(k, k) for k in keys), *(["answer len"] if lengths else [])]
    rows, marks = [], []
    for v in variants:
        m = v["metrics"]
        cells = [v["name"]] + [
            f"{m[k]:.{decimals.get(k, 2)}f}" if isinstance(m.get(k), (int, float)) else "-" for k in keys
        ]
        if lengths:
            cells.append(f"{m['length']['mean']:.1f}" if m.get("length") else "-")
        rows.append(cells)
        marks.append([False] + [v["name"] in best.get(k, []) for k in keys] + ([False] if lengths else []))
    return headers, rows, marks


def primary_metric(rows: Sequence[dict[str, Any]]) -> str | None:
    for key in PRIMARY_ORDER:
        if rows and all(key in a.get("scores", {}) for r in rows for a in r["answers"].values()):
            return key
    return None


def disagreement(answers: dict[str, dict[str, Any]], primary: str | None) -> float:
    """How much the variants disagree on one prompt: the spread of the primary score, then distinct answers."""
    spread = 0.0
    if primary:
        values = [a["scores"][primary] for a in answers.values()]
        spread = max(values) - min(values)
    distinct = len({a["prediction"].strip().lower() for a in answers.values()})
    return round(spread + (distinct - 1) / (10 * max(len(answers), 1)), 6)


def render_markdown(summary: dict[str, Any], rows: Sequence[dict[str, Any]], top: int = 10) -> str:
    headers, cells, marks = metrics_table(summary)
    lines = [f"# Eval {summary.get('id', '')}".rstrip(), ""]
    lines.append(
        f"{summary.get('examples', 0)} {'rows' if summary.get('task') else 'prompts'} from {summary.get('data', '?')}; settings: "
        + ", ".join(f"{k}={v}" for k, v in (summary.get("settings") or {}).items())
        + "."
    )
    if summary.get("tokenization") == "char":
        lines.append("Text in an unspaced script: BLEU, ROUGE and token F1 are computed on characters.")
    lines += ["", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row, mark in zip(cells, marks, strict=True):
        lines.append("| " + " | ".join(f"**{c}**" if m else c for c, m in zip(row, mark, strict=True)) + " |")
    lines += ["", "Bold: best of its column (lowest perplexity, highest of the rest)."]
    worst = sorted(rows, key=lambda r: -r.get("disagreement", 0.0))[:top]
    if worst and len(summary.get("variants", [])) > 1:
        lines += ["", f"## Where the variants disagree most (top {len(worst)})", ""]
        for r in worst:
            lines.append(f"- **{r['id']}** prompt: {_short(r['prompt'])}")
            lines.append(f"  reference: {_short(r['references'][0]) if r['references'] else '-'}")
            for name, a in r["answers"].items():
                lines.append(f"  - {name}: {_short(a['prediction'])}")
    return "\n".join(lines) + "\n"


def _short(text: str, width: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def read_summary(job_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((job_dir / METRICS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_predictions(job_dir: Path) -> list[dict[str, Any]]:
    rows = []
    try:
        with open(job_dir / PREDICTIONS_FILE, encoding="utf-8") as handle:
            for line in handle:
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    continue
    except OSError:
        return []
    return rows
