"""The eval job target (`kind="eval"`): generate for every variant x prompt, score, write the report.

Every answer is appended to `cache/<variant>.jsonl` as soon as its batch is done, so a stopped or killed eval
resumed with `ftbench resume ID` (a new attempt in the same folder) generates only what is missing. Variants
are run one family at a time: every HF model and adapter on a base share one loaded copy of it (adapters are
switched per batch); each GGUF is loaded alone, after the HF models are freed. Progress events carry
done/total and an ETA from this attempt's own speed.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ftbench.chat.protocol import VariantSpec
from ftbench.core.atomic import atomic_write_json, atomic_write_text
from ftbench.core.remote_code import job_trusts_remote_code
from ftbench.evaluate import report
from ftbench.evaluate.evalset import EvalItem, resolve_items
from ftbench.evaluate.metrics import GENERATION_METRICS, ScoreOptions, aggregate, score_example, tokenization_for

CACHE_DIR = "cache"
ITEMS_FILE = "items.jsonl"


def cache_path(job_dir: Path, index: int, name: str) -> Path:
    return job_dir / CACHE_DIR / f"{index:02d}-{re.sub(r'[^A-Za-z0-9._-]', '_', name)}.jsonl"


def read_cache(path: Path) -> dict[str, dict[str, Any]]:
    """Answers already generated (a torn last line from a kill is skipped and regenerated)."""
    done: dict[str, dict[str, Any]] = {}
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                done[row["id"]] = row
    except FileNotFoundError:
        pass
    return done


class CacheWriter:
    """Appends one JSON line per answer with a single write, flushed to disk before the next batch starts."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torn = path.is_file() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if torn:  # a kill mid-write left half a line: end it, so the next answer starts a line of its own
            os.write(self._fd, b"\n")

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        os.write(self._fd, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8"))
        os.fsync(self._fd)

    def close(self) -> None:
        os.close(self._fd)


class Progress:
    """done/total over all variants, with an ETA from the answers generated in this attempt."""

    def __init__(self, ctx: Any, total: int, done: int) -> None:
        self.ctx, self.total, self.done = ctx, total, done
        self.start, self.fresh = time.monotonic(), 0

    def advance(self, n: int, variant: str) -> None:
        self.done += n
        self.fresh += n
        rate = self.fresh / max(time.monotonic() - self.start, 1e-6)
        eta = (self.total - self.done) / rate if rate > 0 else None
        self.ctx.progress(
            "generate",
            self.done,
            self.total,
            variant=variant,
            examples_per_s=round(rate, 3),
            eta_s=round(eta, 1) if eta is not None else None,
        )


def load_items(job_dir: Path) -> list[EvalItem]:
    rows = [
        json.loads(line) for line in (job_dir / ITEMS_FILE).read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    return [EvalItem(r["id"], r["messages"], r["references"]) for r in rows]


def batches(items: Sequence[EvalItem], size: int) -> list[list[EvalItem]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def run(ctx: Any) -> None:
    """params: data or run (the eval set), limit, variants (VariantSpec dicts), gen (GenConfig fields), batch_size,
    perplexity, metrics, label_pattern, device."""
    p = ctx.params
    ctx.cooperative_stop = True
    if not (ctx.job_dir / ITEMS_FILE).is_file():  # first attempt: freeze the prompts so a resume scores the same ones
        write_items(ctx.job_dir, resolve_items(p.get("data"), p.get("run"), p.get("limit")))
    items = load_items(ctx.job_dir)
    summary = evaluate(ctx, ctx.job_dir, items, [VariantSpec(**v) for v in p["variants"]], p)
    ctx.emit("evaluation", variants={v["name"]: v["metrics"] for v in summary["variants"]})
    ctx.set_result(
        examples=len(items),
        variants=[v["name"] for v in summary["variants"]],
        best=summary["best"],
        metrics={v["name"]: {k: x for k, x in v["metrics"].items() if k != "length"} for v in summary["variants"]},
        files=[report.METRICS_FILE, report.PREDICTIONS_FILE, report.REPORT_FILE],
    )
    ctx.log(
        f"Scored {len(summary['variants'])} variant(s) on {len(items)} prompts; report in {ctx.job_dir / report.REPORT_FILE}."
    )


def evaluate(
    ctx: Any, out_dir: Path, items: Sequence[EvalItem], specs: Sequence[VariantSpec], p: dict[str, Any]
) -> dict[str, Any]:
    """Generate what `out_dir/cache` lacks, then score and write the outputs; `ctx` gives progress, log and stop.

    Shared by the eval job and export's quantization check (export/job.py), which evaluates into a sub-folder.
    """
    from ftbench.core.errors import JobStopped
    from ftbench.evaluate.hf_runner import GenConfig

    config = GenConfig(**{**p.get("gen", {}), "stop": tuple(p.get("gen", {}).get("stop", ()))})
    want_ppl = bool(p.get("perplexity", True)) and any(i.references for i in items)
    caches = [read_cache(cache_path(out_dir, i, s.name)) for i, s in enumerate(specs)]
    progress = Progress(ctx, total=len(specs) * len(items), done=sum(len(c) for c in caches))
    if progress.done:
        ctx.log(f"Resuming: {progress.done} of {progress.total} answers are cached and kept.")
    hf = [i for i, s in enumerate(specs) if s.kind in ("hf", "adapter")]
    ggufs = [i for i, s in enumerate(specs) if s.kind == "gguf"]
    batch_size = int(p.get("batch_size") or 8)
    if hf and any(len(caches[i]) < len(items) for i in hf):
        from ftbench.evaluate.hf_runner import HFRunner

        ctx.log(
            f"Loading {len(hf)} HF variant(s) ({len({specs[i].base or specs[i].path for i in hf})} base model(s) in memory)."
        )
        trust = job_trusts_remote_code()
        runner = HFRunner([specs[i] for i in hf], config, device=p.get("device"), trust_remote_code=trust)
        for i in hf:
            _run_variant(ctx, out_dir, items, specs[i], i, caches[i], progress, batch_size, want_ppl, hf_runner=runner)
        del runner
    for i in ggufs:
        if len(caches[i]) >= len(items):
            continue
        from ftbench.evaluate.gguf_runner import GGUFRunner

        ctx.log(f"Loading {specs[i].name} in llama.cpp.")
        gguf = GGUFRunner(specs[i], config)
        try:
            _run_variant(ctx, out_dir, items, specs[i], i, caches[i], progress, 1, want_ppl, gguf_runner=gguf)
        finally:
            gguf.close()
    if ctx.stop_requested:
        raise JobStopped()
    return write_outputs(out_dir, items, specs, p, ctx.id)


def _run_variant(
    ctx: Any,
    out_dir: Path,
    items: Sequence[EvalItem],
    spec: VariantSpec,
    index: int,
    cache: dict[str, Any],
    progress: Progress,
    batch_size: int,
    want_ppl: bool,
    hf_runner: Any = None,
    gguf_runner: Any = None,
) -> None:
    from ftbench.core.errors import JobStopped

    # Prompts of similar length batch together, so left padding wastes little compute.
    todo = sorted(
        (item for item in items if item.id not in cache), key=lambda it: sum(len(m["content"]) for m in it.messages)
    )
    if not todo:
        return
    writer = CacheWriter(cache_path(out_dir, index, spec.name))
    try:
        for batch in batches(todo, batch_size):
            if ctx.stop_requested:
                raise JobStopped()
            if hf_runner is not None:
                answers = hf_runner.generate(spec.name, [item.messages for item in batch])
                scored = [(item.messages, item.references[0]) for item in batch if item.references]
                nll = iter(hf_runner.reference_nll(spec.name, scored) if want_ppl and scored else [])
            else:
                answers = [gguf_runner.generate(item.messages) for item in batch]
                nll = iter(
                    [gguf_runner.reference_nll(i.messages, i.references[0]) for i in batch if i.references]
                    if want_ppl
                    else []
                )
            rows = []
            for item, answer in zip(batch, answers, strict=True):
                row = {"id": item.id, **answer}
                if want_ppl and item.references:
                    row["nll"], row["ref_tokens"] = next(nll)
                rows.append(row)
            writer.write(rows)
            cache.update({r["id"]: r for r in rows})
            progress.advance(len(rows), spec.name)
    finally:
        writer.close()


def write_outputs(
    job_dir: Path, items: Sequence[EvalItem], specs: Sequence[VariantSpec], params: dict[str, Any], job_id: str
) -> dict[str, Any]:
    """Score the cached answers and write metrics.json, predictions.jsonl and report.md (each atomically)."""
    options = ScoreOptions(
        metrics=tuple(params.get("metrics") or GENERATION_METRICS), label_pattern=params.get("label_pattern")
    )
    per_variant = []
    for i, spec in enumerate(specs):
        cache = read_cache(cache_path(job_dir, i, spec.name))
        rows = []
        for item in items:
            answer = cache[item.id]
            rows.append(
                {
                    **answer,
                    "references": item.references,
                    "scores": score_example(answer["prediction"], item.references, options),
                }
            )
        per_variant.append(rows)
    variants = [
        {
            "name": s.name,
            "kind": s.kind,
            "path": s.path,
            "base": s.base or None,
            "lora": s.lora or None,
            "metrics": aggregate(rows, options),
        }
        for s, rows in zip(specs, per_variant, strict=True)
    ]
    predictions = []
    for n, item in enumerate(items):
        answers = {
            s.name: {
                k: per_variant[i][n].get(k)
                for k in ("prediction", "scores", "nll", "ref_tokens", "gen_tokens", "finish")
            }
            for i, s in enumerate(specs)
        }
        predictions.append(
            {
                "id": item.id,
                "prompt": item.messages[-1]["content"],
                "messages": item.messages,
                "references": item.references,
                "answers": answers,
            }
        )
    primary = report.primary_metric(predictions)
    for row in predictions:
        row["disagreement"] = report.disagreement(row["answers"], primary)
    summary = {
        "id": job_id,
        "data": params.get("data_label"),
        "examples": len(items),
        "primary": primary,
        "settings": {
            **params.get("gen", {}),
            "batch_size": params.get("batch_size"),
            "label_pattern": params.get("label_pattern"),
        },
        "tokenization": tokenization_for([r for item in items for r in item.references]),
        "variants": variants,
    }
    summary["best"] = report.best_per_metric(variants)
    atomic_write_text(
        job_dir / report.PREDICTIONS_FILE, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in predictions)
    )
    atomic_write_json(job_dir / report.METRICS_FILE, summary)
    atomic_write_text(job_dir / report.REPORT_FILE, report.render_markdown(summary, predictions))
    return summary


def write_items(job_dir: Path, items: Sequence[EvalItem]) -> None:
    atomic_write_text(job_dir / ITEMS_FILE, "".join(json.dumps(i.to_dict(), ensure_ascii=False) + "\n" for i in items))
