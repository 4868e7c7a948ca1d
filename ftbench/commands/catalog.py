"""`ftbench datasets`, `ftbench models`, `ftbench estimate`: the headless face of the Datasets and Models screens."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from ftbench.cli import print_json, subparser
from ftbench.core.errors import FtbenchError
from ftbench.core.humanize import file_age, human_count, human_size, rows_text
from ftbench.core.specs import ESTIMATED_METHODS
from ftbench.core.workspace import Workspace


def register(sub: Any) -> None:
    p = subparser(sub, "datasets", "list the datasets under the workspace roots and in the Hugging Face cache")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.add_argument("--no-hf-cache", action="store_true", help="skip the Hugging Face cache")
    p.set_defaults(func=cmd_datasets)

    p = subparser(sub, "models", "list models, GGUF files and adapters under the roots and in the Hugging Face cache")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.add_argument("--no-hf-cache", action="store_true", help="skip the Hugging Face cache")
    p.set_defaults(func=cmd_models)

    p = subparser(
        sub, "estimate", "estimate the VRAM to fine-tune a model (weights, gradients, optimizer, activations, overhead)"
    )
    p.add_argument("model", help="model folder, .gguf file, or a name from `ftbench models`")
    p.add_argument("--method", choices=[*ESTIMATED_METHODS, "all"], default="all")
    p.add_argument("--seq-len", type=int, default=1024)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.set_defaults(func=cmd_estimate)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def print_notes(notes: list[str]) -> None:
    """Folders discovery had to skip, on stderr so the listing on stdout (and --json) stays clean."""
    for note in notes:
        print(f"note: {note}", file=sys.stderr)


def cmd_datasets(args: argparse.Namespace, ws: Workspace) -> int:
    from ftbench.catalog.datasets import discover_datasets

    notes: list[str] = []
    found = discover_datasets(ws, hf_cache=False if args.no_hf_cache else None, notes=notes)
    print_notes(notes)
    if args.json:
        print_json([d.to_dict() for d in found])
        return 0
    if not found:
        print(
            f"No datasets under {', '.join(map(str, ws.dataset_roots()))}. Add folders to dataset_dirs in {ws.config_path}."
        )
        return 0
    rows = [
        [
            d.name,
            d.kind,
            d.format,
            rows_text(d.rows, d.rows_exact),
            human_size(d.size_bytes),
            file_age(d.mtime, time.time()),
            d.error or "",
        ]
        for d in found
    ]
    print(_table(["NAME", "FILE", "FORMAT", "ROWS", "SIZE", "AGE", "PROBLEM"], rows))
    return 0


def cmd_models(args: argparse.Namespace, ws: Workspace) -> int:
    from ftbench.catalog.model_listing import discover_models

    notes: list[str] = []
    found = discover_models(ws, hf_cache=False if args.no_hf_cache else None, notes=notes)
    broken = [m.error if m.path in m.error else f"{m.path}: {m.error}" for m in found if m.error]
    print_notes(notes + broken)  # a broken file is named, not hidden
    if args.json:
        print_json([m.to_dict() for m in found])
        return 0
    if not found:
        print(
            f"No models under {', '.join(map(str, ws.model_roots()))}. Add folders to model_dirs in {ws.config_path}."
        )
        return 0
    rows = [
        [
            m.name,
            m.kind,
            m.architecture or "?",
            human_count(m.params),
            m.dtype or "?",
            str(m.context_length or "?"),
            "yes" if m.chat_template else "no",
            human_size(m.size_bytes),
            m.base_model or m.license or "",
        ]
        for m in found
    ]
    print(_table(["NAME", "KIND", "ARCHITECTURE", "PARAMS", "DTYPE", "CONTEXT", "CHAT", "SIZE", "BASE/LICENSE"], rows))
    return 0


def resolve_model(ws: Any, name: str) -> Any:
    """A ModelInfo for a reference (the artifacts lookup order), else for a NAME as `ftbench models` lists it
    (the Hugging Face cache included)."""
    from ftbench.catalog.model_listing import discover_models
    from ftbench.catalog.models import inspect_model
    from ftbench.core.artifacts import NotFound, resolve

    try:
        found = resolve(ws, name, want=("model", "adapter", "gguf"))
    except NotFound as exc:
        for info in discover_models(ws):
            if info.name == name:
                return info
        raise FtbenchError(
            f"No model named '{name}' (not a path, not a run, and not in `ftbench models`).",
            "Pass a model folder or .gguf path (absolute, or relative to here or the workspace), "
            "or a NAME from `ftbench models`.",
        ) from exc
    if found.note:
        print(f"note: {found.note}", file=sys.stderr)
    return inspect_model(found.path, name=found.path.name)


def cmd_estimate(args: argparse.Namespace, ws: Workspace) -> int:
    from ftbench.core.estimate import METHODS, estimate_for_model, gpu_fits

    info = resolve_model(ws, args.model)
    methods = METHODS if args.method == "all" else (args.method,)
    estimates = [
        estimate_for_model(
            info, m, args.seq_len, args.batch, lora_r=args.lora_r, gradient_checkpointing=args.gradient_checkpointing
        )
        for m in methods
    ]
    fits, reason = gpu_fits(estimates)
    if args.json:
        print_json(
            {
                "model": info.name,
                "params": info.params,
                "estimates": [e.to_dict() for e in estimates],
                "gpus": [f.__dict__ for f in fits],
                "gpu_note": reason,
            }
        )
        return 0
    print(f"{info.name}: {human_count(info.params)} parameters, seq_len {args.seq_len}, batch {args.batch}")
    parts = ["weights", "gradients", "optimizer", "activations", "overhead"]
    rows = [
        [e.method, human_count(e.trainable_params), *(human_size(e.parts()[p]) for p in parts), human_size(e.total)]
        for e in estimates
    ]
    print(_table(["METHOD", "TRAINABLE", *(p.upper() for p in parts), "TOTAL"], rows))
    if fits:
        for f in fits:
            verdict = ", ".join(f"{m}: {'fits' if ok else 'no' if ok is False else '?'}" for m, ok in f.fits.items())
            print(f"GPU {f.index} {f.name}: {human_size(f.free)} free -> {verdict}")
    else:
        print(f"GPU fit: n/a ({reason})")
    return 0
