"""Per-architecture GGUF parity on tiny random models: F32, F16 and Q8_0 against transformers.

Each model is built at test time with a tokenizer trained at test time; the GGUF is loaded in llama.cpp and
must tokenize the verification text to the same ids and produce logits within the thresholds
(F32: NMSE < 1e-5 and identical top-1; F16/BF16: < 1e-4; Q8_0: < 1e-2).
"""

from __future__ import annotations

from itertools import islice

import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("transformers")

from export_models import make_arch_model  # noqa: E402

from ftbench.export.gguf.writer import convert  # noqa: E402
from ftbench.export.verify import HFReference, check_gguf  # noqa: E402

CASES = {
    "llama": {},
    # Llama-3.1-style rope scaling: exported as the rope_freqs tensor, not as metadata.
    "llama3-rope": {
        "rope_parameters": {
            "rope_type": "llama3",
            "rope_theta": 500000.0,
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64,
        }
    },
    "mistral": {},
    "qwen2": {},
    "qwen3": {},
    # Windows shorter than the verification text, so sliding-window attention really matters.
    "gemma2": {"sliding_window": 32},
    "gemma3_text": {"sliding_window": 32, "layer_types": ["sliding_attention", "full_attention"]},
    "phi3": {},
    "gpt2": {},
    "gemma": {},
    "mixtral": {},
    "qwen2_moe": {},
    "qwen3_moe": {},
    "olmo2": {},
    "granite": {},
    "smollm3": {},
    # Mistral-Nemo: head_dim (32) is not hidden_size / heads (16).
    "mistral-nemo": {"head_dim": 32},
    # Phi-4(-mini): the phi3 graph with a byte-level BPE tokenizer, partial rotary and tied embeddings.
    "phi4": {"partial_rotary_factor": 0.75, "tie_word_embeddings": True},
}
ARCH_OF_CASE = {"llama3-rope": "llama", "mistral-nemo": "mistral", "phi4": "phi3"}


def build_case(case: str, root):
    arch = ARCH_OF_CASE.get(case, case)
    return make_arch_model(root / case, arch, phi3_specials=case != "phi4", **CASES[case])


@pytest.mark.parametrize("case", list(CASES))
def test_arch_parity_f32_f16_q8_0(case, tmp_path):
    model_dir = build_case(case, tmp_path)
    ref = HFReference(model_dir)
    types = ["f32", "f16", "q8_0"] + (["bf16"] if case == "llama" else [])
    for qtype in types:
        summary = convert(model_dir, tmp_path / f"{case}-{qtype}.gguf", qtype)
        assert summary["n_vocab"] == ref.logits.shape[1]
        res = check_gguf(summary["path"], ref, qtype)
        assert res.tokens_match, res.problems
        assert res.passed, res.problems
        limit = {"f32": 1e-5, "f16": 1e-4, "bf16": 1e-4, "q8_0": 1e-2}[qtype]
        assert res.nmse < limit
        if qtype == "f32":
            assert res.top1 == 1.0
        assert res.generated is not None
    if case == "llama3-rope":
        import gguf

        names = {t.name for t in gguf.GGUFReader(tmp_path / f"{case}-f32.gguf").tensors}
        assert "rope_freqs.weight" in names


# K-quant blocks are 256 wide: every matrix row (and expert row) here is a multiple of 256, so Q4_K_M really
# writes Q4_K/Q6_K blocks instead of falling back to Q5_0/Q8_0.
KQUANT_DIMS = {"hidden_size": 256, "intermediate_size": 256}
KQUANT_EXTRA = {
    "qwen2_moe": {"moe_intermediate_size": 256, "shared_expert_intermediate_size": 256},
    "qwen3_moe": {"moe_intermediate_size": 256},
    "mistral-nemo": {"head_dim": 128},
}  # 128 != 256 / 4


@pytest.mark.parametrize(
    "case", ["gemma", "mixtral", "qwen2_moe", "qwen3_moe", "olmo2", "granite", "smollm3", "mistral-nemo", "phi4"]
)
def test_kquant_loads_and_generates(case, tmp_path):
    import gguf

    from ftbench.export.quantize import quantize_with_llama_cpp
    from ftbench.export.verify import load_gguf

    arch = ARCH_OF_CASE.get(case, case)
    extra = {**CASES[case], **KQUANT_DIMS, **KQUANT_EXTRA.get(case, {})}
    model_dir = make_arch_model(tmp_path / case, arch, phi3_specials=case != "phi4", **extra)
    f16 = convert(model_dir, tmp_path / "m-f16.gguf", "f16")["path"]
    q4 = quantize_with_llama_cpp(f16, tmp_path / "m-q4_k_m.gguf", "q4_k_m")
    kinds = {t.tensor_type.name for t in gguf.GGUFReader(q4).tensors}
    assert "Q4_K" in kinds, kinds
    llm = load_gguf(q4)
    try:
        out = list(islice(llm.generate(llm.tokenize(b"hello world", add_bos=True), temp=0.0, top_k=1, reset=True), 6))
        assert len(out) == 6 and all(0 <= tok < llm.n_vocab() for tok in out)
    finally:
        llm.close()


def test_wrong_transform_is_caught(tmp_path):
    """The check is sensitive: skipping llama's Q/K permutation must fail F32 verification."""
    from ftbench.export.gguf import archs

    model_dir = make_arch_model(tmp_path / "llama", "llama")
    ref = HFReference(model_dir)
    original = archs.permute_rows
    archs.permute_rows = lambda w, n_head: w
    try:
        convert(model_dir, tmp_path / "bad.gguf", "f32")
    finally:
        archs.permute_rows = original
    res = check_gguf(tmp_path / "bad.gguf", ref, "f32")
    assert not res.passed and res.nmse > 1e-5
    assert any("NMSE" in p for p in res.problems)


def test_sliced_streaming_writes_identical_bytes(tmp_path, monkeypatch):
    """Big tensors are written in row slices; the file must be byte-identical to whole-tensor writing."""
    from ftbench.export.gguf import writer

    model_dir = make_arch_model(tmp_path / "qwen2", "qwen2")
    for qtype in ("f16", "q8_0"):
        whole = convert(model_dir, tmp_path / f"whole-{qtype}.gguf", qtype)["path"]
        monkeypatch.setattr(writer, "SLICE_BYTES", 4096)  # every matrix now goes through the sliced path
        sliced = convert(model_dir, tmp_path / f"sliced-{qtype}.gguf", qtype)["path"]
        monkeypatch.setattr(writer, "SLICE_BYTES", 16 << 20)
        assert open(whole, "rb").read() == open(sliced, "rb").read()


def test_interrupted_conversion_leaves_no_finished_looking_file(tmp_path, monkeypatch):
    from ftbench.export.gguf import writer

    model_dir = make_arch_model(tmp_path / "llama", "llama")
    calls = {"n": 0}
    real = writer._encode

    def failing(arr, qtype):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt  # what Ctrl-C or a stop does mid-write
        return real(arr, qtype)

    monkeypatch.setattr(writer, "_encode", failing)
    with pytest.raises(KeyboardInterrupt):
        convert(model_dir, tmp_path / "out.gguf", "f16")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["llama"]  # neither out.gguf nor out.gguf.partial


def test_failed_verification_fails_the_export_but_keeps_the_card(tmp_path, monkeypatch):
    from ftbench.export.gguf import archs
    from ftbench.export.pipeline import VerificationFailed, resolve_source, run_export

    model_dir = make_arch_model(tmp_path / "llama", "llama")
    monkeypatch.setattr(archs, "permute_rows", lambda w, n_head: w)  # a converter bug
    with pytest.raises(VerificationFailed) as err:
        run_export(resolve_source(None, str(model_dir)), tmp_path / "out", quants="f32", log=lambda m: None)
    assert "F32" in err.value.message and "NMSE" in err.value.message
    assert err.value.result["verified"] is False and err.value.result["verify"][0]["passed"] is False
    assert (tmp_path / "out" / "verify.json").is_file()
