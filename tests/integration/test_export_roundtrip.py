"""`ftbench import X.gguf` then `ftbench export` of the imported folder, per family transformers can import.

The imported folder is the reference: the second GGUF must tokenize like it and match its logits (F16 NMSE
< 1e-4). Gemma-3 with its SentencePiece tokenizer is in test_export_tokenizers.py.
"""

from __future__ import annotations

import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("accelerate")  # transformers' GGUF loader needs it

from export_models import make_arch_model, make_sentencepiece_llama  # noqa: E402

from ftbench.export.gguf.writer import convert  # noqa: E402
from ftbench.export.importer import import_gguf  # noqa: E402
from ftbench.export.verify import HFReference, check_gguf  # noqa: E402

FAMILIES = {"llama": {}, "qwen2": {}, "qwen3": {}, "qwen2_moe": {}, "qwen3_moe": {}}


def _round_trip(model_dir, tmp_path):
    first = convert(model_dir, tmp_path / "first-F32.gguf", "f32")["path"]
    imported = import_gguf(first, tmp_path / "imported")
    ref = HFReference(imported)
    again = convert(imported, tmp_path / "again-F16.gguf", "f16")["path"]
    return imported, ref, check_gguf(again, ref, "f16")


@pytest.mark.parametrize("arch", list(FAMILIES))
def test_import_then_export_round_trips(arch, tmp_path):
    model = make_arch_model(tmp_path / arch, arch, **FAMILIES[arch])
    _, ref, res = _round_trip(model, tmp_path)
    if arch in ("llama", "qwen2"):  # transformers rebuilds Qwen3's tokenizer from a GGUF with another digit split
        assert ref.ids == HFReference(model).ids
    assert res.tokens_match, res.problems
    assert res.passed and res.nmse < 1e-4


def test_import_keeps_the_sentencepiece_model(tmp_path):
    import sentencepiece as spm
    from tinymodels import corpus

    model = make_sentencepiece_llama(tmp_path / "sp-llama", corpus())
    imported, ref, res = _round_trip(model, tmp_path)
    kept = spm.SentencePieceProcessor(model_file=str(imported / "tokenizer.model"))
    original = spm.SentencePieceProcessor(model_file=str(model / "tokenizer.model"))
    pieces = [(kept.id_to_piece(i), kept.get_score(i), kept.is_byte(i)) for i in range(kept.vocab_size())]
    assert pieces == [
        (original.id_to_piece(i), original.get_score(i), original.is_byte(i)) for i in range(original.vocab_size())
    ]
    assert res.tokens_match and res.passed and res.nmse < 1e-4, res.problems
