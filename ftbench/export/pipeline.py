"""The whole export, in phases: resolve source -> preflight -> merge -> convert -> quantize -> verify -> Modelfile.

`run_export` is plain Python (the job target and tests call it); it reports phases through callbacks and
returns the result card's data. Intermediates (merged folder, F16 used only for quantizing) are removed
unless kept, and every file appears under its final name only once complete.
"""

from __future__ import annotations

import json
import shlex
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftbench.catalog.hf_files import text_config
from ftbench.core.artifacts import Weights, resolve
from ftbench.core.atomic import atomic_write_json
from ftbench.core.errors import FtbenchError
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
        return Source(name=name, adapter=info, base_name=info.base_dir.name,
                      meta={"name": name, "basename": info.base_dir.name, "finetune": name, "base_model": info.base_dir.name})
    return Source(name=name, model_dir=found.path, meta={"name": name, "basename": name})


def preflight(src: Source, types: list[str], out_dir: Path, adapter_only: bool) -> dict[str, Any]:
    """Disk (and merge memory) needs, refused up front when the disk is too small."""
    model = load_hf_model(src.weights_dir)
    from ftbench.export.gguf import archs

    archs.rule_for(model)  # unsupported architectures are refused before any work
    params = model.n_params()
    merged = model.nbytes() if src.adapter and not adapter_only else 0
    intermediate = params * 2 if any(t in LLAMA_FTYPES for t in types) and "f16" not in types else 0
    outputs = sum(int(params * BITS_PER_WEIGHT[t] / 8) for t in types)
    need = int((merged + intermediate + outputs) * 1.05) + (64 << 20)
    out_dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(out_dir).free
    info = {"params": params, "need_bytes": need, "free_bytes": free, "merge_bytes": merged, "intermediate_bytes": intermediate,
            "output_bytes": outputs, "merge_memory_bytes": merge_mod.merge_memory_bytes(src.weights_dir) if merged else 0}
    if need > free:
        raise FtbenchError(
            f"Exporting needs about {_gb(need)} on {out_dir} (merge {_gb(merged)} + F16 {_gb(intermediate)} + outputs {_gb(outputs)}) but only {_gb(free)} is free.",
            "Free some space, export fewer types (--quant), or point the workspace to a bigger disk.",
        )
    return info


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def gguf_name(name: str, qtype: str) -> str:
    return f"{safe_name(name, fallback='model')}-{qtype.upper()}.gguf"


def run_export(
    source: Source,
    out_dir: str | Path,
    quants: str | list[str] = ("q4_k_m", "q8_0"),
    adapter_only: bool = False,
    keep_intermediates: bool = False,
    verify: bool = True,
    phase: Callable[[str, float | None, float | None], None] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Do the export into `out_dir`; returns the result card (files, sizes, verification, commands)."""
    from ftbench.export.gguf.writer import convert
    from ftbench.export.quantize import quantize_with_llama_cpp

    t_start = time.perf_counter()
    out = Path(out_dir)
    types = normalize_types(list(quants) if not isinstance(quants, str) else quants)
    step = phase or (lambda *_: None)
    step("preflight", 0, 1)
    pre = preflight(source, types, out, adapter_only)
    log(f"Preflight: {pre['params']:,} parameters; needs ~{_gb(pre['need_bytes'])} disk, {_gb(pre['free_bytes'])} free"
        + (f"; merging needs ~{_gb(pre['merge_memory_bytes'])} RAM." if pre["merge_memory_bytes"] else "."))
    timings: dict[str, float] = {}
    files: list[dict[str, Any]] = []
    intermediates: list[Path] = []
    adapter_gguf: Path | None = None
    note = None

    model_dir = source.model_dir
    if source.adapter and adapter_only:
        from ftbench.export.lora import NotExpressible, write_lora_gguf

        step("adapter", 0, 1)
        t0 = time.perf_counter()
        try:
            res = write_lora_gguf(source.adapter, inside(out, out / f"{safe_name(source.name)}-LoRA-F32.gguf"),
                                  name=source.name)
            adapter_gguf = Path(res["path"])
            files.append({"path": str(adapter_gguf), "type": "lora-f32", "bytes": res["bytes"], "role": "adapter"})
            model_dir = source.adapter.base_dir
            log(f"Adapter GGUF: {res['modules']} modules -> {adapter_gguf.name}")
        except NotExpressible as exc:
            note = exc.message
            log(f"{exc.message} Merging instead.")
            adapter_only = False
        timings["adapter_s"] = round(time.perf_counter() - t0, 3)
    if source.adapter and not adapter_only:
        step("merge", 0, 1)
        t0 = time.perf_counter()
        model_dir = merge_mod.merge_adapter(source.adapter, out / "merged")
        if not keep_intermediates:
            intermediates.append(model_dir)
        timings["merge_s"] = round(time.perf_counter() - t0, 3)
        log(f"Merged {source.adapter.path} into {source.adapter.base_dir} -> {model_dir}")
    assert model_dir is not None
    file_stem = source.name if not adapter_only else (source.base_name or model_dir.name)

    from ftbench.export.gguf.tokenizer import pre_tokenizer_name

    pre_name = pre_tokenizer_name(model_dir, in_process=True)  # transformers is loaded in this job anyway
    direct = [t for t in types if t in FILE_TYPE_NAMES]
    kquants = [t for t in types if t in LLAMA_FTYPES]
    made: dict[str, Path] = {}
    need_f16 = bool(kquants) and "f16" not in direct
    for qtype in direct + (["f16"] if need_f16 else []):
        t0 = time.perf_counter()
        dst = inside(out, out / gguf_name(file_stem, qtype))

        def conv_progress(done: int, total: int, _q: str = qtype) -> None:
            step(f"convert {_q.upper()}", done, total)

        res = convert(model_dir, dst, qtype, meta=source.meta, pre=pre_name, progress=conv_progress)
        timings[f"convert_{qtype}_s"] = round(time.perf_counter() - t0, 3)
        made[qtype] = dst
        log(f"Wrote {dst.name} ({_gb(res['bytes'])}, {res['tensors']} tensors, pre-tokenizer {res['pre']}) in {timings[f'convert_{qtype}_s']}s")
    for i, qtype in enumerate(kquants):
        step(f"quantize {qtype.upper()}", i, len(kquants))
        t0 = time.perf_counter()
        dst = inside(out, out / gguf_name(file_stem, qtype))
        quantize_with_llama_cpp(made["f16"], dst, qtype)
        timings[f"quantize_{qtype}_s"] = round(time.perf_counter() - t0, 3)
        made[qtype] = dst
        log(f"Wrote {dst.name} ({_gb(dst.stat().st_size)}) in {timings[f'quantize_{qtype}_s']}s")
    if need_f16 and not keep_intermediates:
        intermediates.append(made["f16"])
    for qtype in types:
        files.append({"path": str(made[qtype]), "type": qtype.upper(), "bytes": made[qtype].stat().st_size, "role": "model"})

    checks: list[dict[str, Any]] = []
    if verify:
        from ftbench.export.verify import HFReference, check_gguf

        step("verify", 0, len(types))
        ref_dir = source.adapter.base_dir if (source.adapter and adapter_only) else model_dir
        ref = HFReference(ref_dir, adapter_dir=source.adapter.path if (source.adapter and adapter_only) else None)
        for i, qtype in enumerate(types):
            res = check_gguf(made[qtype], ref, qtype, lora_path=adapter_gguf)
            checks.append(res.to_dict())
            step("verify", i + 1, len(types))
            log(f"Verify {qtype.upper()}: tokens {'match' if res.tokens_match else 'DIFFER'}, NMSE {res.nmse:.3g}, top-1 {res.top1:.1%}, KL {res.kl:.3g}"
                + ("" if res.passed else f" -> FAILED: {'; '.join(res.problems)}"))
        atomic_write_json(out / "verify.json", {"reference": str(ref_dir), "adapter": str(adapter_gguf) if adapter_gguf else None,
                                                "n_tokens": len(ref.ids), "checks": checks})

    step("modelfile", 0, 1)
    from ftbench.export.ollama import write_modelfile

    primary = made[types[0]]
    chat_template, eos = _chat_template_and_eos(model_dir)
    cfg = text_config(json.loads((model_dir / "config.json").read_text(encoding="utf-8")))
    n_ctx = cfg.get("max_position_embeddings") or cfg.get("n_positions")
    modelfile = write_modelfile(out, primary.name, chat_template, eos, n_ctx, adapter_gguf.name if adapter_gguf else None)

    for path in intermediates:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    tag = safe_name(source.name.lower(), fallback="model")
    lora_arg = f" --lora {shlex.quote(str(adapter_gguf))}" if adapter_gguf else ""
    result = {
        "source": source.name,
        "files": files,
        "modelfile": str(modelfile),
        "verify": [{k: c[k] for k in ("type", "passed", "tokens_match", "nmse", "top1", "kl")} for c in checks],
        "verified": bool(checks) and all(c["passed"] for c in checks),
        "commands": {
            "llama.cpp": f"llama-cli -m {shlex.quote(str(primary))}{lora_arg} -cnv",
            "ollama": f"cd {shlex.quote(str(out))} && ollama create {tag} -f Modelfile && ollama run {tag}",
        },
        "timings": {**timings, "total_s": round(time.perf_counter() - t_start, 3)},
        "preflight": pre,
    }
    if note:
        result["note"] = note
    failed = [c for c in checks if not c["passed"]]
    if failed:
        raise VerificationFailed(result,
            "Verification failed for " + ", ".join(f"{c['type'].upper()} ({'; '.join(c['problems'])})" for c in failed) + ".",
            f"The files are kept in {out} for inspection; verify.json has the numbers. Please report this with the model's config.json.",
        )
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
