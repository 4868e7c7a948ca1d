"""HF safetensors for `ftbench import`: every GGUF tensor put back under its Hugging Face name and layout.

No second name table: the HF model's tensor names and shapes come from transformers building the model on
the meta device (no memory), and the exporter's own planner (writer.plan_tensors, with TensorNameMap,
expert stacking and the per-architecture rules) says which GGUF tensor each one becomes. Import walks that
plan backwards: read the GGUF tensor, dequantize it, undo the rule's transform (archs.inverse_transform),
and unstack experts. Shards are flushed at SHARD_BYTES, so memory stays about one shard.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from ftbench.core.errors import FtbenchError
from ftbench.export.gguf import archs
from ftbench.export.gguf.experts import StackedTensor
from ftbench.export.gguf.hf import HFModel, HFTensor
from ftbench.export.gguf.reader import GGUFFile
from ftbench.export.gguf.writer import plan_tensors

SHARD_BYTES = 2 << 30


def hf_tensor_shapes(cfg: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor the HF model class holds for this config (built on the meta device)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(**cfg)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


def restored_tensors(g: GGUFFile, rule: archs.ArchRule, cfg: dict[str, Any]):
    """Yield (HF name, float32 array) for every weight, in the exporter's write order."""
    shapes = hf_tensor_shapes(cfg)
    skeleton = {n: HFTensor(n, "F32", s, g.path, 0, 4 * int(np.prod(s))) for n, s in shapes.items()}
    plans = plan_tensors(HFModel(g.path.parent, cfg, skeleton), rule, "f32")
    done: set[str] = set()
    fused: dict[str, np.ndarray] = {}
    for p in plans:
        if p.source is None or (p.gguf_name == "output.weight" and "embed" in p.source.name):
            continue  # generated (rope_freqs) or a tied embedding llama.cpp wants twice
        arr = _gguf_tensor(g, p.gguf_name, p.shape)
        arr = archs.inverse_transform(rule, cfg, archs.strip_prefix(p.source.name) or "", arr)
        if isinstance(p.source, HFTensor):
            done.add(p.source.name)
            yield p.source.name, arr
        elif p.source.half is None:
            for i, part in enumerate(p.source.parts):
                done.add(part.name)
                yield part.name, arr[i] if len(p.source.parts) > 1 else arr
        else:
            yield from _fill_fused(p.source, arr, fused, done)
    tied = cfg.get("tie_word_embeddings")
    missing = [n for n in shapes if n not in done and not (tied and n.startswith("lm_head.")) and not _skipped(rule, n)]
    if missing:
        raise FtbenchError(
            f"{g.path} has no tensor for {', '.join(missing[:5])} of the {cfg['architectures'][0]} model.",
            "The GGUF may be a pruned or partial file; import the complete model.",
        )


def _skipped(rule: archs.ArchRule, hf_name: str) -> bool:
    return bool(re.search(rule.skip_pattern, hf_name))


def _fill_fused(source: StackedTensor, arr: np.ndarray, fused: dict[str, np.ndarray], done: set[str]):
    """Put one half (gate or up) of a fused gate_up expert tensor in place; yield it once both halves are in."""
    part = source.parts[0]
    whole = fused.setdefault(part.name, np.zeros(part.shape, dtype=np.float32))
    rows = part.shape[1] // 2
    whole[:, source.half * rows : (source.half + 1) * rows] = arr
    done.add(f"{part.name}#{source.half}")
    if f"{part.name}#0" in done and f"{part.name}#1" in done:
        done.add(part.name)
        yield part.name, fused.pop(part.name)


def _gguf_tensor(g: GGUFFile, name: str, shape: tuple[int, ...]) -> np.ndarray:
    if not g.has_tensor(name):
        raise FtbenchError(
            f"{g.path} lacks the tensor {name} that a {g.arch} model needs.",
            "The GGUF may be truncated or written for another llama.cpp architecture; re-download or re-export it.",
        )
    arr = g.numpy(name)
    if tuple(arr.shape) != tuple(shape):
        raise FtbenchError(
            f"{g.path}: tensor {name} has shape {tuple(arr.shape)}, but its metadata implies {tuple(shape)}.",
            "The file's metadata and tensors disagree; re-export it.",
        )
    return arr


def write_safetensors(tensors, out_dir: Path) -> list[str]:
    """Write (name, array) pairs as model.safetensors, or shards plus an index beyond SHARD_BYTES; the file names."""
    from safetensors.numpy import save_file

    shards: list[dict[str, np.ndarray]] = [{}]
    size = 0
    files: list[str] = []
    weight_map: dict[str, str] = {}

    def flush(final: bool) -> None:
        name = "model.safetensors" if final and not files else f"model-{len(files) + 1:05d}.safetensors"
        save_file(shards[-1], str(out_dir / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(shards[-1], name))
        files.append(name)
        shards[-1] = {}

    for name, arr in tensors:
        if size and size + arr.nbytes > SHARD_BYTES:
            flush(final=False)
            size = 0
        shards[-1][name] = np.ascontiguousarray(arr, dtype=np.float32)
        size += arr.nbytes
    flush(final=True)
    if len(files) > 1:
        index = {"metadata": {"total_size": sum((out_dir / f).stat().st_size for f in files)}, "weight_map": weight_map}
        (out_dir / "model.safetensors.index.json").write_text(json.dumps(index, indent=2), encoding="utf-8")
    return files
