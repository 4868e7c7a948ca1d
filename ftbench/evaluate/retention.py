"""Did quantization keep the fine-tune? Score the merged model and each quantized GGUF of an export on one eval set.

Called by the export job after the pipeline wrote its files (export/job.py), with the merged folder kept for the
purpose. The eval runs into `<export>/eval/` with the eval job's own machinery (same generation, cache and
report), and the retention table compares each quant with the merged model: the share of the merged model's
primary metric it keeps, and how many answers (or parsed labels) are identical.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ftbench.chat.protocol import VariantSpec
from ftbench.core.errors import FtbenchError
from ftbench.evaluate.evalset import check_references, load_eval_file
from ftbench.evaluate.report import TITLES, read_predictions

EVAL_DIR = "eval"
REFERENCE = "merged"


def retention_rows(summary: dict[str, Any], predictions: list[dict[str, Any]], labels: bool) -> list[dict[str, Any]]:
    """One row per quant: kept % of the reference's primary metric (or of ROUGE-L), identical answers or labels."""
    by_name = {v["name"]: v["metrics"] for v in summary["variants"]}
    ref = by_name[REFERENCE]
    metric = summary.get("primary") if summary.get("primary") in ref else "rougeL"
    rows = []
    for name, m in by_name.items():
        if name == REFERENCE:
            continue
        kept = 100.0 * m[metric] / ref[metric] if ref.get(metric) else None
        key = "label" if labels else "prediction"
        same = sum(
            (p["answers"][name]["scores"].get(key) if labels else p["answers"][name]["prediction"])
            == (p["answers"][REFERENCE]["scores"].get(key) if labels else p["answers"][REFERENCE]["prediction"])
            for p in predictions
        )
        rows.append(
            {
                "type": name,
                "metric": metric,
                "value": m[metric],
                "reference": ref[metric],
                "kept_pct": kept,
                "identical": same,
                "total": len(predictions),
                "unit": "labels" if labels else "answers",
                "perplexity": m.get("perplexity"),
                "reference_perplexity": ref.get("perplexity"),
            }
        )
        rows[-1]["sentence"] = sentence(rows[-1])
    return rows


def sentence(row: dict[str, Any]) -> str:
    """'Q4_K_M keeps 97.2 % of the merged model's ROUGE-L, 31/32 labels identical'."""
    kept = "n/a" if row["kept_pct"] is None else f"{row['kept_pct']:.1f} %"
    return (
        f"{row['type']} keeps {kept} of the merged model's {TITLES.get(row['metric'], row['metric']).removesuffix(' %')}, "
        f"{row['identical']}/{row['total']} {row['unit']} identical"
    )


def check_eval_file(path: str, label_pattern: str | None) -> None:
    """Before an export job starts: the eval file must load and carry references, the label rule must compile."""
    import re

    check_references(load_eval_file(Path(path)), path, allow_missing=False)
    if label_pattern:
        try:
            re.compile(label_pattern)
        except re.error as exc:
            raise FtbenchError(
                f"--eval-label-pattern {label_pattern!r} is not a valid regular expression: {exc}.",
                r"Use one group around the label, e.g. 'Sentiment: (\w+)'.",
            ) from exc


def score_export(
    ctx: Any,
    source: Any,
    result: dict[str, Any],
    eval_file: str,
    label_pattern: str | None,
    keep_merged: bool,
    max_new_tokens: int = 64,
) -> list[dict[str, Any]]:
    """Evaluate the merged model and every model GGUF in `result["files"]`; returns the retention rows."""
    from ftbench.evaluate.job import evaluate

    job_dir = Path(ctx.job_dir)
    merged = job_dir / "merged" if source.adapter is not None else Path(source.model_dir)
    specs = [VariantSpec(REFERENCE, "hf", str(merged))] + [
        VariantSpec(f["type"], "gguf", f["path"]) for f in result.get("files", []) if f.get("role") == "model"
    ]
    items = load_eval_file(Path(eval_file))
    params = {
        "gen": {"max_new_tokens": max_new_tokens},
        "batch_size": 8,
        "label_pattern": label_pattern,
        "data_label": eval_file,
    }
    ctx.log(f"Scoring the merged model and {len(specs) - 1} GGUF(s) on {len(items)} prompts from {eval_file}.")
    out_dir = job_dir / EVAL_DIR
    out_dir.mkdir(exist_ok=True)
    summary = evaluate(ctx, out_dir, items, specs, params)
    rows = retention_rows(summary, read_predictions(out_dir), labels=bool(label_pattern))
    for row in rows:
        ctx.log(row["sentence"])
    if not keep_merged:  # the pipeline kept its intermediates only for this step
        if source.adapter is not None:
            shutil.rmtree(merged, ignore_errors=True)
        listed = {Path(f["path"]).name for f in result.get("files", [])}
        for extra in job_dir.glob("*.gguf"):
            if extra.name not in listed:
                extra.unlink()
    return rows
