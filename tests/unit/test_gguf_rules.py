"""Pure-logic pieces of the GGUF exporter: pre-tokenizer detection, type names, LoRA scales, Q/K permutation."""

from __future__ import annotations

import numpy as np
import pytest

from ftbench.core.errors import FtbenchError
from ftbench.export.gguf.archs import llama3_rope_freqs, permute_rows
from ftbench.export.gguf.tokenizer import detect_pre
from ftbench.export.lora import module_scale
from ftbench.export.ollama import modelfile_text
from ftbench.export.quantize import normalize_types

LLAMA3_RX = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2_RX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def _split(rx: str) -> dict:
    return {
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": rx}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
            ],
        }
    }


def test_pre_tokenizer_detected_from_structure():
    assert detect_pre({"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}}) == "gpt-2"
    smollm = {
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [{"type": "Digits", "individual_digits": True}, {"type": "ByteLevel", "use_regex": True}],
        }
    }
    assert detect_pre(smollm) == "smollm"
    assert detect_pre(_split(LLAMA3_RX)) == "llama-bpe"
    assert detect_pre(_split(QWEN2_RX)) == "qwen2"


def test_unknown_pre_tokenizer_is_refused_with_the_known_names():
    with pytest.raises(FtbenchError) as err:
        detect_pre({"pre_tokenizer": {"type": "Whitespace"}})
    assert "Whitespace" in err.value.message and "llama-bpe" in err.value.hint


def test_quant_names_normalised_and_unknown_refused():
    assert normalize_types("Q4_K_M, q8_0,q4_k_m") == ["q4_k_m", "q8_0"]
    with pytest.raises(FtbenchError) as err:
        normalize_types("q4_k_x")
    assert "'q4_k_x'" in err.value.message and "Q4_K_M" in err.value.hint


def test_lora_scale_follows_rslora_and_patterns():
    cfg = {"r": 8, "lora_alpha": 16, "rank_pattern": {"down_proj": 4}, "alpha_pattern": {"v_proj": 32}}
    assert module_scale(cfg, "model.layers.0.self_attn.q_proj") == pytest.approx(2.0)
    assert module_scale(cfg, "model.layers.0.mlp.down_proj") == pytest.approx(4.0)
    assert module_scale(cfg, "model.layers.0.self_attn.v_proj") == pytest.approx(4.0)
    assert module_scale({**cfg, "use_rslora": True}, "model.layers.0.self_attn.q_proj") == pytest.approx(
        16 / np.sqrt(8)
    )


def test_qk_permutation_keeps_rotary_attention_scores():
    """HF rotate-half rope on W equals adjacent-pair rope on the permuted W (what llama.cpp computes)."""
    rng = np.random.default_rng(0)
    n_head, hd, d_in = 2, 8, 16
    wq, wk, x, y = (
        rng.normal(size=(n_head * hd, d_in)),
        rng.normal(size=(n_head * hd, d_in)),
        rng.normal(size=d_in),
        rng.normal(size=d_in),
    )
    theta = 10000.0 ** (-np.arange(hd // 2) * 2 / hd)

    def rot_half(v, pos):  # HF: pair i with i + hd/2
        a, b = v[: hd // 2], v[hd // 2 :]
        c, s = np.cos(pos * theta), np.sin(pos * theta)
        return np.concatenate([a * c - b * s, b * c + a * s])

    def rot_adjacent(v, pos):  # ggml NORM: pair 2i with 2i+1
        a, b = v[0::2], v[1::2]
        c, s = np.cos(pos * theta), np.sin(pos * theta)
        out = np.empty_like(v)
        out[0::2], out[1::2] = a * c - b * s, b * c + a * s
        return out

    q_hf, k_hf = (wq @ x).reshape(n_head, hd), (wk @ y).reshape(n_head, hd)
    q_gg, k_gg = (permute_rows(wq, n_head) @ x).reshape(n_head, hd), (permute_rows(wk, n_head) @ y).reshape(n_head, hd)
    for h in range(n_head):
        hf = rot_half(q_hf[h], 5) @ rot_half(k_hf[h], 2)
        gg = rot_adjacent(q_gg[h], 5) @ rot_adjacent(k_gg[h], 2)
        assert gg == pytest.approx(hf, rel=1e-10)


def test_llama3_rope_freqs_bands():
    cfg = {
        "hidden_size": 64,
        "num_attention_heads": 2,
        "rope_parameters": {
            "rope_type": "llama3",
            "rope_theta": 500000.0,
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192,
        },
    }
    f = llama3_rope_freqs(cfg)
    assert f.shape == (16,) and f[0] == 1.0 and f[-1] == pytest.approx(8.0)
    assert np.all(np.diff(f) >= 0)
    assert llama3_rope_freqs({"hidden_size": 64, "num_attention_heads": 2}) is None


def test_modelfile_for_chatml():
    text = modelfile_text("m-Q4_K_M.gguf", "{{'<|im_start|>' + m['role']}}", "<|im_end|>", n_ctx=8192)
    assert text.startswith("FROM ./m-Q4_K_M.gguf\n")
    assert "<|im_start|>{{ .Role }}" in text and text.count('PARAMETER stop "<|im_end|>"') == 1
    assert "PARAMETER num_ctx 8192" in text
    assert "No TEMPLATE" in modelfile_text("m.gguf", "[INST] custom", "</s>")


def test_sentencepiece_vocab_types_scores_and_padding(tmp_path):
    """Llama-2/Mistral/Gemma-style tokenizer.model: piece types, real scores, added tokens, rows padding."""
    import json

    spm = pytest.importorskip("sentencepiece")
    from tinymodels import corpus

    from ftbench.export.gguf.tokenizer import BYTE, CONTROL, NORMAL, UNKNOWN, UNUSED, USER_DEFINED, build_vocab

    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus()),
        model_prefix=str(tmp_path / "tokenizer"),
        vocab_size=400,
        model_type="bpe",
        byte_fallback=True,
        user_defined_symbols=["<|im_start|>", "<|im_end|>"],
        minloglevel=2,
        num_threads=1,
    )
    added = [
        {"id": 3, "content": "<|im_start|>", "special": True},
        {"id": 4, "content": "<|im_end|>", "special": True},
        {"id": 400, "content": "<tool>", "special": False},
    ]
    (tmp_path / "tokenizer.json").write_text(json.dumps({"added_tokens": added}))
    vocab = build_vocab(tmp_path, n_rows=408, gguf_arch="llama")
    assert vocab.model == "llama" and vocab.pre == "default" and vocab.add_space_prefix is True
    assert len(vocab.tokens) == len(vocab.types) == len(vocab.scores) == 408
    assert (vocab.tokens[0], vocab.types[0]) == ("<unk>", UNKNOWN)
    assert vocab.types[1] == vocab.types[2] == CONTROL  # <s>, </s>
    assert vocab.types[3] == CONTROL and vocab.tokens[3] == "<|im_start|>"
    assert vocab.tokens[5] == "<0x00>" and vocab.types[5] == BYTE
    assert (vocab.tokens[400], vocab.types[400]) == ("<tool>", USER_DEFINED)
    assert vocab.types[407] == UNUSED and vocab.tokens[407] == "[PAD407]"
    assert NORMAL in vocab.types and any(s < 0 for s in vocab.scores[300:399])  # real merge scores
    assert build_vocab(tmp_path, n_rows=408, gguf_arch="gemma3").add_space_prefix is False
