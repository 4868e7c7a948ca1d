"""Turn what a user typed (a model folder, a name under models/, a .gguf file, a run id) into chat columns.

Shared by the CLI and the TUI, so `ftbench chat smollm2-135m-instruct --adapter 20261122-...` and the
chat screen's `/add` resolve the same way. No heavy imports: only paths and job folders are inspected.
"""

from __future__ import annotations

from collections.abc import Callable

from ftbench.chat.protocol import VariantSpec
from ftbench.core.artifacts import Artifact, GGUFFile, Weights, resolve, short_run_name
from ftbench.core.errors import FtbenchError
from ftbench.core.workspace import Workspace

__all__ = ["build_variants", "resolve_adapter", "resolve_model", "short_run_name", "unique_name"]

Notes = Callable[[str], None] | None


def unique_name(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}-{n}", n + 1
    return candidate


def resolve_model(ws: Workspace, ref: str, name: str | None = None, on_note: Notes = None) -> VariantSpec:
    """MODEL: an HF folder, a .gguf file, a name under the model folders, a run with a model/ folder (or one of
    its full-weight checkpoints), or an export's GGUF."""
    found = resolve(ws, ref, want=("model", "gguf", "adapter"))
    if isinstance(found, Weights) and found.kind == "adapter":
        where = found.path if found.run is None else f"run {found.run.id}"
        raise FtbenchError(
            f"{where} is a PEFT adapter, not a model.",
            f"Pass its base as MODEL and this with --adapter {ref} (its base: {found.base}).",
        )
    _tell(found, on_note)
    if isinstance(found, GGUFFile):
        if found.is_lora:
            raise FtbenchError(
                f"{found.path} is a LoRA adapter GGUF, not a model.",
                "Pass a model .gguf as MODEL and this file with --adapter.",
            )
        return VariantSpec(name=name or found.path.stem, kind="gguf", path=str(found.path))
    return VariantSpec(name=name or _label(found), kind="hf", path=str(found.path))


def resolve_adapter(
    ws: Workspace, ref: str, base: VariantSpec, name: str | None = None, on_note: Notes = None
) -> VariantSpec:
    """--adapter: a PEFT folder, a run (its adapter/, or `RUN@checkpoint-N`, `RUN@best`) on an HF base; a LoRA
    .gguf file on a GGUF base."""
    if base.kind == "gguf":
        found = resolve(ws, ref, want=("gguf",))
        if not (isinstance(found, GGUFFile) and found.is_lora):
            raise FtbenchError(
                f"A GGUF base takes a LoRA adapter .gguf, and {found.path} is not one.",
                "Export the adapter to GGUF with `ftbench export --adapter-only`, or chat with the HF base instead.",
            )
        return VariantSpec(name=name or found.path.stem, kind="gguf", path=base.path, lora=str(found.path))
    if base.kind != "hf":
        raise FtbenchError(
            f"Adapters go on an HF or GGUF base, not on a {base.kind} column.", "Pick an HF model as MODEL."
        )
    found = resolve(ws, ref, want=("adapter",))
    _tell(found, on_note)
    return VariantSpec(name=name or _label(found), kind="adapter", path=str(found.path), base=base.path)


def _label(found: Artifact) -> str:
    return found.label if isinstance(found, Weights) else found.path.name


def _tell(found: Artifact, on_note: Notes) -> None:
    """Pass on the resolver's one-line note (e.g. "using its newest checkpoint") to whoever shows it."""
    if found.note and on_note is not None:
        on_note(found.note)


def build_variants(
    ws: Workspace,
    model: str,
    adapters: list[str],
    include_base: bool = True,
    extra_models: list[str] | None = None,
    on_note: Notes = None,
) -> list[VariantSpec]:
    """The columns for `ftbench chat MODEL --adapter ... --also ...`: the base (unless excluded), each adapter on
    it, then each extra model (a merged model, a GGUF) as a column of its own."""
    base = resolve_model(ws, model, on_note=on_note)
    out = [base] if include_base else []
    taken = {v.name for v in out}
    specs = [resolve_adapter(ws, ref, base, on_note=on_note) for ref in adapters]
    specs += [resolve_model(ws, ref, on_note=on_note) for ref in extra_models or []]
    for spec in specs:
        spec.name = unique_name(spec.name, taken)
        taken.add(spec.name)
        out.append(spec)
    if not out:
        raise FtbenchError(
            "--no-base with no --adapter or --also leaves no column to chat with.", "Pass at least one --adapter."
        )
    return out
