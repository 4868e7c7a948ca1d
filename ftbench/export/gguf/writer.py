"""HF folder -> GGUF, streamed tensor by tensor.

Every tensor's GGUF name, shape and type is planned from the safetensors headers first (the GGUF header
needs them), then each tensor is loaded, transformed, converted and written before the next is read, so
peak memory is about one tensor. The file is written under `<name>.partial` and renamed only when
complete: an interrupted export never leaves a file that looks finished.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ftbench.catalog.hf_files import text_config
from ftbench.core.errors import FtbenchError
from ftbench.export.gguf import archs
from ftbench.export.gguf.experts import StackedTensor, group_experts
from ftbench.export.gguf.hf import HFModel, HFTensor, load_hf_model
from ftbench.export.gguf.partial import partial_gguf
from ftbench.export.gguf.tokenizer import PreChoice, build_vocab, check_pre_name, choose_pre, hf_tokenizer_facts

DIRECT_TYPES = ("f32", "f16", "bf16", "q8_0")


@dataclass
class PlannedTensor:
    gguf_name: str
    source: HFTensor | StackedTensor | None  # None for generated tensors (rope_freqs)
    shape: tuple[int, ...]  # numpy order, after transforms
    qtype: Any  # gguf.GGMLQuantizationType
    generated: np.ndarray | None = None


def _qtypes() -> dict[str, tuple[Any, Any]]:
    import gguf

    Q, F = gguf.GGMLQuantizationType, gguf.LlamaFileType
    return {
        "f32": (Q.F32, F.ALL_F32),
        "f16": (Q.F16, F.MOSTLY_F16),
        "bf16": (Q.BF16, F.MOSTLY_BF16),
        "q8_0": (Q.Q8_0, F.MOSTLY_Q8_0),
    }


def _block_key(name: str) -> tuple[int, str]:
    m = re.search(r"\.(\d+)\.", name)
    return (int(m.group(1)) if m else (-1 if "embed" in name or "wte" in name or "wpe" in name else 10**9), name)


def plan_tensors(model: HFModel, rule: archs.ArchRule, outtype: str) -> list[PlannedTensor]:
    """GGUF name, shape and type of every tensor, in write order; unknown tensors are refused by name."""
    import gguf

    target, _ = _qtypes()[outtype]
    cfg = text_config(model.config)
    tied = bool(cfg.get("tie_word_embeddings", model.config.get("tie_word_embeddings", False)))
    arch_enum = next(k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == rule.gguf_arch)
    tmap = gguf.get_tensor_name_map(arch_enum, archs.n_blocks(model))
    plans: list[PlannedTensor] = []
    tensors = group_experts(model.tensors)
    for hf_name in sorted(tensors, key=_block_key):
        t = tensors[hf_name]
        name = archs.strip_prefix(hf_name)
        if name is None or re.search(rule.skip_pattern, name):
            continue
        if name.startswith("lm_head.") and rule.never_output and not tied:
            raise FtbenchError(
                f"{model.path} has an untied lm_head, but llama.cpp's {rule.gguf_arch} always reuses the token "
                "embedding as output.",
                "Only checkpoints with tie_word_embeddings=true can be exported for this architecture.",
            )
        if name.startswith("lm_head.") and tied:
            continue
        gname = tmap.get_name(name, try_suffixes=(".weight", ".bias"))
        if gname is None:
            raise FtbenchError(
                f"Tensor {hf_name} in {model.path} has no GGUF counterpart for arch {rule.gguf_arch}.",
                "The checkpoint has extra weights the llama.cpp architecture does not use; remove them or report it.",
            )
        if not gname.endswith((".weight", ".bias")):
            gname += ".weight"  # stacked experts are named without a suffix
        shape = archs.gguf_shape(rule, name, t.shape)
        plans.append(PlannedTensor(gname, t, shape, _tensor_type(gname, shape, target)))
    names = {p.gguf_name for p in plans}
    if rule.output_required and "output.weight" not in names:  # tied, but this llama.cpp arch wants its own copy
        embd = next(p for p in plans if p.gguf_name == "token_embd.weight")
        plans.append(PlannedTensor("output.weight", embd.source, embd.shape, embd.qtype))
    freqs = archs.llama3_rope_freqs(cfg) if rule.gguf_arch == "llama" else None
    if freqs is not None:
        plans.append(PlannedTensor("rope_freqs.weight", None, freqs.shape, gguf.GGMLQuantizationType.F32, freqs))
    return plans


def _tensor_type(gname: str, shape: tuple[int, ...], target: Any) -> Any:
    import gguf

    Q = gguf.GGMLQuantizationType
    if len(shape) < 2 or gname.endswith("norm.weight") or gname.startswith("position_embd"):
        return Q.F32
    block, _ = gguf.GGML_QUANT_SIZES[target]
    if shape[-1] % block != 0:
        return Q.F16
    return target


def _encode(arr: np.ndarray, qtype: Any) -> np.ndarray:
    import gguf

    Q = gguf.GGMLQuantizationType
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if qtype == Q.F32:
        return arr
    if qtype == Q.F16:
        return arr.astype(np.float16)
    return gguf.quants.quantize(arr, qtype)


SLICE_BYTES = 16 << 20  # tensors larger than this (stored size) are converted and written in row slices


def _write_in_slices(w: Any, p: PlannedTensor) -> None:
    """Write one big tensor slice by slice so peak memory stays at one slice, not one embedding matrix.

    GGUFWriter.write_tensor_data only takes whole tensors; this does the same bookkeeping (take the next
    announced tensor, align, write, pad) with the data streamed in row blocks. Row-wise encodings (F16,
    BF16, Q8_0) give the same bytes whole or sliced.
    """
    from gguf.gguf_writer import WriterState

    assert isinstance(p.source, HFTensor)
    tensors = w.tensors[0]
    name = next(iter(tensors))
    if name != p.gguf_name:
        raise RuntimeError(f"GGUF write order broken: expected {name}, writing {p.gguf_name}")
    info = tensors.pop(name)
    fout = w.fout[0]
    w.write_padding(fout, fout.tell())
    rows = p.shape[0]
    step = max(1, SLICE_BYTES // max(1, p.source.nbytes // rows))
    written = 0
    for start in range(0, rows, step):
        chunk = _encode(p.source.rows(start, min(rows, start + step)), p.qtype)
        chunk.tofile(fout)
        written += chunk.nbytes
        del chunk
    if written != info.nbytes:
        raise RuntimeError(f"{p.gguf_name}: wrote {written} bytes, announced {info.nbytes}")
    w.write_padding(fout, written)
    w.state = WriterState.WEIGHTS


def general_metadata(w: Any, model: HFModel, meta: dict[str, Any], plans: list[PlannedTensor]) -> None:
    """general.* keys as llama.cpp's converter writes them (name, basename, finetune, size_label, license, tags,
    languages, base_model.*, read by gguf's own model-card reader), with what ftbench knows about the run on top:
    its name, the base it was fine-tuned from."""
    import gguf

    total, expert = _param_counts(plans)
    cfg = text_config(model.config)
    n_expert = int(cfg.get("num_local_experts") or cfg.get("num_experts") or 0)
    md = gguf.Metadata.load(None, model.path, meta.get("name"), total)
    md.name = str(meta.get("name") or md.name or model.path.name)
    md.basename = str(meta.get("basename") or md.basename or md.name)
    if meta.get("finetune"):
        md.finetune = str(meta["finetune"])
    if meta.get("base_model"):
        md.base_models = [{"name": str(meta["base_model"])}]
    if md.size_label is None:
        md.size_label = gguf.size_label(total, total - expert, expert // max(n_expert, 1), n_expert)
    md.set_gguf_meta_model(w)


def _param_counts(plans: list[PlannedTensor]) -> tuple[int, int]:
    """(all parameters, parameters in stacked expert tensors), counted the way the file stores them."""
    total = expert = 0
    for p in plans:
        if p.gguf_name == "output.weight" and p.source is not None and p.shape and "embed" in p.source.name:
            continue  # a duplicated tied embedding is not a parameter of its own
        n = int(np.prod(p.shape))
        total += n
        if "_exps." in p.gguf_name:
            expert += n
    return total, expert


def convert(
    model_dir: str | Path,
    out_path: str | Path,
    outtype: str = "f16",
    meta: dict[str, Any] | None = None,
    pre: str | PreChoice | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Write `out_path` (F32/F16/BF16/Q8_0) from a HF folder; returns a summary (tensors, params, bytes).

    `pre`: the BPE pre-tokenizer, as chosen once by the caller (`choose_pre`), a name to use, or None to choose.
    """
    import gguf

    outtype = outtype.lower()
    if outtype not in DIRECT_TYPES:
        raise FtbenchError(
            f"Output type {outtype!r} cannot be written directly.",
            f"Use one of {', '.join(DIRECT_TYPES)}, then quantize.",
        )
    model = load_hf_model(model_dir)
    rule = archs.rule_for(model)
    plans = plan_tensors(model, rule, outtype)
    embd = next((p for p in plans if p.gguf_name == "token_embd.weight"), None)
    if embd is None:
        raise FtbenchError(f"{model.path} has no token embedding tensor.", "Is this a complete causal LM checkpoint?")
    if isinstance(pre, str):
        pre = PreChoice(check_pre_name(pre), "given")
    elif pre is None:
        pre = choose_pre(model.path)
    vocab = build_vocab(model.path, embd.shape[0], rule.gguf_arch, pre.name if pre else None)
    name = str((meta or {}).get("name") or model.path.name).lower()
    looked_up = rule.required_tokens if any(n in name for n in rule.required_tokens_if_named) else ()
    missing = [t for t in looked_up if t not in vocab.tokens]
    if missing:
        raise FtbenchError(
            f"llama.cpp's {rule.gguf_arch} loader needs the tokens {', '.join(rule.required_tokens)}, but "
            f"{model.path}'s tokenizer lacks {', '.join(missing)}.",
            "Add them as special tokens (and resize the embeddings) before exporting.",
        )

    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    _, ftype = _qtypes()[outtype]
    with partial_gguf(out, rule.gguf_arch) as w:
        w.add_type(gguf.GGUFType.MODEL)
        general_metadata(w, model, meta or {}, plans)
        archs.write_kv(w, model, rule)
        w.add_file_type(int(ftype))
        w.add_quantization_version(gguf.GGML_QUANT_VERSION)
        facts = hf_tokenizer_facts(model.path)
        vocab.write(w, model.path, facts.get("add_special") if facts else None)
        _add_tensor_infos(w, plans)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        total = _write_tensors(w, plans, rule, model, progress)
    return {
        "path": str(out),
        "arch": rule.gguf_arch,
        "type": outtype,
        "tensors": len(plans),
        "params": total,
        "bytes": out.stat().st_size,
        "n_vocab": len(vocab.tokens),
        "pre": vocab.pre,
        "pre_how": pre.how if pre else "SentencePiece (no pre-tokenizer)",
    }


def _add_tensor_infos(w: Any, plans: list[PlannedTensor]) -> None:
    """The tensor table: each tensor's GGUF name, byte shape and type, before any data is written."""
    import gguf

    plain = {gguf.GGMLQuantizationType.F32: np.float32, gguf.GGMLQuantizationType.F16: np.float16}
    for p in plans:
        byte_shape = p.shape if p.qtype in plain else gguf.quant_shape_to_byte_shape(p.shape, p.qtype)
        np_dtype = plain.get(p.qtype, np.uint8)
        nbytes = int(np.prod(byte_shape)) * np.dtype(np_dtype).itemsize
        w.add_tensor_info(p.gguf_name, byte_shape, np.dtype(np_dtype), nbytes, raw_dtype=p.qtype)


def _write_tensors(
    w: Any,
    plans: list[PlannedTensor],
    rule: archs.ArchRule,
    model: HFModel,
    progress: Callable[[int, int], None] | None,
) -> int:
    """Stream every tensor's data in plan order (large untransformed ones in slices); returns the element count."""
    total = sum(int(np.prod(p.shape)) for p in plans)
    done = 0
    for p in plans:
        hf_name = (archs.strip_prefix(p.source.name) or "") if p.source is not None else ""
        streamable = isinstance(p.source, HFTensor) and len(p.shape) == 2 and p.source.nbytes > SLICE_BYTES
        if streamable and archs.is_identity(rule, hf_name):
            _write_in_slices(w, p)
        else:
            arr = p.generated if p.source is None else archs.transform(rule, model, hf_name, p.source.numpy())
            if tuple(arr.shape) != tuple(p.shape):
                raise FtbenchError(
                    f"Tensor {p.gguf_name} has shape {arr.shape}, expected {p.shape}.",
                    "The checkpoint looks inconsistent with its config.json.",
                )
            w.write_tensor_data(_encode(arr, p.qtype))
            del arr
        done += int(np.prod(p.shape))
        if progress:
            progress(done, total)
    return total
