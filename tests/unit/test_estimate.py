"""The VRAM estimate: each part by hand for a known shape, LoRA counts checked against PEFT, GPU fit."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftbench.core.errors import FtbenchError
from ftbench.core.estimate import (
    CUDA_CONTEXT,
    GIB,
    NF4_BYTES,
    estimate_all,
    estimate_step_seconds,
    estimate_vram,
    gpu_fits,
    lora_params,
    peak_tflops,
)
from ftbench.core.gpu import GpuInfo, GpuReport

# SmolLM2-135M's config (the demo model): 134,515,008 parameters, tied embeddings.
SMOL = {
    "hidden_size": 576,
    "num_layers": 30,
    "num_heads": 9,
    "num_kv_heads": 3,
    "head_dim": 64,
    "intermediate_size": 1536,
    "vocab_size": 49152,
    "tied_embeddings": 1,
}
SMOL_PARAMS = 134_515_008


def test_full_bf16_is_weights_grads_and_two_adam_moments() -> None:
    e = estimate_vram(SMOL, SMOL_PARAMS, "full", seq_len=512, batch=2, dtype="BF16")
    assert (e.weights, e.gradients, e.optimizer) == (2 * SMOL_PARAMS, 2 * SMOL_PARAMS, 4 * SMOL_PARAMS)
    assert e.trainable_params == SMOL_PARAMS
    per_layer = 28 * 576 + 8 * 1536 + 6 * 3 * 64
    assert e.activations == 512 * 2 * (30 * per_layer + 10 * 49152 + 4 * 576)
    subtotal = e.weights + e.gradients + e.optimizer + e.activations
    assert e.overhead == CUDA_CONTEXT + int(0.10 * subtotal)
    assert e.total == subtotal + e.overhead
    assert e.to_dict()["total"] == e.total


def test_lora_count_by_hand_and_adapter_in_fp32() -> None:
    # per layer: q 8*(576+576) k,v 8*(576+192) o 8*(576+576) gate,up,down 8*(576+1536)
    per_layer = 8 * (1152 + 768 + 768 + 1152 + 3 * 2112)
    assert lora_params(SMOL, r=8) == 30 * per_layer
    e = estimate_vram(SMOL, SMOL_PARAMS, "lora", lora_r=8)
    assert e.trainable_params == 30 * per_layer
    assert e.weights == 2 * SMOL_PARAMS + 4 * e.trainable_params
    assert (e.gradients, e.optimizer) == (4 * e.trainable_params, 8 * e.trainable_params)


def test_qlora_stores_linear_layers_in_nf4_and_upcasts_the_rest_to_fp32() -> None:
    """prepare_model_for_kbit_training casts every parameter that is not 4-bit to fp32: the (tied) embeddings
    and LM head, and the 2 norms per layer plus the final norm."""
    lora = estimate_vram(SMOL, SMOL_PARAMS, "lora")
    qlora = estimate_vram(SMOL, SMOL_PARAMS, "qlora")
    kept = 49152 * 576 + (2 * 30 + 1) * 576
    assert qlora.weights == int((SMOL_PARAMS - kept) * NF4_BYTES) + 4 * kept + 4 * qlora.trainable_params
    assert lora.weights == estimate_vram(SMOL, SMOL_PARAMS, "full").weights + 4 * lora.trainable_params
    assert 0.6 * lora.weights < qlora.weights < 0.7 * lora.weights  # fp32 embeddings: 113 MB of 188
    assert qlora.activations == lora.activations
    untied = estimate_vram({**SMOL, "tied_embeddings": 0}, SMOL_PARAMS + 49152 * 576, "qlora")
    assert untied.weights - qlora.weights == pytest.approx(4 * 49152 * 576, abs=2)  # the head is upcast too


def test_a_measured_cuda_context_replaces_the_constant() -> None:
    default = estimate_vram(SMOL, SMOL_PARAMS, "lora")
    measured = estimate_vram(SMOL, SMOL_PARAMS, "lora", cuda_context=300 * 2**20)
    assert default.overhead - measured.overhead == CUDA_CONTEXT - 300 * 2**20
    assert measured.total == default.total - (CUDA_CONTEXT - 300 * 2**20)


def test_calibration_summarises_measured_runs(tmp_path: Path) -> None:
    from ftbench.core.vram_calibration import FILE, MAX_RUNS, load_calibration, record_run

    assert load_calibration(tmp_path).runs == 0 and load_calibration(tmp_path).describe() == ""
    for estimate, peak, context in [(10, 11, 400), (10, 9, 500), (10, 12, 600), (None, 5, None)]:
        record_run(tmp_path, {"estimate": estimate, "measured_peak": peak, "cuda_context": context})
    cal = load_calibration(tmp_path)
    assert (cal.runs, cal.ratio, cal.cuda_context) == (3, pytest.approx(1.1), 500)
    assert "1.10x their estimate (+10%, median of 3)" in cal.describe()
    for _ in range(MAX_RUNS + 5):
        record_run(tmp_path, {"estimate": 10, "measured_peak": 10})
    assert load_calibration(tmp_path).runs == MAX_RUNS and load_calibration(tmp_path).ratio == 1.0
    (tmp_path / FILE).write_text("{broken")
    assert load_calibration(tmp_path).runs == 0  # a damaged file is no calibration, not a crash


def test_activations_scale_with_tokens_and_checkpointing_saves_memory() -> None:
    one = estimate_vram(SMOL, SMOL_PARAMS, "lora", seq_len=256, batch=1)
    four = estimate_vram(SMOL, SMOL_PARAMS, "lora", seq_len=512, batch=2)
    assert four.activations == 4 * one.activations
    ckpt = estimate_vram(SMOL, SMOL_PARAMS, "lora", seq_len=512, batch=2, gradient_checkpointing=True)
    assert ckpt.activations < four.activations / 2
    assert ckpt.weights == four.weights


def test_8bit_adam_and_fp32_weights() -> None:
    e8 = estimate_vram(SMOL, SMOL_PARAMS, "full", optimizer="adamw_8bit")
    assert e8.optimizer == 2 * SMOL_PARAMS
    f32 = estimate_vram(SMOL, SMOL_PARAMS, "full", dtype="F32")
    assert (f32.weights, f32.optimizer) == (4 * SMOL_PARAMS, 8 * SMOL_PARAMS)


def test_bad_inputs_are_clear_errors() -> None:
    with pytest.raises(FtbenchError, match="Unknown method 'lorax'"):
        estimate_vram(SMOL, SMOL_PARAMS, "lorax")
    with pytest.raises(FtbenchError, match="at least 1"):
        estimate_vram(SMOL, SMOL_PARAMS, "lora", seq_len=0)
    with pytest.raises(FtbenchError, match="hidden_size"):
        estimate_vram({"num_layers": 2}, 10, "lora")


def test_lora_count_matches_peft_all_linear(tiny_llama: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from ftbench.catalog.models import inspect_model

    info = inspect_model(tiny_llama)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_llama), LoraConfig(r=4, target_modules="all-linear")
    )
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert lora_params(info.shape, r=4) == trainable
    assert estimate_all(info, 64, 1, lora_r=4)[1].trainable_params == trainable


def test_gpu_fit_against_free_memory() -> None:
    e = estimate_vram(SMOL, SMOL_PARAMS, "full", seq_len=512, batch=2)
    report = GpuReport(
        available=True,
        gpus=[
            GpuInfo(0, "NVIDIA H100", mem_used=10 * GIB, mem_total=80 * GIB),
            GpuInfo(1, "NVIDIA T4", mem_used=14 * GIB, mem_total=15 * GIB),
            GpuInfo(2, "odd", None, None),
        ],
    )
    fits, reason = gpu_fits([e], report)
    assert reason == ""
    assert [(f.free, f.fits["full"]) for f in fits] == [(70 * GIB, True), (1 * GIB, False), (None, None)]
    none, why = gpu_fits([e], GpuReport(available=False, reason="no NVIDIA driver"))
    assert none == [] and "no NVIDIA driver" in why


def test_step_time_from_flops() -> None:
    assert peak_tflops("NVIDIA H100 80GB HBM3") == 989.0 and peak_tflops("mystery") is None
    full = estimate_step_seconds(SMOL_PARAMS, 4096, "full", tflops=100.0, mfu=0.5)
    assert full == pytest.approx(6 * SMOL_PARAMS * 4096 / 50e12)
    assert estimate_step_seconds(SMOL_PARAMS, 4096, "lora", 100.0, 0.5) == pytest.approx(full * 4 / 6)


def test_sparse_logits_count_only_the_trained_positions() -> None:
    from ftbench.core.estimate import LOGIT_BYTES, TRAINED_FRACTION

    full = estimate_vram(SMOL, SMOL_PARAMS, "lora", seq_len=512, batch=2)
    off = estimate_vram(SMOL, SMOL_PARAMS, "lora", seq_len=512, batch=2, sparse_logits=False)
    on = estimate_vram(SMOL, SMOL_PARAMS, "lora", seq_len=512, batch=2, sparse_logits=True)
    assert off.to_dict() == full.to_dict()  # off is the (batch x seq x vocab) logits estimate, unchanged
    per_token = LOGIT_BYTES * 49152
    assert full.activations - on.activations == 1024 * (per_token - int(per_token * TRAINED_FRACTION))
    assert on.total < off.total and (on.weights, on.optimizer) == (off.weights, off.optimizer)
    every = estimate_vram(SMOL, SMOL_PARAMS, "lora", seq_len=512, batch=2, sparse_logits=True, trained_fraction=1.0)
    assert every.activations == off.activations
    encoder = estimate_vram(SMOL, SMOL_PARAMS, "lora", causal_lm=False, sparse_logits=True)
    assert encoder.activations == estimate_vram(SMOL, SMOL_PARAMS, "lora", causal_lm=False).activations


def test_recipe_estimate_follows_its_sparse_logits_setting(tiny_llama: Path) -> None:
    from ftbench.core.estimate import estimate_for_recipe
    from ftbench.core.recipe import validate_recipe

    def activations(task: str = "sft", data: dict | None = None, **training: object) -> int:
        raw = {"task": task, "model": str(tiny_llama), "data": {"train": "d.jsonl", **(data or {})}}
        estimate = estimate_for_recipe(validate_recipe({**raw, "training": training}))
        assert estimate is not None
        return estimate.activations

    default, off = activations(), activations(sparse_logits=False)
    assert default < off  # sparse_logits is on by default for SFT
    assert activations(liger=True) == off  # Liger's fused loss replaces sparse logits
    assert activations(data={"train_on_prompt": True}) == off  # every position trained
    assert activations("dpo") == activations("dpo", sparse_logits=False) == off  # only SFT slices the logits
