"""PEFT LoRA adapter -> llama.cpp LoRA adapter GGUF (no merge), loaded on top of the base GGUF.

llama.cpp applies `scale * B @ A` with one scale from `adapter.lora.alpha / r`. PEFT can give each module its
own scale (rsLoRA, rank_pattern, alpha_pattern), so we fold every module's own scale into B and write
alpha = 0, which makes llama.cpp use the user's scale (1.0) unchanged. What LoRA tensors cannot express
(DoRA magnitudes, fully trained embeddings or heads) is refused with the reason, and the caller merges.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from ftbench.catalog.hf_files import text_config
from ftbench.core.errors import FtbenchError
from ftbench.export.gguf import archs
from ftbench.export.gguf.hf import load_hf_model, read_tensors
from ftbench.export.gguf.partial import partial_gguf
from ftbench.export.merge import AdapterInfo


class NotExpressible(FtbenchError):
    """The adapter cannot be a llama.cpp LoRA GGUF; the message says why (the export merges instead)."""


def _pattern_value(patterns: dict[str, Any], module: str, default: Any) -> Any:
    """PEFT's rank_pattern/alpha_pattern lookup: a key matches the module name or a dotted suffix of it."""
    for key, value in (patterns or {}).items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


def module_scale(cfg: dict[str, Any], module: str) -> float:
    r = int(_pattern_value(cfg.get("rank_pattern") or {}, module, cfg.get("r", 8)))
    alpha = float(_pattern_value(cfg.get("alpha_pattern") or {}, module, cfg.get("lora_alpha", r)))
    return alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r


def why_not_expressible(info: AdapterInfo, tensor_names: list[str]) -> str | None:
    """A reason the adapter cannot be written as LoRA tensors, or None."""
    if info.peft_type != "LORA":
        return f"it is a {info.peft_type} adapter, not LoRA"
    if info.use_dora:
        return "it uses DoRA, whose magnitude vectors llama.cpp adapters cannot hold"
    if info.config.get("modules_to_save") or any(".modules_to_save." in n for n in tensor_names):
        return (
            "it trains whole modules (modules_to_save, e.g. embeddings or the head), which LoRA tensors cannot express"
        )
    if any("lora_embedding_" in n for n in tensor_names):
        return "it trains the token embeddings (LoRA on embed_tokens)"
    return None


def _adapter_file(adapter_dir: Path) -> Path:
    path = adapter_dir / "adapter_model.safetensors"
    if not path.is_file():
        raise FtbenchError(
            f"{adapter_dir} has no adapter_model.safetensors.", "Save the adapter with safe_serialization=True."
        )
    return path


def write_lora_gguf(info: AdapterInfo, out_path: str | Path, name: str | None = None) -> dict[str, Any]:
    """Write the adapter GGUF (F32 tensors); raises NotExpressible when it must be merged instead."""
    import gguf

    tensors = read_tensors(_adapter_file(info.path))
    reason = why_not_expressible(info, list(tensors))
    if reason:
        raise NotExpressible(
            f"The adapter in {info.path} cannot be exported without merging: {reason}.",
            "Export without --adapter-only; ftbench merges it into the base instead.",
        )
    base = load_hf_model(info.base_dir)
    rule = archs.rule_for(base)
    cfg = text_config(base.config)
    arch_enum = next(k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == rule.gguf_arch)
    tmap = gguf.get_tensor_name_map(arch_enum, archs.n_blocks(base))
    pairs: dict[str, dict[str, Any]] = {}
    for tname, t in tensors.items():
        m = re.match(r"^(?:base_model\.model\.)?(.+)\.lora_([AB])(?:\.[^.]+)?\.weight$", tname)
        if not m:
            raise NotExpressible(
                f"Adapter tensor {tname} in {info.path} is not a LoRA A/B matrix.",
                "Export without --adapter-only to merge it.",
            )
        module, which = m.group(1), m.group(2)
        pairs.setdefault(module, {})[which] = t
    out = Path(out_path)
    with partial_gguf(out, rule.gguf_arch) as w:
        w.add_type(gguf.GGUFType.ADAPTER)
        w.add_string(gguf.Keys.Adapter.TYPE, "lora")
        w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, 0.0)  # scales are folded into B below
        w.add_name(name or f"{info.path.name} (LoRA)")
        plan = []
        for module in sorted(pairs, key=lambda s: [int(p) if p.isdigit() else p for p in s.split(".")]):
            ab = pairs[module]
            if set(ab) != {"A", "B"}:
                raise NotExpressible(
                    f"Module {module} in {info.path} lacks its lora_A or lora_B tensor.", "Re-save the adapter."
                )
            hf_name = archs.strip_prefix(module) or module
            gname = tmap.get_name(hf_name + ".weight", try_suffixes=(".weight",))
            if gname is None:
                raise NotExpressible(
                    f"Adapted module {module} has no GGUF counterpart for {rule.gguf_arch}.",
                    "Export without --adapter-only.",
                )
            plan.append((module, hf_name, gname, ab["A"], ab["B"]))
            w.add_tensor_info(gname + ".lora_a", ab["A"].shape, np.dtype(np.float32), 4 * int(np.prod(ab["A"].shape)))
            w.add_tensor_info(gname + ".lora_b", ab["B"].shape, np.dtype(np.float32), 4 * int(np.prod(ab["B"].shape)))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        for module, hf_name, _gname, a, b in plan:
            b_arr = b.numpy() * np.float32(module_scale(info.config, module))
            if rule.permute_qk and ".self_attn.q_proj" in hf_name:
                b_arr = archs.permute_rows(b_arr, int(cfg["num_attention_heads"]))
            elif rule.permute_qk and ".self_attn.k_proj" in hf_name:
                b_arr = archs.permute_rows(b_arr, int(cfg.get("num_key_value_heads") or cfg["num_attention_heads"]))
            w.write_tensor_data(np.ascontiguousarray(a.numpy(), dtype=np.float32))
            w.write_tensor_data(np.ascontiguousarray(b_arr, dtype=np.float32))
    return {"path": str(out), "modules": len(plan), "bytes": out.stat().st_size, "arch": rule.gguf_arch}
