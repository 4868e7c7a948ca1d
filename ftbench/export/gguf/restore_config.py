"""config.json for `ftbench import`: the GGUF's `{arch}.*` metadata read back into transformers' config.

The inverse of archs.write_kv: the keys every architecture shares are read here, and each rule's
`restore_kv` adds its own (Granite's multipliers, Gemma's softcaps and windows, Phi-3's partial rotary).
Values llama.cpp hard-codes rather than stores (Gemma's query scale, Qwen-MoE's top-k renormalisation)
are set to what llama.cpp computes, so the imported model computes what the GGUF does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ftbench.core.errors import FtbenchError
from ftbench.export.gguf import archs
from ftbench.export.gguf.reader import GGUFFile

# HF config key <- GGUF `{arch}.` key, for the hyper-parameters every non-GPT-2 architecture writes.
_COMMON = {
    "max_position_embeddings": "context_length",
    "hidden_size": "embedding_length",
    "num_hidden_layers": "block_count",
    "intermediate_size": "feed_forward_length",
    "num_attention_heads": "attention.head_count",
    "num_key_value_heads": "attention.head_count_kv",
    "rms_norm_eps": "attention.layer_norm_rms_epsilon",
    "head_dim": "attention.key_length",
    "rope_theta": "rope.freq_base",
    "num_experts": "expert_count",
    "num_experts_per_tok": "expert_used_count",
    "moe_intermediate_size": "expert_feed_forward_length",
    "shared_expert_intermediate_size": "expert_shared_feed_forward_length",
}
_GPT2 = {
    "n_positions": "context_length",
    "n_embd": "embedding_length",
    "n_layer": "block_count",
    "n_inner": "feed_forward_length",
    "n_head": "attention.head_count",
    "layer_norm_epsilon": "attention.layer_norm_epsilon",
}


def rule_of(g: GGUFFile) -> archs.ArchRule:
    rule = next((r for r in archs.RULES if r.gguf_arch == g.arch), None)
    if rule is None:
        raise FtbenchError(
            f"{g.path} has architecture {g.arch!r}, which ftbench cannot import.",
            "Importable: " + ", ".join(r.gguf_arch for r in archs.RULES) + ".",
        )
    return rule


def restored_config(g: GGUFFile, rule: archs.ArchRule) -> dict[str, Any]:
    """The config.json values (a plain dict, with `architectures` and `model_type`) for the GGUF's model."""
    cfg: dict[str, Any] = {"architectures": [rule.hf_architectures[0]]}
    for key, gkey in (_GPT2 if rule.gguf_arch == "gpt2" else _COMMON).items():
        value = g.arch_get(gkey)
        if value is not None:
            cfg[key] = value
    cfg["vocab_size"] = g.shape("token_embd.weight")[0]
    if rule.gguf_arch != "gpt2":
        cfg.setdefault("num_key_value_heads", cfg["num_attention_heads"])
        cfg.setdefault("head_dim", cfg["hidden_size"] // cfg["num_attention_heads"])
        _rope_scaling(g, cfg)
    cfg["tie_word_embeddings"] = not g.has_tensor("output.weight") or g.same_bytes("output.weight", "token_embd.weight")
    for kind in ("bos", "eos", "pad"):  # stated even when absent: class defaults (Phi-3's pad 32000) may not fit
        token = g.get(f"tokenizer.ggml.{kind}_token_id")
        cfg[f"{kind}_token_id"] = int(token) if token is not None and int(token) < cfg["vocab_size"] else None
    if rule.restore_kv:
        rule.restore_kv(g, cfg)
    cfg["model_type"] = model_type_of(cfg["architectures"][0])
    return cfg


def model_type_of(hf_architecture: str) -> str:
    """transformers' model_type for a causal-LM class (Gemma3ForCausalLM -> gemma3_text)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return next(k for k, v in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.items() if v == hf_architecture)


def _rope_scaling(g: GGUFFile, cfg: dict[str, Any]) -> None:
    """Linear and YaRN scaling from the metadata; Llama-3.1-style scaling from the rope_freqs tensor."""
    kind = g.arch_get("rope.scaling.type")
    factor = g.arch_get("rope.scaling.factor")
    if kind in ("linear", "yarn") and factor:
        cfg["rope_scaling"] = {"rope_type": kind, "factor": float(factor)}
        orig = g.arch_get("rope.scaling.original_context_length")
        if kind == "yarn" and orig:
            cfg["rope_scaling"]["original_max_position_embeddings"] = int(orig)
    if g.has_tensor("rope_freqs.weight"):
        cfg["rope_scaling"] = _llama3_scaling(g, cfg)


def _llama3_scaling(g: GGUFFile, cfg: dict[str, Any]) -> dict[str, Any]:
    """The Llama-3.1 rope parameters that give this file's rope_freqs tensor.

    The tensor holds only the resulting divisors, so the factor is read from it and the other three
    parameters are found among the values Llama 3.x and its fine-tunes use; each candidate is checked by
    recomputing the tensor with the exporter's own formula.
    """
    freqs = g.numpy("rope_freqs.weight")
    factor = float(freqs.max())
    for orig in [2**k for k in range(6, 18)]:
        for low, high in ((1.0, 4.0), (1.0, 2.0), (1.0, 8.0)):
            params = {
                "rope_type": "llama3",
                "factor": factor,
                "low_freq_factor": low,
                "high_freq_factor": high,
                "original_max_position_embeddings": orig,
            }
            want = archs.llama3_rope_freqs({**cfg, "rope_scaling": params})
            if want is not None and want.shape == freqs.shape and np.allclose(want, freqs, rtol=1e-6):
                return params
    raise FtbenchError(
        f"{g.path} has a rope_freqs tensor whose Llama-3.1 scaling parameters could not be recovered.",
        "Import the original Hugging Face model instead of its GGUF.",
    )
