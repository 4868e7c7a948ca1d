"""`ftbench eval`: score base models, adapters, merged models and GGUFs on the same prompts, as a detached job.

    ftbench eval MODEL --adapter RUN [--also MERGED_OR_GGUF ...] [--data FILE] [--label-pattern REGEX] --wait
    ftbench eval CLS_RUN [--also CLS_RUN ...] [--data FILE] --wait     (classification, NER or QA runs)
    ftbench eval --resume ID

Variants are named exactly as in `ftbench chat` (chat/variants.py). Everything that can be wrong with the
input (no references, a bad regex, tokenizers that differ, a GGUF without a chat template) is refused with
one sentence before the job starts; the job itself only generates and scores.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from ftbench.cli import print_json, subparser
from ftbench.commands.train import add_trust_remote_code
from ftbench.core.errors import FtbenchError


def register(sub: Any) -> None:
    p = subparser(
        sub, "eval", "score models, adapters, merged models and GGUFs on prompts with references (a background job)"
    )
    p.add_argument(
        "model",
        nargs="?",
        metavar="MODEL",
        help="base HF model folder, name, run id or .gguf (as in `ftbench chat`), or a classification/NER/QA run",
    )
    p.add_argument(
        "--adapter", "-a", action="append", default=[], metavar="RUN_OR_DIR", help="an adapter on MODEL (repeatable)"
    )
    p.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="MODEL",
        help="another model: a merged folder or a .gguf, or another classification/NER/QA run (repeatable)",
    )
    p.add_argument("--no-base", action="store_true", help="do not score MODEL itself, only its adapters")
    p.add_argument(
        "--data",
        "-d",
        metavar="FILE",
        help="prompts with references (JSONL), an SFT dataset, or a classification/NER/QA file (default: the run's eval rows)",
    )
    p.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N prompts")
    p.add_argument("--max-tokens", type=int, default=64, help="tokens to generate per answer (default 64)")
    p.add_argument("--stop", action="append", default=[], metavar="TEXT", help="cut answers at this text (repeatable)")
    p.add_argument("--temperature", type=float, default=0.0, help="0 (default) is greedy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-chat-template", action="store_true", help="feed the raw prompt text, not the chat template")
    p.add_argument(
        "--label-pattern", metavar="REGEX", help=r"score label accuracy with this rule, e.g. 'Sentiment: (\w+)'"
    )
    p.add_argument(
        "--metrics",
        default=None,
        help="comma-separated subset of: exact_match,token_f1,rouge1,rouge2,rougeL,bleu,chrf,label_accuracy",
    )
    p.add_argument(
        "--no-reference", action="store_true", help="allow prompts without references (answers only, no scores)"
    )
    p.add_argument("--no-perplexity", action="store_true", help="skip the reference perplexity pass")
    p.add_argument("--allow-tokenizer-mismatch", action="store_true", help="score variants whose tokenizers differ")
    p.add_argument("--batch-size", type=int, default=8, help="prompts per generate call for HF variants (default 8)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when available)")
    add_trust_remote_code(p)
    p.add_argument("--resume", metavar="ID", help="continue a stopped or failed eval; cached answers are kept")
    p.add_argument("--wait", action="store_true", help="wait for the job and print the table")
    p.add_argument("--json", action="store_true", help="print JSON (with --wait: metrics.json)")
    p.set_defaults(func=cmd_eval)


def _run_dir_of(spec_path: str) -> str | None:
    """The run folder an adapter came from, whose held-out rows are the default eval set."""
    parent = Path(spec_path).parent
    return str(parent) if (parent / "job.json").is_file() and Path(spec_path).name == "adapter" else None


def build_params(args: argparse.Namespace, ws: Any) -> tuple[dict[str, Any], str]:
    """Resolve and check everything before a job exists; returns the job's params and a name for it."""
    from ftbench.chat.variants import build_variants
    from ftbench.evaluate.checks import check_gguf_templates, check_tokenizers
    from ftbench.evaluate.encoder_inputs import encoder_params
    from ftbench.evaluate.evalset import check_references, resolve_items
    from ftbench.evaluate.metrics import GENERATION_METRICS

    if not args.model:
        raise FtbenchError(
            "ftbench eval needs MODEL (or --resume ID).", "e.g. ftbench eval models/smollm2-135m-instruct --adapter RUN"
        )
    data = None
    if args.data:  # as given, else relative to the workspace (where `ftbench datasets` lists it)
        given = Path(args.data).expanduser()
        data = str((given if given.exists() or given.is_absolute() else ws.root / given).resolve())
    encoder = encoder_params(args, ws, data)
    if encoder is not None:  # classification / NER / QA runs: scored by their task heads (evaluate/encoder_job.py)
        return encoder
    specs = build_variants(ws, args.model, args.adapter, include_base=not args.no_base, extra_models=args.also)
    run_dir = next((d for d in (_run_dir_of(s.path) for s in specs if s.kind == "adapter") if d), None)
    items = resolve_items(data, run_dir, args.limit)
    label = data or f"{Path(run_dir).name} eval rows"  # resolve_items refused the case with neither
    check_references(items, label, allow_missing=args.no_reference)
    if args.label_pattern:
        try:
            re.compile(args.label_pattern)
        except re.error as exc:
            raise FtbenchError(
                f"--label-pattern {args.label_pattern!r} is not a valid regular expression: {exc}.",
                r"Use a pattern with one group around the label, e.g. 'Sentiment: (\w+)'.",
            ) from exc
    metrics = [m.strip() for m in args.metrics.split(",")] if args.metrics else list(GENERATION_METRICS)
    unknown = [m for m in metrics if m not in GENERATION_METRICS]
    if unknown:
        raise FtbenchError(
            f"--metrics has unknown metric '{unknown[0]}'.", f"Choose from {', '.join(GENERATION_METRICS)}."
        )
    if args.max_tokens < 1 or args.batch_size < 1:
        raise FtbenchError("--max-tokens and --batch-size must be at least 1.", "e.g. --max-tokens 64 --batch-size 8")
    if not args.allow_tokenizer_mismatch:
        check_tokenizers(specs)
    if not args.no_chat_template:
        check_gguf_templates(specs)
    params = {
        "data": data,
        "run": run_dir if not data else None,
        "limit": args.limit,
        "data_label": label,
        "variants": [s.to_dict() for s in specs],
        "gen": {
            "max_new_tokens": args.max_tokens,
            "stop": list(args.stop),
            "seed": args.seed,
            "temperature": args.temperature,
            "chat_template": not args.no_chat_template,
        },
        "batch_size": args.batch_size,
        "perplexity": not args.no_perplexity,
        "metrics": metrics,
        "label_pattern": args.label_pattern,
        "device": args.device,
    }
    return params, f"{Path(label).stem}-{len(specs)}-variants"


def cmd_eval(args: argparse.Namespace, ws: Any) -> int:
    from ftbench.core.jobs import find_job, restart_job, start_job, wait_job
    from ftbench.core.remote_code import remote_code_env

    if args.resume:
        job = find_job(ws, args.resume)
        if job.status.get("kind") != "eval":
            raise FtbenchError(
                f"Job {job.id} is a {job.status.get('kind')} job, not an eval.", "Pass the id of an eval job."
            )
        job = restart_job(job, env=remote_code_env(args.trust_remote_code))
    else:
        from ftbench.evaluate.encoder_inputs import TARGET as ENCODER_TARGET

        params, name = build_params(args, ws)
        job = start_job(
            ws,
            "eval",
            name=name,
            params=params,
            meta={"variants": [v["name"] for v in params["variants"]], "data": params["data_label"]},
            target=ENCODER_TARGET if "task" in params else None,
            env=remote_code_env(args.trust_remote_code),
        )
    if not args.wait:
        if args.json:
            print_json({"id": job.id, "dir": str(job.dir), "state": job.state})
        else:
            print(
                f"Started eval {job.id}; follow it with `ftbench logs {job.id}`, stop it with `ftbench stop {job.id}`."
            )
        return 0
    job = wait_job(job)
    if job.state != "succeeded":
        err = job.status.get("error") or {}
        print(f"error: eval {job.id} {job.state}: {err.get('message', 'see the log')}", file=sys.stderr)
        if err.get("hint"):
            print(f"hint: {err['hint']}", file=sys.stderr)
        return 1
    from ftbench.evaluate.report import METRICS_FILE, REPORT_FILE, metrics_table

    summary = json.loads((job.dir / METRICS_FILE).read_text(encoding="utf-8"))
    if args.json:
        print_json(summary)
        return 0
    headers, rows, marks = metrics_table(summary)
    widths = [max(len(h), *(len(r[i]) + 1 for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    for row, mark in zip(rows, marks, strict=True):
        print("  ".join((c + ("*" if m else "")).ljust(w) for c, m, w in zip(row, mark, widths, strict=True)))
    unit = "rows" if summary.get("task") else "prompts"
    print(f"* best of its column. {summary['examples']} {unit}; report: {job.dir / REPORT_FILE}")
    return 0
