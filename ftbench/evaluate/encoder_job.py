"""The eval job target for encoder runs (classification, NER, QA): predict every row with every run, score
with training's metrics, write the same metrics.json / predictions.jsonl / report.md as a generative eval.

Predictions come from `ftbench predict`'s code (train/predict.py) and the numbers from training's metric
functions (train/metrics.py), so an eval, `ftbench predict` on the same file and the run's own final eval
agree. As in a generative eval (evaluate/job.py, whose cache and progress this reuses), every prediction is
appended to `cache/<variant>.jsonl` as its batch finishes, so a stopped or killed eval resumed with
`ftbench eval --resume ID` predicts only what is missing. One model is in memory at a time.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ftbench.core.atomic import atomic_write_json, atomic_write_text
from ftbench.core.remote_code import job_trusts_remote_code
from ftbench.core.specs import TASK_SPECS
from ftbench.evaluate import report
from ftbench.evaluate.encoder_inputs import EncoderVariant, eval_rows
from ftbench.evaluate.evalset import item_id
from ftbench.evaluate.job import ITEMS_FILE, CacheWriter, Progress, batches, cache_path, read_cache
from ftbench.train.predict import QA_SEPARATOR

# Per-example scores: the task's headline numbers for a single row.
EXAMPLE_SCORES = {"classification": ("accuracy",), "ner": ("f1",), "qa": ("exact_match", "f1")}


def run(ctx: Any) -> None:
    """params: task, data (None: the first run's held-out rows), limit, data_label, variants
    (EncoderVariant dicts), batch_size, device."""
    p = ctx.params
    ctx.cooperative_stop = True
    variants = [EncoderVariant(**v) for v in p["variants"]]
    if not (ctx.job_dir / ITEMS_FILE).is_file():  # first attempt: freeze the rows so a resume scores the same ones
        rows = eval_rows(variants, p.get("data"), p.get("limit"))
        items = [
            {"id": item_id(i, [r.row]), "source": r.source, "number": r.number, "row": r.row}
            for i, r in enumerate(rows)
        ]
        atomic_write_text(ctx.job_dir / ITEMS_FILE, "".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items))
    items = [json.loads(line) for line in (ctx.job_dir / ITEMS_FILE).read_text(encoding="utf-8").splitlines() if line]
    predict_all(ctx, items, variants, int(p.get("batch_size") or 16), p.get("device"))
    summary = write_outputs(ctx.job_dir, items, variants, p, ctx.id)
    headline = {v["name"]: {k: v["metrics"][k] for k in summary["columns"]} for v in summary["variants"]}
    ctx.emit("evaluation", variants=headline)
    ctx.set_result(
        examples=len(items),
        task=p["task"],
        variants=[v["name"] for v in summary["variants"]],
        best=summary["best"],
        metrics=headline,
        files=[report.METRICS_FILE, report.PREDICTIONS_FILE, report.REPORT_FILE],
    )
    ctx.log(
        f"Scored {len(variants)} {p['task']} run(s) on {len(items)} rows; report in {ctx.job_dir / report.REPORT_FILE}."
    )


def predict_all(
    ctx: Any, items: Sequence[dict[str, Any]], variants: Sequence[EncoderVariant], batch_size: int, device: str | None
) -> None:
    """Predict what each variant's cache lacks, one loaded model at a time."""
    from ftbench.core.errors import JobStopped
    from ftbench.train.predict import finite, load_predictor, predict

    caches = [read_cache(cache_path(ctx.job_dir, i, v.name)) for i, v in enumerate(variants)]
    progress = Progress(ctx, total=len(variants) * len(items), done=sum(len(c) for c in caches))
    if progress.done:
        ctx.log(f"Resuming: {progress.done} of {progress.total} predictions are cached and kept.")
    for index, (variant, cache) in enumerate(zip(variants, caches, strict=True)):
        todo = [item for item in items if item["id"] not in cache]
        if not todo:
            continue
        ctx.log(f"Loading {variant.name} ({variant.task}).")
        predictor = load_predictor(variant.path, device=device, trust_remote_code=job_trusts_remote_code())
        writer = CacheWriter(cache_path(ctx.job_dir, index, variant.name))
        try:
            for batch in batches(todo, batch_size):
                if ctx.stop_requested:
                    raise JobStopped()
                results = predict(predictor, [item["row"] for item in batch], batch_size=len(batch))
                rows = [{"id": item["id"], "result": finite(r)} for item, r in zip(batch, results, strict=True)]
                writer.write(rows)
                cache.update({r["id"]: r for r in rows})
                progress.advance(len(rows), variant.name)
        finally:
            writer.close()
            del predictor
            gc.collect()
    if ctx.stop_requested:
        raise JobStopped()


# ---------------------------------------------------------------------------------------------------------
# scoring: training's metric functions on predict's results


def gold(task: str, row: dict[str, Any], labels: Sequence[str]) -> Any:
    """The row's answer in the shape predict returns: a label name (or names), tag names, answer texts."""
    if task == "classification":
        value = row["label"]
        return [_label_name(v, labels) for v in value] if isinstance(value, list) else _label_name(value, labels)
    if task == "ner":
        return [labels[t] if isinstance(t, int) else t for t in row["ner_tags"]]
    return list(row["answers"]["text"])


def _label_name(value: Any, labels: Sequence[str]) -> str:
    """A gold label as a name: integer labels are ids into the run's label list (as training encodes them)."""
    return labels[value] if isinstance(value, int) and not isinstance(value, bool) else str(value)


def predicted(task: str, result: dict[str, Any]) -> Any:
    return {"classification": result.get("label"), "ner": result.get("tags"), "qa": result.get("answer")}[task]


def task_metrics(task: str, info: dict[str, Any], golds: Sequence[Any], preds: Sequence[Any]) -> dict[str, Any]:
    """The metrics training reports for these rows (the same functions its compute_metrics calls)."""
    from ftbench.train import metrics

    if task == "classification":
        labels = list(info["labels"])
        if info.get("multi_label"):
            gold_matrix = [[int(name in row) for name in labels] for row in golds]
            pred_matrix = [[int(name in row) for name in labels] for row in preds]
            return metrics.multilabel_metrics(gold_matrix, pred_matrix, labels)
        return metrics.classification_metrics(
            [labels.index(g) for g in golds], [labels.index(p) for p in preds], labels
        )
    if task == "ner":
        return metrics.entity_metrics(list(golds), list(preds))
    keys = [str(i) for i in range(len(golds))]
    return metrics.squad_metrics(dict(zip(keys, preds, strict=True)), dict(zip(keys, golds, strict=True)))


def as_text(task: str, value: Any, row: dict[str, Any]) -> str:
    """A label, an entity list or an answer as one line for the report and the Evals screen."""
    if task == "classification":
        return ", ".join(value) if isinstance(value, list) else str(value)
    if task == "ner":
        from ftbench.train.metrics import get_entities

        words = row["tokens"]
        spans = [f"{type_}: {' '.join(words[a : b + 1])}" for type_, a, b in get_entities(value)]
        return "; ".join(spans) or "(no entities)"
    return str(value)


def prompt_of(task: str, row: dict[str, Any]) -> str:
    if task == "ner":
        return " ".join(map(str, row["tokens"]))
    if task == "qa":
        return f"{row['question']} {QA_SEPARATOR} {row['context']}"
    return str(row["text"])


def write_outputs(
    job_dir: Path, items: Sequence[dict[str, Any]], variants: Sequence[EncoderVariant], p: dict[str, Any], job_id: str
) -> dict[str, Any]:
    """Score the cached predictions and write metrics.json, predictions.jsonl and report.md (each atomically)."""
    task, info = p["task"], variants[0].info  # one task and one label set: checked before the job
    labels = info.get("labels") or []
    golds = [gold(task, item["row"], labels) for item in items]
    predictions: list[dict[str, Any]] = [
        {
            "id": item["id"],
            "prompt": prompt_of(task, item["row"]),
            "row": item["number"],
            "references": [as_text(task, g, item["row"])] if task != "qa" else g,
            "answers": {},
        }
        for item, g in zip(items, golds, strict=True)
    ]
    summary_variants = []
    for index, variant in enumerate(variants):
        cache = read_cache(cache_path(job_dir, index, variant.name))
        results = [cache[item["id"]]["result"] for item in items]
        preds = [predicted(task, r) for r in results]
        for out, item, g, pred, result in zip(predictions, items, golds, preds, results, strict=True):
            one = task_metrics(task, info, [g], [pred])
            out["answers"][variant.name] = {
                "prediction": as_text(task, pred, item["row"]),
                "scores": {k: one[k] for k in EXAMPLE_SCORES[task]},
                "result": result,
            }
        summary_variants.append(
            {
                "name": variant.name,
                "kind": "encoder",
                "task": task,
                "path": variant.path,
                "run": variant.run,
                "base": variant.info.get("base_model"),
                "lora": None,
                "metrics": {"examples": len(items), **task_metrics(task, info, golds, preds)},
            }
        )
    primary = report.primary_metric(predictions)
    for row in predictions:
        row["disagreement"] = report.disagreement(row["answers"], primary)
    columns = list(TASK_SPECS[task].metrics)
    summary = {
        "id": job_id,
        "data": p.get("data_label"),
        "examples": len(items),
        "task": task,
        "primary": primary,
        "columns": columns,
        "decimals": {k: 2 if task == "qa" else 4 for k in columns},
        "settings": {"task": task, "batch_size": p.get("batch_size")},
        "variants": summary_variants,
        "best": report.best_per_metric(summary_variants),
    }
    atomic_write_text(
        job_dir / report.PREDICTIONS_FILE, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in predictions)
    )
    atomic_write_json(job_dir / report.METRICS_FILE, summary)
    atomic_write_text(job_dir / report.REPORT_FILE, report.render_markdown(summary, predictions))
    return summary
