"""A SentencePiece (Llama-2 / TinyLlama / Mistral style) tokenizer survives the GGUF export end to end:
llama.cpp tokenizes the fixed verification text to the same ids as transformers, and the logits match."""

from __future__ import annotations

import json

import pytest
from export_models import make_sentencepiece_llama

from ftbench.cli import main

pytest.importorskip("sentencepiece")
pytest.importorskip("google.protobuf")  # transformers 5 needs it to read a tokenizer.model


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
