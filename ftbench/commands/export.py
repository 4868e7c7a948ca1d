"""`ftbench export`, `ftbench verify`, `ftbench import`: the headless face of GGUF export.

Exports run as detached jobs (they survive SSH drops); `--wait` follows one to the end and prints the
result card. `verify` and `import` run inline because they are short.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ftbench.cli import print_json, subparser
from ftbench.commands.train import add_slurm_options, slurm_options
from ftbench.core.errors import FtbenchError
from ftbench.core.export_card import render_card
from ftbench.core.safe_paths import inside, safe_name
from ftbench.core.workspace import Workspace


def register(sub: Any) -> None:
    p = subparser(
        sub, "export", "Export a run or model to GGUF (merge, convert, quantize, verify) as a background job."
    )
    p.add_argument("source", metavar="RUN_OR_MODEL", help="run id, run/adapter folder or HF model folder")
    p.add_argument(
        "--quant", "-q", default=None, help="comma-separated types, e.g. q4_k_m,q8_0 (default: workspace export_quants)"
    )
    p.add_argument(
        "--adapter-only", action="store_true", help="write a LoRA adapter GGUF to load on the base instead of merging"
    )
    p.add_argument(
        "--base",
        default=None,
        metavar="DIR",
        help="base model folder for an adapter (default: from adapter_config.json)",
    )
    p.add_argument("--keep", action="store_true", help="keep intermediates (merged folder, F16 used for quantizing)")
    p.add_argument("--no-verify", action="store_true", help="skip verification against the HF model")
    p.add_argument(
        "--pre",
        default=None,
        metavar="NAME",
        help="force llama.cpp's BPE pre-tokenizer name (default: chosen as llama.cpp's converter would)",
    )
    p.add_argument(
        "--eval",
        default=None,
        metavar="FILE",
        help="score the merged model and each quant on these prompts with references",
    )
    p.add_argument(
        "--eval-label-pattern",
        default=None,
        metavar="REGEX",
        help=r"with --eval: compare labels, e.g. 'Sentiment: (\w+)'",
    )
    p.add_argument("--wait", action="store_true", help="wait for the job and print its result")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_slurm_options(p)
    p.set_defaults(func=cmd_export)

    v = subparser(
        sub, "verify", "Compare a GGUF with its Hugging Face model: token ids, logits (NMSE, top-1, KL), generation."
    )
    v.add_argument("gguf", metavar="FILE.gguf")
    v.add_argument("--against", required=True, metavar="HF_FOLDER", help="the HF model (for an adapter GGUF: the base)")
    v.add_argument("--lora", default=None, metavar="ADAPTER.gguf", help="apply this adapter GGUF on FILE.gguf")
    v.add_argument(
        "--adapter", default=None, metavar="PEFT_DIR", help="PEFT adapter merged into --against for the reference"
    )
    v.add_argument("--type", default=None, help="GGUF type for the thresholds (default: read from the file)")
    v.add_argument("--json", action="store_true", help="print JSON")
    v.set_defaults(func=cmd_verify)

    i = subparser(sub, "import", "Turn a GGUF into a Hugging Face folder (dequantized) so it can be fine-tuned.")
    i.add_argument("gguf", metavar="FILE.gguf")
    i.add_argument("--out", default=None, metavar="DIR", help="output folder (default: <workspace>/models/<name>)")
    i.set_defaults(func=cmd_import)


def cmd_export(args: argparse.Namespace, ws: Workspace) -> int:
    from ftbench.core.jobs import start_job, wait_job
    from ftbench.core.registry import Registry
    from ftbench.export.gguf.tokenizer import check_pre_name
    from ftbench.export.pipeline import resolve_source
    from ftbench.export.quantize import normalize_types

    quants = normalize_types(args.quant) if args.quant else normalize_types(ws.config.defaults.export_quants)
    if args.pre:
        check_pre_name(args.pre)
    # Resolved here, from the user's folder, and pinned: the job runs in its own folder, and `last` may move.
    source = resolve_source(ws, args.source, args.base, on_note=lambda note: print(f"note: {note}", file=sys.stderr))
    pinned = str(source.adapter.path if source.adapter else source.model_dir)
    base = str(Path(args.base).resolve()) if args.base else None
    params = {
        "source": pinned,
        "quants": quants,
        "adapter_only": args.adapter_only,
        "base": base,
        "keep": args.keep,
        "verify": not args.no_verify,
        "pre_tokenizer": args.pre,
    }
    if args.eval:
        from ftbench.evaluate.retention import check_eval_file

        check_eval_file(args.eval, args.eval_label_pattern)
        params.update(eval=str(Path(args.eval).resolve()), eval_label_pattern=args.eval_label_pattern)
    slurm = slurm_options(args, ws)
    if slurm and args.nodes is None:
        slurm["nodes"] = 1  # ftbench.toml's nodes are for training
    if slurm and slurm["nodes"] > 1:
        raise FtbenchError(
            f"An export runs on one node; --nodes is {slurm['nodes']}.", "Pass --nodes 1 (or leave it to ftbench.toml)."
        )
    job = start_job(
        ws,
        "export",
        name=source.name,
        params=params,
        meta={"source": args.source, "quants": quants},
        slurm=slurm,
        on_launch=Registry(ws).sync_job,
    )
    if not args.wait:
        if args.json:
            print_json({"id": job.id, "dir": str(job.dir), "state": job.state})
        else:
            print(
                f"Started export {job.id} ({', '.join(q.upper() for q in quants)}); follow it with `ftbench logs {job.id}`."
            )
        return 0
    job = wait_job(job)
    status = job.status
    if args.json:
        print_json(status)
    elif job.state == "succeeded":
        print(render_card(status.get("result") or {}))
    if job.state != "succeeded":
        err = status.get("error") or {}
        print(f"error: export {job.id} {job.state}: {err.get('message', 'see the log')}", file=sys.stderr)
        if err.get("hint"):
            print(f"hint: {err['hint']}", file=sys.stderr)
        return 1
    return 0


def gguf_type_of(path: Path) -> str:
    """The verification type of a GGUF, from general.file_type in its header."""
    from ftbench.catalog.gguf_header import read_gguf_header
    from ftbench.export.quantize import LLAMA_FTYPES

    ftype = read_gguf_header(path).get("general.file_type", 1)
    names = {0: "f32", 1: "f16", 32: "bf16", 7: "q8_0", **{v: k for k, v in LLAMA_FTYPES.items()}}
    return names.get(ftype, "unknown")


def cmd_verify(args: argparse.Namespace, ws: Workspace) -> int:
    from ftbench.export.verify import HFReference, check_gguf

    path = Path(args.gguf)
    if not path.is_file():
        raise FtbenchError(f"{path} does not exist.", "Give the path to a .gguf file.")
    qtype = (args.type or gguf_type_of(path)).lower()
    ref = HFReference(args.against, adapter_dir=args.adapter)
    res = check_gguf(path, ref, qtype, lora_path=args.lora)
    if args.json:
        print_json(res.to_dict())
    else:
        print(f"{path.name} ({qtype.upper()}) vs {args.against}: {'PASS' if res.passed else 'FAIL'}")
        print(
            f"  tokens {'identical' if res.tokens_match else 'DIFFER'} ({res.n_tokens} ids); NMSE {res.nmse:.3g}"
            f" (limit {res.threshold if res.threshold is not None else 'none'}); top-1 {res.top1:.1%}; KL {res.kl:.3g}"
        )
        for problem in res.problems:
            print(f"  problem: {problem}")
    return 0 if res.passed else 1


def cmd_import(args: argparse.Namespace, ws: Workspace) -> int:
    from ftbench.export.importer import import_gguf

    src = Path(args.gguf)
    out = Path(args.out) if args.out else inside(ws.models_dir, ws.models_dir / safe_name(src.stem, fallback="model"))
    path = import_gguf(src, out)
    print(f"Imported {src.name} -> {path}")
    return 0
