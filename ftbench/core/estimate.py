"""VRAM and time estimates for fine-tuning a model, before anything is loaded.

The estimate is built from parts a user can reason about, so the Models screen can show where the memory
goes and what a change (LoRA instead of full, a shorter sequence, gradient checkpointing) saves:

- weights: every parameter in the training dtype; QLoRA stores the transformer's linear layers in NF4
  (4 bits plus one fp32 absmax per 64 weights, itself 8-bit quantised with double quantisation: ~4.13 bits);
  everything not quantised (embeddings, the LM head, norms) is upcast to fp32 by peft's
  `prepare_model_for_kbit_training`. LoRA adapters are kept in fp32 (PEFT's default).
- gradients: one per trainable parameter, in that parameter's dtype.
- optimizer: AdamW keeps two moments per trainable parameter in the parameter's dtype (`torch.optim.AdamW`
  allocates them with `zeros_like`); 8-bit Adam keeps two bytes.
- activations: what autograd keeps for the backward pass, per token and per decoder layer, counted for a
  pre-norm decoder with SDPA attention (no s x s score matrix) in bf16: the norms' fp32 upcasts (2 x 6h
  bytes), the q/k/v/o inputs and outputs (~16h + 6 kv bytes) and the gated MLP's four intermediates (8I
  bytes; 4I for a plain MLP), plus the logits (bf16, their fp32 upcast and its gradient: 10 bytes per vocab
  entry). Gradient checkpointing keeps only each layer's input (2h) plus one layer being recomputed.
- logits under `training.sparse_logits` (SFT's default, train/sparse_logits.py): the LM head runs only at the
  positions whose next token is trained, so the logits are (trained tokens x vocab), not (batch x seq x vocab).
  How many are trained depends on the data, which the estimate does not read; it assumes TRAINED_FRACTION
  (70%) of the batch's positions, above the worst batch of every demo SFT set (assistant share per batch of
  packed rows: support chat 61%, domain QA 42%, sentiment alpaca 8%) and typical chat data, where answers
  outweigh prompts. `data.train_on_prompt` or `data.format: text` trains every position (fraction 1).
- overhead: the CUDA context plus 10% allocator fragmentation. The context is measured by GPU runs on this box
  (core/vram_calibration.py) and passed in as `cuda_context`; ~0.5 GiB until a run has measured it.

Pure arithmetic: no torch, so the TUI and `ftbench estimate` can call it freely.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ftbench.core.errors import FtbenchError
from ftbench.core.specs import ESTIMATED_METHODS, METHOD_SPECS

GIB = 1024**3
METHODS = ESTIMATED_METHODS  # the methods whose MethodSpec names an estimator rule (full, lora or qlora)
CUDA_CONTEXT = 512 * 1024**2
FRAGMENTATION = 0.10
NF4_BYTES = 4.127 / 8  # NF4 with double-quantised absmax, blocksize 64
LOGIT_BYTES = 10  # bf16 logits + fp32 upcast + fp32 gradient, per vocab entry per token
TRAINED_FRACTION = 0.7  # positions with a trained next token, assumed for sparse logits (see the docstring)
UNGATED = {
    "gpt2",
    "bert",
    "roberta",
    "distilbert",
    "deberta",
    "deberta-v2",
    "electra",
    "xlm-roberta",
    "gpt_neox",
    "opt",
    "falcon",
    "phi",
    "bloom",
    "gpt_bigcode",
    "mpnet",
}
DTYPE_BYTES = {"F32": 4, "F16": 2, "BF16": 2}
# Dense bf16/fp16 tensor TFLOPS by GPU name substring (vendor datasheets), for the time estimate.
PEAK_TFLOPS = {
    "H200": 989.0,
    "H100": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "L40": 181.0,
    "A6000": 155.0,
    "4090": 165.0,
    "3090": 71.0,
    "L4": 121.0,
    "A10": 125.0,
    "V100": 125.0,
    "T4": 65.0,
}


@dataclass
class VramEstimate:
    """Bytes by part for one method at one sequence length and batch size."""

    method: str
    seq_len: int
    batch: int
    params: int
    trainable_params: int
    weights: int
    gradients: int
    optimizer: int
    activations: int
    overhead: int
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations + self.overhead

    def parts(self) -> dict[str, int]:
        return {
            "weights": self.weights,
            "gradients": self.gradients,
            "optimizer": self.optimizer,
            "activations": self.activations,
            "overhead": self.overhead,
        }

    def fits(self, free_bytes: int | None) -> bool | None:
        """Whether it fits in `free_bytes` (None when the free memory is unknown)."""
        return None if free_bytes is None else self.total <= free_bytes

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["total"] = self.total
        return out


def _shape_value(shape: dict[str, int], key: str) -> int:
    value = shape.get(key)
    if not value:
        raise FtbenchError(
            f"The model's config has no '{key}', so its memory cannot be estimated.",
            "Estimates need a config.json (or GGUF metadata) with hidden_size, num_hidden_layers and vocab_size.",
        )
    return int(value)


def lora_params(shape: dict[str, int], r: int, gated: bool = True) -> int:
    """Trainable parameters of rank-r LoRA on every linear layer of attention and MLP (target_modules=auto)."""
    h = _shape_value(shape, "hidden_size")
    layers = _shape_value(shape, "num_layers")
    inter = shape.get("intermediate_size") or 4 * h
    heads = shape.get("num_heads") or 1
    head_dim = shape.get("head_dim") or h // heads
    q_dim = heads * head_dim
    kv_dim = (shape.get("num_kv_heads") or heads) * head_dim
    linears = [(h, q_dim), (h, kv_dim), (h, kv_dim), (q_dim, h), (h, inter), (inter, h)]
    if gated:
        linears.append((h, inter))
    return layers * sum(r * (i + o) for i, o in linears)


def estimate_vram(
    shape: dict[str, int],
    params: int,
    method: str = "lora",
    seq_len: int = 1024,
    batch: int = 4,
    dtype: str | None = "BF16",
    lora_r: int = 16,
    gradient_checkpointing: bool = False,
    optimizer: str = "adamw",
    model_type: str | None = None,
    causal_lm: bool = True,
    cuda_context: int | None = None,
    sparse_logits: bool = False,
    trained_fraction: float = TRAINED_FRACTION,
) -> VramEstimate:
    """The VRAM needed to train a model of `shape` with `params` parameters by `method`; `sparse_logits`: the
    LM head runs at the trained positions only, `trained_fraction` of them."""
    if method not in METHODS:
        raise FtbenchError(f"Unknown method '{method}' for the estimate.", f"Use one of: {', '.join(METHODS)}.")
    rule = METHOD_SPECS[method].estimate
    if seq_len < 1 or batch < 1:
        raise FtbenchError(
            f"Sequence length and batch size must be at least 1 (got {seq_len} and {batch}).",
            "Pass --seq-len N --batch N with N >= 1.",
        )
    h = _shape_value(shape, "hidden_size")
    layers = _shape_value(shape, "num_layers")
    vocab = shape.get("vocab_size") or 0
    inter = shape.get("intermediate_size") or 4 * h
    heads = shape.get("num_heads") or 1
    head_dim = shape.get("head_dim") or h // heads
    kv_dim = (shape.get("num_kv_heads") or heads) * head_dim
    gated = (model_type or "") not in UNGATED
    wbytes = DTYPE_BYTES.get((dtype or "BF16").upper(), 2)
    state_bytes = 2 if optimizer in ("adamw_8bit", "paged_adamw_8bit", "adamw_bnb_8bit") else 2 * wbytes
    notes: list[str] = []

    embeddings = vocab * h * (1 if shape.get("tied_embeddings") else 2)
    embeddings = min(embeddings, params)
    if rule == "full":
        trainable = params
        weights = params * wbytes
        gradients = params * wbytes
        optimizer_bytes = params * state_bytes
    else:
        trainable = lora_params(shape, lora_r, gated)
        if rule == "lora":
            base = params * wbytes
        else:
            kept = min(params, embeddings + (2 * layers + 1) * h)  # not quantised: embeddings, head, norms
            base = int((params - kept) * NF4_BYTES) + kept * 4
            notes.append("linear layers in NF4 (bitsandbytes, double quantisation); the rest upcast to fp32")
        weights = base + trainable * 4
        gradients = trainable * 4
        optimizer_bytes = trainable * (2 if state_bytes == 2 else 8)

    act_dtype = 2 if rule != "full" or wbytes == 2 else 4
    per_layer = (28 * h + (8 if gated else 4) * inter + 6 * kv_dim) * act_dtype // 2
    tokens = seq_len * batch
    if gradient_checkpointing:
        layer_part = layers * 2 * h * act_dtype // 2 + per_layer
        notes.append("gradient checkpointing: one layer's activations live at a time")
    else:
        layer_part = layers * per_layer
    logits = LOGIT_BYTES * vocab if causal_lm else 0
    if logits and sparse_logits:
        logits = int(logits * trained_fraction)
        notes.append(f"sparse logits: the LM head at the trained positions only (assumed {trained_fraction:.0%})")
    activations = tokens * (layer_part + logits + 4 * h)
    subtotal = weights + gradients + optimizer_bytes + activations
    overhead = (cuda_context or CUDA_CONTEXT) + int(FRAGMENTATION * subtotal)
    return VramEstimate(
        method, seq_len, batch, params, trainable, weights, gradients, optimizer_bytes, activations, overhead, notes
    )


def estimate_for_model(info: Any, method: str, seq_len: int = 1024, batch: int = 4, **kwargs: Any) -> VramEstimate:
    """`estimate_vram` for a catalog ModelInfo (a HF folder or GGUF file with a known shape)."""
    if info.error:  # a torn weights file or header: its own sentence names the file
        raise FtbenchError(info.error, "Re-download or re-save the model; `ftbench models` lists what it can read.")
    if not info.params:
        raise FtbenchError(
            f"The parameter count of {info.name} is unknown, so its memory cannot be estimated.",
            "Estimates need safetensors weights or a complete config.json.",
        )
    if info.kind == "adapter":
        raise FtbenchError(
            f"{info.name} is an adapter; estimate its base model {info.base_model or '(unknown)'} instead.",
            "Run `ftbench estimate BASE_MODEL`.",
        )
    dtype = info.dtype if info.dtype in DTYPE_BYTES else "BF16"
    if dtype == "F32":
        dtype = "BF16"  # precision=auto trains in bf16 on a GPU that has it
    arch = info.architecture or ""
    causal = info.kind == "gguf" or arch.endswith(("ForCausalLM", "LMHeadModel", "ForConditionalGeneration"))
    return estimate_vram(
        info.shape,
        info.params,
        method,
        seq_len,
        batch,
        dtype=dtype,
        model_type=info.model_type,
        causal_lm=causal,
        **kwargs,
    )


def estimate_all(info: Any, seq_len: int = 1024, batch: int = 4, **kwargs: Any) -> list[VramEstimate]:
    return [estimate_for_model(info, m, seq_len, batch, **kwargs) for m in METHODS]


@dataclass
class GpuFit:
    """One GPU's free memory and whether each method's estimate fits in it."""

    index: int
    name: str
    free: int | None
    total: int | None
    fits: dict[str, bool | None]


def gpu_fits(estimates: list[VramEstimate], report: Any = None) -> tuple[list[GpuFit], str]:
    """Fit against each GPU's free memory now; ([], reason) when there is no GPU or no NVML."""
    if report is None:
        try:
            from ftbench.core.gpu import sample_gpus
        except ImportError:
            return [], "GPU sampling unavailable"
        report = sample_gpus()
    if not getattr(report, "available", False):
        return [], getattr(report, "summary", "no NVIDIA GPU")
    fits = []
    for gpu in report.gpus:
        free = gpu.mem_total - gpu.mem_used if gpu.mem_total is not None and gpu.mem_used is not None else None
        fits.append(GpuFit(gpu.index, gpu.name, free, gpu.mem_total, {e.method: e.fits(free) for e in estimates}))
    return fits, ""


def peak_tflops(gpu_name: str) -> float | None:
    for key, value in PEAK_TFLOPS.items():
        if key.lower() in gpu_name.lower():
            return value
    return None


def estimate_step_seconds(
    params: int, tokens: int, method: str, tflops: float, mfu: float = 0.35, gradient_checkpointing: bool = False
) -> float:
    """Seconds for one optimizer step over `tokens` tokens: 6P FLOPs/token for full training, 4P for LoRA
    (the frozen base needs no weight gradients), +2P for recomputation under gradient checkpointing, at
    `mfu` of the GPU's peak dense TFLOPS."""
    if tflops <= 0:
        raise FtbenchError(f"Peak TFLOPS must be positive (got {tflops}).", "Pass the GPU's dense bf16 TFLOPS.")
    per_token = (6 if method == "full" else 4) * params + (2 * params if gradient_checkpointing else 0)
    return per_token * tokens / (tflops * 1e12 * mfu)


def estimate_for_recipe(recipe: Any) -> VramEstimate | None:
    """The per-GPU VRAM a recipe's run needs (its method, max_length, per-device batch); None when unknown."""
    from ftbench.catalog.models import inspect_model

    method = recipe.method.name if recipe.method.name in METHODS else "lora"
    try:
        info = inspect_model(recipe.model.path)
        return estimate_for_model(
            info,
            method,
            recipe.data.max_length,
            recipe.training.batch_size,
            lora_r=recipe.method.r,
            gradient_checkpointing=recipe.training.gradient_checkpointing,
            sparse_logits=recipe.sparse_logits_planned(),
            trained_fraction=1.0 if recipe.data.train_on_prompt or recipe.data.format == "text" else TRAINED_FRACTION,
        )
    except FtbenchError:
        return None
