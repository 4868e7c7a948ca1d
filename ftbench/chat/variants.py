"""Turn what a user typed (a model folder, a name under models/, a .gguf file, a run id) into chat columns.

Shared by the CLI and the TUI, so `ftbench chat smollm2-135m-instruct --adapter 20261122-...` and the
chat screen's `/add` resolve the same way. No heavy imports: only paths and job folders are inspected.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ftbench.chat.protocol import VariantSpec
from ftbench.core.errors import FtbenchError
from ftbench.core.workspace import Workspace

RUN_STAMP = re.compile(r"^\d{8}-\d{6}-")


def short_run_name(run_id: str) -> str:
    """20261122-141503-sft-sentiment-3f2a -> sft-sentiment-3f2a (columns are narrow)."""
    return RUN_STAMP.sub("", run_id) or run_id


def unique_name(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}-{n}", n + 1
    return candidate


def _find_path(ws: Workspace, ref: str) -> Path | None:
    path = Path(ref).expanduser()
    if path.exists():
        return path.resolve()
    for root in [ws.root, ws.models_dir, *ws.model_roots()]:
        if (root / ref).exists():
            return (root / ref).resolve()
    return None


def _find_run(ws: Workspace, ref: str) -> Path | None:
    from ftbench.core.jobs import find_job

    try:
        return find_job(ws, ref).dir
    except FtbenchError:
        return None


def resolve_model(ws: Workspace, ref: str, name: str | None = None) -> VariantSpec:
    """MODEL: an HF folder, a .gguf file, a name under the model folders, or a run with a model/ folder."""
    path = _find_path(ws, ref)
    if path is None:
        run = _find_run(ws, ref)
        if run is not None:
            if (run / "model" / "config.json").is_file():
                return VariantSpec(name=name or short_run_name(run.name), kind="hf", path=str(run / "model"))
            ggufs = sorted(run.glob("*.gguf"))
            if ggufs:
                return VariantSpec(name=name or ggufs[0].stem, kind="gguf", path=str(ggufs[0]))
            raise FtbenchError(
                f"Run {run.name} has no full model (model/) or GGUF to chat with.",
                f"Chat with its base model and pass --adapter {run.name}.",
            )
        raise FtbenchError(
            f"No model '{ref}': not a path, not under {ws.models_dir}, not a run id.",
            "Pass an HF model folder, a .gguf file, or a name listed by the Models screen.",
        )
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise FtbenchError(f"{path} is a file but not a .gguf model.", "Pass an HF model folder or a .gguf file.")
        return VariantSpec(name=name or path.stem, kind="gguf", path=str(path))
    if (path / "adapter_config.json").is_file() and not (path / "config.json").is_file():
        base = json.loads((path / "adapter_config.json").read_text(encoding="utf-8")).get("base_model_name_or_path")
        raise FtbenchError(
            f"{path} is a PEFT adapter, not a model.", f"Pass its base as MODEL and this folder with --adapter (its base: {base})."
        )
    if not (path / "config.json").is_file():
        raise FtbenchError(f"{path} is not a Hugging Face model folder (no config.json).", "Pass a model folder or a .gguf file.")
    return VariantSpec(name=name or path.name, kind="hf", path=str(path))


def resolve_adapter(ws: Workspace, ref: str, base: VariantSpec, name: str | None = None) -> VariantSpec:
    """--adapter: a PEFT folder or a run id (its adapter/) on an HF base; a LoRA .gguf file on a GGUF base."""
    path = _find_path(ws, ref)
    label = name
    if path is None:
        run = _find_run(ws, ref)
        if run is None:
            raise FtbenchError(f"No adapter '{ref}': not a path and not a run id in {ws.root}.", "Pass an adapter folder or a run id.")
        label = label or short_run_name(run.name)
        path = run / "adapter"
        if not path.is_dir():
            raise FtbenchError(f"Run {run.name} has no adapter/ folder (yet).", "Wait for the run to finish, or pick another run.")
    elif path.name == "adapter" and (path.parent / "status.json").is_file():
        label = label or short_run_name(path.parent.name)
    elif (path / "adapter" / "adapter_config.json").is_file():  # a run folder given by path
        label = label or short_run_name(path.name)
        path = path / "adapter"
    if base.kind == "gguf":
        if not (path.is_file() and path.suffix.lower() == ".gguf"):
            raise FtbenchError(
                f"A GGUF base takes a LoRA adapter .gguf, and {path} is not one.",
                "Export the adapter to GGUF with `ftbench export --lora`, or chat with the HF base instead.",
            )
        return VariantSpec(name=label or path.stem, kind="gguf", path=base.path, lora=str(path))
    if base.kind != "hf":
        raise FtbenchError(f"Adapters go on an HF or GGUF base, not on a {base.kind} column.", "Pick an HF model as MODEL.")
    return VariantSpec(name=label or path.name, kind="adapter", path=str(path), base=base.path)


def build_variants(
    ws: Workspace, model: str, adapters: list[str], include_base: bool = True, extra_models: list[str] | None = None
) -> list[VariantSpec]:
    """The columns for `ftbench chat MODEL --adapter ... --also ...`: the base (unless excluded), each adapter on
    it, then each extra model (a merged model, a GGUF) as a column of its own."""
    base = resolve_model(ws, model)
    out = [base] if include_base else []
    taken = {v.name for v in out}
    specs = [resolve_adapter(ws, ref, base) for ref in adapters] + [resolve_model(ws, ref) for ref in extra_models or []]
    for spec in specs:
        spec.name = unique_name(spec.name, taken)
        taken.add(spec.name)
        out.append(spec)
    if not out:
        raise FtbenchError("--no-base with no --adapter or --also leaves no column to chat with.", "Pass at least one --adapter.")
    return out
