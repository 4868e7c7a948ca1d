"""K-quants through llama.cpp, LoRA adapter GGUFs, and the adapter cases that must be merged instead."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("peft")

from export_models import make_arch_model, make_kquant_llama, make_lora  # noqa: E402

from ftbench.export.gguf.writer import convert  # noqa: E402
from ftbench.export.quantize import quantize_with_llama_cpp  # noqa: E402
from ftbench.export.verify import HFReference, check_gguf  # noqa: E402


def test_q4_k_m_loads_generates_and_uses_k_blocks(tmp_path):
    import gguf

    model_dir = make_kquant_llama(tmp_path / "llama256")
    ref = HFReference(model_dir)
    f16 = convert(model_dir, tmp_path / "m-F16.gguf", "f16")["path"]
    out = quantize_with_llama_cpp(f16, tmp_path / "m-Q4_K_M.gguf", "q4_k_m")
    assert not (tmp_path / "m-Q4_K_M.gguf.partial").exists()
    types = {t.name: t.tensor_type.name for t in gguf.GGUFReader(out).tensors}
    assert types["blk.0.attn_q.weight"] == "Q4_K"
    assert types["output.weight"] == "Q6_K"  # the Q4_K_M mixture
    assert types["blk.0.attn_norm.weight"] == "F32"
    assert out.stat().st_size < 0.45 * (tmp_path / "m-F16.gguf").stat().st_size
    res = check_gguf(out, ref, "q4_k_m")
    assert res.passed and res.tokens_match and res.threshold is None
    assert res.generated and 0 < res.kl < 0.05  # lossy but close: KL is reported, not gated
    q8 = check_gguf(convert(model_dir, tmp_path / "m-Q8_0.gguf", "q8_0")["path"], ref, "q8_0")
    assert q8.kl < res.kl  # more bits, less divergence


@pytest.fixture(scope="module")
def llama_and_lora(tmp_path_factory):
    root = tmp_path_factory.mktemp("lora")
    base = make_arch_model(root / "base", "llama")
    adapter = make_lora(
        base, root / "adapter", use_rslora=True, rank_pattern={"down_proj": 4}, alpha_pattern={"v_proj": 32}
    )
    return base, adapter


def test_adapter_gguf_matches_merged_model(llama_and_lora, tmp_path):
    from ftbench.export.lora import write_lora_gguf
    from ftbench.export.merge import read_adapter

    base, adapter = llama_and_lora
    info = read_adapter(adapter)  # base found through adapter_config.json
    res = write_lora_gguf(info, tmp_path / "lora.gguf")
    assert res["modules"] == 10
    base_gguf = convert(base, tmp_path / "base-F32.gguf", "f32")["path"]
    merged_ref = HFReference(base, adapter_dir=adapter)
    with_lora = check_gguf(base_gguf, merged_ref, "f32", lora_path=tmp_path / "lora.gguf")
    assert with_lora.passed and with_lora.nmse < 1e-5
    without = check_gguf(base_gguf, merged_ref, "f32")
    assert without.nmse > 100 * with_lora.nmse  # the adapter really changes the model


def test_dora_is_refused_for_adapter_only_and_merged_instead(llama_and_lora, tmp_path):
    from ftbench.export.lora import NotExpressible, write_lora_gguf
    from ftbench.export.merge import read_adapter
    from ftbench.export.pipeline import resolve_source, run_export

    base, _ = llama_and_lora
    dora = make_lora(base, tmp_path / "dora", use_dora=True)
    with pytest.raises(NotExpressible) as err:
        write_lora_gguf(read_adapter(dora), tmp_path / "x.gguf")
    assert "DoRA" in err.value.message
    result = run_export(
        resolve_source(None, str(dora)), tmp_path / "out", quants="q8_0", adapter_only=True, log=lambda m: None
    )
    assert "DoRA" in result["note"]
    assert [f["type"] for f in result["files"]] == ["Q8_0"] and result["verified"]
    assert not (tmp_path / "out" / "merged").exists()  # intermediate removed


def test_merge_keeps_fp32_and_matches_peft(llama_and_lora, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    from ftbench.export.merge import merge_adapter, read_adapter

    base, adapter = llama_and_lora
    out = merge_adapter(read_adapter(adapter), tmp_path / "merged")
    assert (out / "tokenizer.json").is_file() and not (tmp_path / "merged.partial").exists()
    cfg = json.loads((out / "config.json").read_text())
    assert cfg.get("dtype", cfg.get("torch_dtype")) == "float32"
    merged = AutoModelForCausalLM.from_pretrained(out)
    ref = HFReference(base, adapter_dir=adapter)
    with torch.no_grad():
        logits = merged(torch.tensor([ref.ids])).logits[0].numpy()
    assert np.abs(logits - ref.logits).max() < 1e-4
