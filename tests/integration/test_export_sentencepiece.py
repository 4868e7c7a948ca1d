"""A SentencePiece (Llama-2 / TinyLlama / Mistral style) tokenizer survives the GGUF export end to end:
llama.cpp tokenizes the fixed verification text to the same ids as transformers, and the logits match."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftbench.cli import main

pytest.importorskip("sentencepiece")
pytest.importorskip("google.protobuf")  # transformers 5 needs it to read a tokenizer.model


def make_sentencepiece_llama(out: Path, corpus_lines: list[str]) -> Path:
    import sentencepiece as spm
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaTokenizer

    out.mkdir(parents=True)
    text = out.parent / "corpus.txt"
    text.write_text("\n".join(corpus_lines), encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(text), model_prefix=str(out / "tokenizer"), vocab_size=400, model_type="bpe", character_coverage=1.0,
        byte_fallback=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2,
    )
    (out / "tokenizer.vocab").unlink()
    tokenizer = LlamaTokenizer.from_pretrained(out)
    tokenizer.save_pretrained(out)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out)
    return out


def test_sentencepiece_llama_exports_with_identical_tokens(workspace, tmp_path):
    from tinymodels import corpus

    model = make_sentencepiece_llama(tmp_path / "sp-llama", corpus())
    assert main(["--workspace", str(workspace.root), "export", str(model), "--quant", "f32,q8_0", "--wait"]) == 0
    (report,) = list(workspace.exports_dir.glob("*/verify.json"))
    checks = {c["type"]: c for c in json.loads(report.read_text())["checks"]}
    assert set(checks) == {"f32", "q8_0"}
    assert all(c["passed"] and c["tokens_match"] for c in checks.values())
    assert checks["f32"]["nmse"] < 1e-5 and checks["f32"]["top1"] == 1.0
    assert checks["q8_0"]["nmse"] < 1e-2
