"""`ftbench import X.gguf` then export of the imported folder, for every family the exporter writes.

Per family: a tiny random HF model -> GGUF (F32 or F16) -> `ftbench import` -> GGUF again. The imported
tokenizer must give the original's ids on a probe (digits, whitespace runs, punctuation, CJK, Korean, emoji,
chat specials), the imported model's logits must match the original's (NMSE < 1e-5 from F32, < 1e-4 from F16),
and the second GGUF must hold the first one's tensors byte for byte and the same vocabulary.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("gguf")

from export_models import make_arch_model, make_sentencepiece_llama  # noqa: E402

from ftbench.cli import main  # noqa: E402
from ftbench.export.gguf.tokenizer import PRE_PROBE  # noqa: E402
from ftbench.export.gguf.writer import convert  # noqa: E402
from ftbench.export.verify import VERIFY_TEXT, HFReference, nmse  # noqa: E402

PROBE = PRE_PROBE + "\n" + VERIFY_TEXT
NMSE_LIMIT = {"f32": 1e-5, "f16": 1e-4}

# case -> (HF model_type, config overrides, GGUF type written first). Folder names are the case names, so
# general.name says "phi3" for Phi-3 as it does for real checkpoints (llama.cpp keys Phi-3's rstrip on it).
CASES = {
    "llama": ("llama", {}, "f32"),
    "llama3-rope": (
        "llama",
        {
            "rope_parameters": {
                "rope_type": "llama3",
                "rope_theta": 500000.0,
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 64,
            }
        },
        "f32",
    ),
    "mistral-nemo": ("mistral", {"head_dim": 32}, "f16"),
    "mixtral": ("mixtral", {}, "f32"),
    "qwen2": ("qwen2", {}, "f16"),
    "qwen3": ("qwen3", {}, "f32"),
    "qwen2_moe": ("qwen2_moe", {}, "f32"),
    "qwen3_moe": ("qwen3_moe", {}, "f16"),
    "gemma": ("gemma", {}, "f32"),
    "gemma2": ("gemma2", {"sliding_window": 32}, "f16"),
    "gemma3_text": (
        "gemma3_text",
        {"sliding_window": 32, "layer_types": ["sliding_attention", "full_attention"]},
        "f32",
    ),
    "olmo2": ("olmo2", {}, "f32"),
    "granite": ("granite", {}, "f16"),
    "smollm3": ("smollm3", {}, "f32"),
    "phi3": ("phi3", {}, "f32"),
    "phi4": ("phi3", {"partial_rotary_factor": 0.75, "tie_word_embeddings": True}, "f16"),
    "gpt2": ("gpt2", {}, "f32"),
}


def gguf_contents(path) -> tuple[dict[str, tuple[int, bytes]], dict[str, object]]:
    """(tensor name -> (type, bytes), tokenizer.ggml.* and chat template values) of a GGUF file."""
    import gguf

    reader = gguf.GGUFReader(path)
    tensors = {t.name: (int(t.tensor_type), np.asarray(t.data).tobytes()) for t in reader.tensors}
    vocab = {k: f.contents() for k, f in reader.fields.items() if k.startswith(("tokenizer.ggml.", "tokenizer.chat"))}
    return tensors, vocab


def import_with_cli(gguf_path, workspace, name: str):
    assert (
        main(["--workspace", str(workspace.root), "import", str(gguf_path), "--out", str(workspace.root / name)]) == 0
    )
    return workspace.root / name


def assert_round_trip(original, first, imported, tmp_path, outtype: str) -> None:
    from transformers import AutoTokenizer

    want = AutoTokenizer.from_pretrained(original)(PROBE)["input_ids"]
    assert AutoTokenizer.from_pretrained(imported)(PROBE)["input_ids"] == want
    ref, back = HFReference(original), HFReference(imported)
    assert back.ids == ref.ids
    assert nmse(ref.logits, back.logits) < NMSE_LIMIT[outtype]
    again = convert(imported, tmp_path / f"again-{outtype}.gguf", outtype)["path"]
    (t1, v1), (t2, v2) = gguf_contents(first), gguf_contents(again)
    assert sorted(t2) == sorted(t1)
    assert [n for n in t1 if t1[n] != t2[n]] == []  # every tensor identical, type and bytes
    assert v2 == v1  # same vocabulary type, tokens, types, merges/scores, specials, flags, chat template


# The default run takes one case per distinct quirk (Q/K permutation, stacked and shared experts, Gemma's +1 and
# windows, Granite's multipliers, Phi-3's rstrip specials, GPT-2's Conv1D); variants of the same quirks are slow.
SLOW = {"llama3-rope", "mistral-nemo", "qwen2", "qwen3", "qwen3_moe", "gemma2", "olmo2", "smollm3", "phi4"}


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c in SLOW else c for c in CASES])
def test_import_then_export_round_trips(case, tmp_path, workspace):
    arch, overrides, outtype = CASES[case]
    original = make_arch_model(tmp_path / case, arch, phi3_specials=case != "phi4", **overrides)
    first = convert(original, tmp_path / f"first-{outtype}.gguf", outtype)["path"]
    imported = import_with_cli(first, workspace, f"{case}-imported")
    assert_round_trip(original, first, imported, tmp_path, outtype)


@pytest.mark.slow  # a detached export job (~1 min on 2 shared cores); the job path itself is in test_export_cli.py
def test_cli_export_of_an_imported_gemma_verifies(tmp_path, workspace, capsys):
    """As a user does it: `ftbench import` a Gemma GGUF (a family transformers' GGUF loader cannot rebuild), then
    `ftbench export` the imported folder as a job, which verifies the new file against the imported model."""
    import json

    pytest.importorskip("llama_cpp")
    original = make_arch_model(tmp_path / "gemma", "gemma")
    first = convert(original, tmp_path / "gemma-F32.gguf", "f32")["path"]
    imported = import_with_cli(first, workspace, "gemma-imported")
    rc = main(["--workspace", str(workspace.root), "export", str(imported), "--quant", "f16", "--wait"])
    assert rc == 0, capsys.readouterr().err
    job_dir = next(workspace.exports_dir.iterdir())
    status = json.loads((job_dir / "status.json").read_text())
    assert status["state"] == "succeeded" and status["result"]["verified"]
    (check,) = json.loads((job_dir / "verify.json").read_text())["checks"]
    assert check["tokens_match"] and check["nmse"] < 1e-4


def test_import_keeps_the_sentencepiece_model(tmp_path, workspace):
    import sentencepiece as spm
    from tinymodels import corpus

    original = make_sentencepiece_llama(tmp_path / "sp-llama", corpus())
    first = convert(original, tmp_path / "first-f32.gguf", "f32")["path"]
    imported = import_with_cli(first, workspace, "sp-imported")
    kept = spm.SentencePieceProcessor(model_file=str(imported / "tokenizer.model"))
    source = spm.SentencePieceProcessor(model_file=str(original / "tokenizer.model"))
    pieces = [(kept.id_to_piece(i), kept.get_score(i), kept.is_byte(i)) for i in range(kept.vocab_size())]
    assert pieces == [
        (source.id_to_piece(i), source.get_score(i), source.is_byte(i)) for i in range(source.vocab_size())
    ]
    assert_round_trip(original, first, imported, tmp_path, "f32")


def test_quantized_gguf_imports_and_requantizes_to_the_same_blocks(tmp_path, workspace):
    """Q8_0 dequantized on import and quantized again on export gives back the very same blocks."""
    original = make_arch_model(tmp_path / "llama", "llama")
    first = convert(original, tmp_path / "first-q8_0.gguf", "q8_0")["path"]
    imported = import_with_cli(first, workspace, "q8-imported")
    ref, back = HFReference(original), HFReference(imported)
    assert back.ids == ref.ids and nmse(ref.logits, back.logits) < 1e-2
    again = convert(imported, tmp_path / "again-q8_0.gguf", "q8_0")["path"]
    (t1, _), (t2, _) = gguf_contents(first), gguf_contents(again)
    assert t1 == t2


def test_k_quant_gguf_imports_as_the_model_llama_cpp_runs(tmp_path, workspace):
    """A Q4_K_M file, as users download them: the imported F32 model computes what llama.cpp computes from that
    file (up to llama.cpp's own Q8_K activation rounding), and stays near the unquantized original."""
    pytest.importorskip("llama_cpp")
    from export_models import make_kquant_llama

    from ftbench.export.quantize import quantize_with_llama_cpp
    from ftbench.export.verify import check_gguf

    original = make_kquant_llama(tmp_path / "llama")
    f16 = convert(original, tmp_path / "f16.gguf", "f16")["path"]
    q4 = quantize_with_llama_cpp(f16, tmp_path / "q4_k_m.gguf", "q4_k_m")
    imported = import_with_cli(q4, workspace, "q4-imported")
    back = HFReference(imported)
    res = check_gguf(q4, back, "q8_0")
    assert res.tokens_match and res.nmse < 1e-3, res.problems
    ref = HFReference(original)
    assert back.ids == ref.ids and nmse(ref.logits, back.logits) < 0.05


def test_import_refuses_what_it_cannot_rebuild(tmp_path, workspace):
    """A pre-tokenizer with no tokenizer.json counterpart is refused by name, and nothing is left behind."""
    import gguf

    from ftbench.core.errors import FtbenchError
    from ftbench.export.importer import import_gguf

    original = make_arch_model(tmp_path / "llama", "llama")
    first = convert(original, tmp_path / "first.gguf", "f32", pre="falcon")["path"]
    with pytest.raises(FtbenchError) as err:
        import_gguf(first, tmp_path / "out")
    assert "'falcon'" in err.value.message and "gpt-2" in err.value.hint
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()
    assert gguf.GGUFReader(first).get_field("tokenizer.ggml.pre").contents() == "falcon"


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    return make_arch_model(tmp_path_factory.mktemp("pre") / "llama", "llama")


@pytest.mark.parametrize("pre", ["gpt-2", "smollm", "llama-bpe", "qwen2", "tekken", "gpt-4o"])
def test_rebuilt_pre_tokenizer_splits_like_llama_cpp(pre, tiny_llama, tmp_path):
    """Each llama.cpp pre-tokenizer name the importer rebuilds: transformers with the rebuilt tokenizer.json gives
    llama.cpp's ids on the probe, and the exporter reads the structure back to the same name."""
    pytest.importorskip("llama_cpp")
    import json

    from transformers import AutoTokenizer

    from ftbench.export.gguf.reader import GGUFFile
    from ftbench.export.gguf.restore_tokenizer import write_tokenizer
    from ftbench.export.gguf.tokenizer import detect_pre
    from ftbench.export.verify import load_gguf

    path = convert(tiny_llama, tmp_path / f"{pre}.gguf", "f32", pre=pre)["path"]
    out = tmp_path / "tok"
    out.mkdir()
    write_tokenizer(GGUFFile(tmp_path / f"{pre}.gguf"), out)
    llm = load_gguf(path, vocab_only=True)
    try:
        want = list(llm.tokenize(PRE_PROBE.encode("utf-8"), add_bos=False, special=False))
    finally:
        llm.close()
    assert AutoTokenizer.from_pretrained(out)(PRE_PROBE, add_special_tokens=False)["input_ids"] == want
    assert detect_pre(json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))) == pre
