"""Tiny random models for the GGUF export tests, one per architecture, built at test time.

They reuse tests/tinymodels.py (random weights + a byte-level BPE tokenizer trained here) with the few
config values llama.cpp needs to compute the same function as transformers: Gemma's attention scale is
hard-coded in llama.cpp to 1/sqrt(head_dim), and Gemma 2 always ties its output to the embedding.
K-quant tests use rows of 256 (K-quant block size) so llama_model_quantize does not fall back.
"""

from __future__ import annotations

import json
from pathlib import Path

from tinymodels import make_tiny_causal_lm

# HF model_type -> config overrides that keep llama.cpp and transformers computing the same thing.
ARCH_OVERRIDES: dict[str, dict] = {
    "llama": {},
    "mistral": {},
    "qwen2": {"tie_word_embeddings": True},  # Qwen2.5 small models tie; exercises the "no output tensor" path
    "qwen3": {},
    "gemma2": {"query_pre_attn_scalar": 16, "tie_word_embeddings": True},
    "gemma3_text": {"query_pre_attn_scalar": 16, "tie_word_embeddings": True},
    "phi3": {},
    "gpt2": {},
}


def make_arch_model(out_dir: Path, arch: str, **overrides) -> Path:
    """A tiny random `arch` model folder (safetensors + tokenizer + chat template)."""
    path = make_tiny_causal_lm(out_dir, arch=arch, **{**ARCH_OVERRIDES[arch], **overrides})
    if arch == "phi3":
        _add_phi3_specials(path)
    return path


def _add_phi3_specials(path: Path) -> None:
    """Phi-3's vocabulary has <s>, </s>, <unk>, and llama.cpp's phi3 loader looks them up."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    tok.add_special_tokens({"additional_special_tokens": ["<s>", "</s>", "<unk>"]})
    model = AutoModelForCausalLM.from_pretrained(path)
    model.resize_token_embeddings(len(tok), mean_resizing=False)
    model.config.vocab_size = len(tok)
    tok.save_pretrained(path)
    model.save_pretrained(path)
    # Phi-3's special tokens strip the whitespace after them (rstrip), which llama.cpp's phi3 vocab mimics.
    tj = path / "tokenizer.json"
    data = json.loads(tj.read_text(encoding="utf-8"))
    for added in data["added_tokens"]:
        added["rstrip"] = True
    tj.write_text(json.dumps(data), encoding="utf-8")


def make_kquant_llama(out_dir: Path) -> Path:
    """A llama whose every matrix row is a multiple of 256, so Q4_K_M really uses Q4_K/Q6_K blocks."""
    return make_tiny_causal_lm(out_dir, arch="llama", hidden_size=256, intermediate_size=512)


def make_lora(base_dir: Path, out_dir: Path, **lora_kwargs) -> Path:
    """A PEFT LoRA adapter with random (non-zero) B, so applying it visibly changes the logits."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    cfg = dict(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "down_proj"], init_lora_weights=False)
    cfg.update(lora_kwargs)
    model = get_peft_model(base, LoraConfig(**cfg))
    model.save_pretrained(out_dir)
    # adapter_config.json records the base path, as a training run's adapter does.
    return out_dir
