"""The whole export, in phases: resolve source -> preflight -> merge -> convert -> quantize -> verify -> Modelfile.

`run_export` is plain Python (the job target and tests call it); it runs one named step function per phase
on an `ExportRun` (with a shared `StepTimer`), reports phases through callbacks and returns the result card's data. Intermediates (merged folder, F16 used only for quantizing) are removed
unless kept, and every file appears under its final name only once complete.
"""

from __future__ import annotations

import json
import shlex
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftbench.catalog.hf_files import read_safetensors_header, text_config
from ftbench.core.artifacts import Weights, resolve
from ftbench.core.atomic import atomic_write_json
from ftbench.core.errors import FtbenchError
from ftbench.core.humanize import decimal_size
from ftbench.core.layout import JobLayout
from ftbench.core.safe_paths import inside, safe_name
from ftbench.core.workspace import Workspace
from ftbench.export import merge as merge_mod
from ftbench.export.gguf.hf import load_hf_model
from ftbench.export.quantize import BITS_PER_WEIGHT, LLAMA_FTYPES, normalize_types


class VerificationFailed(FtbenchError):
    """A check failed: the export fails, but its card (files, numbers) is still shown."""

    def __init__(self, result: dict[str, Any], message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.result = result


FILE_TYPE_NAMES = {"f32": "F32", "f16": "F16", "bf16": "BF16", "q8_0": "Q8_0"}


@dataclass
class Source:
    """What is exported: a model folder, or an adapter plus its base."""

    name: str
    model_dir: Path | None = None
    adapter: merge_mod.AdapterInfo | None = None
    base_name: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def weights_dir(self) -> Path:
        return self.adapter.base_dir if self.adapter else self.model_dir  # type: ignore[return-value]


def resolve_source(
    ws: Workspace | None, ref: str, base: str | None = None, on_note: Callable[[str], None] | None = None
) -> Source:
    """What to export, through the artifacts resolver: a run (its final weights, or RUN@checkpoint-N / @last /
    @best), an adapter folder or a model folder, by id, path or name in the workspace."""
    found = resolve(ws, ref, want=("adapter", "model"))
    assert isinstance(found, Weights)
    if found.note and on_note is not None:
        on_note(found.note)
    name = found.path.name
    if found.run is not None:
        name = found.run.name + (f"-{found.checkpoint}" if found.checkpoint else "")
    name = safe_name(name, fallback="model")  # a run's name is free text from a recipe; it becomes file names
    if found.kind == "adapter":
        roots = [ws.root, *ws.model_roots()] if ws is not None else []
        info = merge_mod.read_adapter(found.path, base, search_roots=roots)
        return Source(
            name=name,
            adapter=info,
            base_name=info.base_dir.name,
            meta={"name": name, "basename": info.base_dir.name, "finetune": name, "base_model": info.base_dir.name},
        )
    for weights in sorted(found.path.glob("*.safetensors")):  # a torn file is named here, before any job
        read_safetensors_header(weights)
    return Source(name=name, model_dir=found.path, meta={"name": name, "basename": name})


def preflight(src: Source, types: list[str], out_dir: Path, adapter_only: bool, fallback: Any = None) -> dict[str, Any]:
    """Disk (and merge memory) needs, refused up front when the disk is too small."""
    model = load_hf_model(src.weights_dir)
    from ftbench.export.gguf import archs

    try:
        archs.rule_for(model)  # unsupported architectures are refused before any work ...
    except archs.UnsupportedArchitecture:
        if fallback is None:  # ... unless llama.cpp's converter is configured to take them
            raise
    params = model.n_params()
    merged = model.nbytes() if src.adapter and not adapter_only else 0
    intermediate = params * 2 if any(t in LLAMA_FTYPES for t in types) and "f16" not in types else 0
    outputs = sum(int(params * BITS_PER_WEIGHT[t] / 8) for t in types)
    need = int((merged + intermediate + outputs) * 1.05) + (64 << 20)
    out_dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(out_dir).free
    info = {
        "params": params,
        "need_bytes": need,
        "free_bytes": free,
        "merge_bytes": merged,
        "intermediate_bytes": intermediate,
        "output_bytes": outputs,
        "merge_memory_bytes": merge_mod.merge_memory_bytes(src.weights_dir) if merged else 0,
    }
    if need > free:
        raise FtbenchError(
            f"Exporting needs about {decimal_size(need)} on {out_dir} (merge {decimal_size(merged)} + F16 {decimal_size(intermediate)} + outputs {decimal_size(outputs)}) but only {decimal_size(free)} is free.",
            "Free some space, export fewer types (--quant), or point the workspace to a bigger disk.",
        )
    return info


def gguf_name(name: str, qtype: str) -> str:
    return f"{safe_name(name, fallback='model')}-{qtype.upper()}.gguf"


class StepTimer:
    """Seconds per named step, kept for the result card (`timings`), plus the whole run's total."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.timings: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[f"{name}_s"] = round(time.perf_counter() - t0, 3)

    def seconds(self, name: str) -> float:
        return self.timings[f"{name}_s"]

    def summary(self) -> dict[str, float]:
        return {**self.timings, "total_s": round(time.perf_counter() - self.start, 3)}


Phase = Callable[[str, float | None, float | None], None]


@dataclass
class ExportRun:
    """One export in progress: its inputs, the shared timer and what the steps have made so far."""

    source: Source
    out: Path
    types: list[str]
    adapter_only: bool
    keep_intermediates: bool
    phase: Phase
    log: Callable[[str], None]
    timer: StepTimer = field(default_factory=StepTimer)
    model_dir: Path | None = None
    adapter_gguf: Path | None = None
    note: str | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    made: dict[str, Path] = field(default_factory=dict)
    intermediates: list[Path] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    pre_tokenizer: str | None = None  # forced llama.cpp pre-tokenizer name (--pre, recipe export.pre_tokenizer)
    fallback: Any = None  # export/fallback.py ExternalConverter for architectures ftbench has no rule for
    converter: str = "ftbench"  # which converter wrote the files, for the card
    pre_choice: Any = None  # the tokenizer's PreChoice: the name used and how it was chosen


def run_export(
    source: Source,
    out_dir: str | Path,
    quants: str | list[str] = ("q4_k_m", "q8_0"),
    adapter_only: bool = False,
    keep_intermediates: bool = False,
    verify: bool = True,
    phase: Phase | None = None,
    log: Callable[[str], None] = print,
    pre_tokenizer: str | None = None,
    fallback: Any = None,
) -> dict[str, Any]:
    """Do the export into `out_dir`; returns the result card (files, sizes, verification, commands).

    The steps run in order on one `ExportRun`: preflight, adapter GGUF (adapter_only), merge, convert,
    quantize, verify, Modelfile, clean-up; each is a function below, timed by the run's StepTimer.
    `pre_tokenizer` forces llama.cpp's BPE pre-tokenizer name; `fallback` (export/fallback.py) converts
    architectures ftbench has no rule for.
    """
    types = normalize_types(list(quants) if not isinstance(quants, str) else quants)
    run = ExportRun(
        source,
        Path(out_dir),
        types,
        adapter_only,
        keep_intermediates,
        phase or (lambda *_: None),
        log,
        pre_tokenizer=pre_tokenizer,
        fallback=fallback,
    )
    pre = _preflight_step(run)
    _adapter_step(run)
    _merge_step(run)
    _convert_step(run)
    _quantize_step(run)
    if verify:
        _verify_step(run)
    modelfile = _modelfile_step(run)
    _remove_intermediates(run)
    result = _result_card(run, pre, modelfile)
    failed = [c for c in run.checks if not c["passed"]]
    if failed:
        raise VerificationFailed(
            result,
            "Verification failed for "
            + ", ".join(f"{c['type'].upper()} ({'; '.join(c['problems'])})" for c in failed)
            + ".",
            f"The files are kept in {run.out} for inspection; verify.json has the numbers. Please report this with the model's config.json.",
        )
    return result


def _preflight_step(run: ExportRun) -> dict[str, Any]:
    run.phase("preflight", 0, 1)
    pre = preflight(run.source, run.types, run.out, run.adapter_only, run.fallback)
    run.log(
        f"Preflight: {pre['params']:,} parameters; needs ~{decimal_size(pre['need_bytes'])} disk, {decimal_size(pre['free_bytes'])} free"
        + (f"; merging needs ~{decimal_size(pre['merge_memory_bytes'])} RAM." if pre["merge_memory_bytes"] else ".")
    )
    run.model_dir = run.source.model_dir
    return pre


def _adapter_step(run: ExportRun) -> None:
    """--adapter-only: the adapter as a LoRA GGUF beside the base's files; falls back to merging when the
    adapter cannot be expressed as one (the reason goes on the card)."""
    source = run.source
    if not (source.adapter and run.adapter_only):
        return
    from ftbench.export.lora import NotExpressible, write_lora_gguf

    run.phase("adapter", 0, 1)
    with run.timer.step("adapter"):
        try:
            res = write_lora_gguf(
                source.adapter, inside(run.out, run.out / f"{safe_name(source.name)}-LoRA-F32.gguf"), name=source.name
            )
            run.adapter_gguf = Path(res["path"])
            run.files.append(
                {"path": str(run.adapter_gguf), "type": "lora-f32", "bytes": res["bytes"], "role": "adapter"}
            )
            run.model_dir = source.adapter.base_dir
            run.log(f"Adapter GGUF: {res['modules']} modules -> {run.adapter_gguf.name}")
        except NotExpressible as exc:
            run.note = exc.message
            run.log(f"{exc.message} Merging instead.")
            run.adapter_only = False


def _merge_step(run: ExportRun) -> None:
    source = run.source
    if not (source.adapter and not run.adapter_only):
        return
    run.phase("merge", 0, 1)
    # Kept: `merged/`. Only an intermediate: `.merged/`, which no listing shows and a dead job's clean-up removes.
    folder = JobLayout.MERGED if run.keep_intermediates else JobLayout.SCRATCH_MERGED
    with run.timer.step("merge"):
        run.model_dir = merge_mod.merge_adapter(source.adapter, run.out / folder)
    if not run.keep_intermediates:
        run.intermediates.append(run.model_dir)
    run.log(f"Merged {source.adapter.path} into {source.adapter.base_dir} -> {run.model_dir}")


def _file_stem(run: ExportRun) -> str:
    assert run.model_dir is not None
    return run.source.name if not run.adapter_only else (run.source.base_name or run.model_dir.name)


def _needs_f16(run: ExportRun) -> bool:
    """K-quants are made from an F16 GGUF; one the user did not ask for is an intermediate."""
    return any(t in LLAMA_FTYPES for t in run.types) and "f16" not in run.types


def _convert_step(run: ExportRun) -> None:
    """Our own HF -> GGUF writer for F32/F16/BF16/Q8_0 (and the F16 the K-quants start from); llama.cpp's
    converter (the configured fallback) for an architecture ftbench has no rule for."""
    from ftbench.export.gguf.archs import find_rule
    from ftbench.export.gguf.tokenizer import choose_pre
    from ftbench.export.gguf.writer import convert

    assert run.model_dir is not None
    model = load_hf_model(run.model_dir)
    external = run.fallback if find_rule(model) is None else None
    if external:
        run.converter = external.label
        run.log(f"No ftbench rule for {model.architecture}: converting with {external.label}")
    else:  # transformers is loaded in this job anyway
        run.pre_choice = choose_pre(run.model_dir, forced=run.pre_tokenizer, in_process=True)
    if run.pre_choice:
        run.log(f"Pre-tokenizer: {run.pre_choice.describe()}")
    direct = [t for t in run.types if t in FILE_TYPE_NAMES]
    for qtype in direct + (["f16"] if _needs_f16(run) else []):
        dst = inside(run.out, run.out / gguf_name(_file_stem(run), qtype))
        if qtype not in run.types and not run.keep_intermediates:  # the F16 the K-quants start from
            dst = dst.with_name(dst.name + JobLayout.INTERMEDIATE_SUFFIX)

        def conv_progress(done: int, total: int, _q: str = qtype) -> None:
            run.phase(f"convert {_q.upper()}", done, total)

        with run.timer.step(f"convert_{qtype}"):
            if external:
                external.convert(run.model_dir, dst, qtype, run.log)
                res = {"bytes": dst.stat().st_size, "tensors": "?", "pre": "chosen by llama.cpp"}
            else:
                res = convert(
                    run.model_dir, dst, qtype, meta=run.source.meta, pre=run.pre_choice, progress=conv_progress
                )
        run.made[qtype] = dst
        run.log(
            f"Wrote {dst.name} ({decimal_size(res['bytes'])}, {res['tensors']} tensors, pre-tokenizer {res['pre']}) "
            f"in {run.timer.seconds(f'convert_{qtype}')}s"
        )


def _quantize_step(run: ExportRun) -> None:
    """K-quants through llama.cpp's quantizer, from the F16 GGUF."""
    from ftbench.export.quantize import quantize_with_llama_cpp

    kquants = [t for t in run.types if t in LLAMA_FTYPES]
    for i, qtype in enumerate(kquants):
        run.phase(f"quantize {qtype.upper()}", i, len(kquants))
        dst = inside(run.out, run.out / gguf_name(_file_stem(run), qtype))
        with run.timer.step(f"quantize_{qtype}"):
            quantize_with_llama_cpp(run.made["f16"], dst, qtype)
        run.made[qtype] = dst
        run.log(f"Wrote {dst.name} ({decimal_size(dst.stat().st_size)}) in {run.timer.seconds(f'quantize_{qtype}')}s")
    if _needs_f16(run) and not run.keep_intermediates:
        run.intermediates.append(run.made["f16"])
    for qtype in run.types:
        path = run.made[qtype]
        run.files.append({"path": str(path), "type": qtype.upper(), "bytes": path.stat().st_size, "role": "model"})


def _verify_step(run: ExportRun) -> None:
    """Each GGUF against the Hugging Face model: same tokens, close logits (verify.json keeps the numbers)."""
    from ftbench.export.verify import HFReference, check_gguf

    source, types = run.source, run.types
    run.phase("verify", 0, len(types))
    with_adapter = bool(source.adapter and run.adapter_only)
    ref_dir = source.adapter.base_dir if with_adapter else run.model_dir
    ref = HFReference(ref_dir, adapter_dir=source.adapter.path if with_adapter else None)
    for i, qtype in enumerate(types):
        res = check_gguf(run.made[qtype], ref, qtype, lora_path=run.adapter_gguf)
        run.checks.append(res.to_dict())
        run.phase("verify", i + 1, len(types))
        run.log(
            f"Verify {qtype.upper()}: tokens {'match' if res.tokens_match else 'DIFFER'}, NMSE {res.nmse:.3g}, top-1 {res.top1:.1%}, KL {res.kl:.3g}"
            + ("" if res.passed else f" -> FAILED: {'; '.join(res.problems)}")
        )
    atomic_write_json(
        run.out / "verify.json",
        {
            "reference": str(ref_dir),
            "adapter": str(run.adapter_gguf) if run.adapter_gguf else None,
            "n_tokens": len(ref.ids),
            "checks": run.checks,
        },
    )


def _modelfile_step(run: ExportRun) -> Path:
    from ftbench.export.ollama import write_modelfile

    assert run.model_dir is not None
    run.phase("modelfile", 0, 1)
    primary = run.made[run.types[0]]
    chat_template, eos = _chat_template_and_eos(run.model_dir)
    cfg = text_config(json.loads((run.model_dir / "config.json").read_text(encoding="utf-8")))
    n_ctx = cfg.get("max_position_embeddings") or cfg.get("n_positions")
    return write_modelfile(
        run.out, primary.name, chat_template, eos, n_ctx, run.adapter_gguf.name if run.adapter_gguf else None
    )


def _remove_intermediates(run: ExportRun) -> None:
    for path in run.intermediates:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _result_card(run: ExportRun, pre: dict[str, Any], modelfile: Path) -> dict[str, Any]:
    """What the job stores as its result and core/export_card.py renders."""
    primary = run.made[run.types[0]]
    tag = safe_name(run.source.name.lower(), fallback="model")
    lora_arg = f" --lora {shlex.quote(str(run.adapter_gguf))}" if run.adapter_gguf else ""
    result = {
        "source": run.source.name,
        "files": run.files,
        "modelfile": str(modelfile),
        "verify": [{k: c[k] for k in ("type", "passed", "tokens_match", "nmse", "top1", "kl")} for c in run.checks],
        "verified": bool(run.checks) and all(c["passed"] for c in run.checks),
        "commands": {
            "llama.cpp": f"llama-cli -m {shlex.quote(str(primary))}{lora_arg} -cnv",
            "ollama": f"cd {shlex.quote(str(run.out))} && ollama create {tag} -f Modelfile && ollama run {tag}",
        },
        "timings": run.timer.summary(),
        "preflight": pre,
        "converter": run.converter,
    }
    if run.pre_choice:
        result["pre_tokenizer"] = {"name": run.pre_choice.name, "how": run.pre_choice.how}
    if run.note:
        result["note"] = run.note
    return result


def _chat_template_and_eos(model_dir: Path) -> tuple[str | None, str | None]:
    template = None
    if (model_dir / "chat_template.jinja").is_file():
        template = (model_dir / "chat_template.jinja").read_text(encoding="utf-8")
    cfg_path = model_dir / "tokenizer_config.json"
    eos = None
    if cfg_path.is_file():
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        template = template or (cfg.get("chat_template") if isinstance(cfg.get("chat_template"), str) else None)
        eos_val = cfg.get("eos_token")
        eos = eos_val.get("content") if isinstance(eos_val, dict) else eos_val
    return template, eos
