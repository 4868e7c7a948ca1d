"""The GGUF header reader against gguf-py on the GGUFs the export pipeline makes: every architecture the
exporter knows (F16, plus F32 and Q8_0 for llama), a llama.cpp K-quant and a LoRA adapter GGUF. The catalog,
`ftbench verify` and `ftbench import` read these files through the header reader only."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")

from export_models import ARCH_OVERRIDES, make_arch_model, make_kquant_llama, make_lora  # noqa: E402
from gguf_checks import assert_matches_gguf_py  # noqa: E402

from ftbench.catalog.models import inspect_model  # noqa: E402
from ftbench.commands.export import gguf_type_of  # noqa: E402
from ftbench.export.gguf.archs import rule_for  # noqa: E402
from ftbench.export.gguf.hf import load_hf_model  # noqa: E402
from ftbench.export.gguf.writer import convert  # noqa: E402
from ftbench.export.importer import gguf_architecture  # noqa: E402


@pytest.mark.parametrize("arch", list(ARCH_OVERRIDES))
def test_exported_f16_header_matches_gguf_py(arch, tmp_path):
    model_dir = make_arch_model(tmp_path / arch, arch)
    out = convert(model_dir, tmp_path / f"{arch}-F16.gguf", "f16")["path"]
    header = assert_matches_gguf_py(out)
    assert (
        header.architecture == rule_for(load_hf_model(model_dir)).gguf_arch
    )  # mistral as llama, qwen2_moe as qwen2moe
    assert gguf_type_of(out) == "f16" and gguf_architecture(out) == (header.architecture, "model")
    info = inspect_model(out)
    assert (info.kind, info.architecture, info.quantization, info.error) == ("gguf", header.architecture, "F16", None)
    assert info.vocab_size == header.array_length("tokenizer.ggml.tokens") and info.params == header.n_params


def test_f32_q8_0_and_k_quant_headers_match_gguf_py(tmp_path):
    pytest.importorskip("llama_cpp")
    from ftbench.export.quantize import quantize_with_llama_cpp

    model_dir = make_kquant_llama(tmp_path / "llama256")
    for qtype in ("f32", "q8_0"):
        out = convert(model_dir, tmp_path / f"m-{qtype}.gguf", qtype)["path"]
        assert_matches_gguf_py(out)
        assert gguf_type_of(out) == qtype
    f16 = convert(model_dir, tmp_path / "m-F16.gguf", "f16")["path"]
    q4 = quantize_with_llama_cpp(f16, tmp_path / "m-Q4_K_M.gguf", "q4_k_m")
    header = assert_matches_gguf_py(q4)
    assert {t.name: t.type for t in header.tensors}["blk.0.attn_q.weight"] == 12  # Q4_K
    assert gguf_type_of(q4) == "q4_k_m" and inspect_model(q4).quantization == "Q4_K_M"


def test_lora_adapter_gguf_header_matches_gguf_py(tmp_path):
    pytest.importorskip("peft")
    from ftbench.export.lora import write_lora_gguf
    from ftbench.export.merge import read_adapter

    base = make_arch_model(tmp_path / "base", "llama")
    adapter = make_lora(base, tmp_path / "adapter")
    write_lora_gguf(read_adapter(adapter), tmp_path / "lora.gguf")
    header = assert_matches_gguf_py(tmp_path / "lora.gguf")
    assert gguf_architecture(tmp_path / "lora.gguf") == ("llama", "adapter")
    assert header.get("adapter.type") == "lora"
