"""Loading the base causal LM and tokenizer, then wrapping it for the method (train/methods.py).

Preflight (`check_model_path`) runs before anything heavy: a missing folder, a folder without config.json, or
a model that needs remote code while trust_remote_code is off each fail with one line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftbench.core.errors import FtbenchError
from ftbench.core.recipe import Recipe
from ftbench.core.remote_code import FLAG_HINT
from ftbench.core.specs import method_spec
from ftbench.train.methods import apply_method


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    precision: str  # fp32, bf16 or fp16
    info: dict[str, Any] = field(default_factory=dict)


def check_model_path(recipe: Recipe) -> dict[str, Any]:
    """The model's config.json, after checking the path and the remote-code rule; no torch needed."""
    path = Path(recipe.model.path)
    if not path.exists():
        if not recipe.model.path.startswith(("/", ".", "~")) and recipe.model.path.count("/") == 1:
            return {}  # a hub id: transformers resolves it from the local cache (offline) and reports misses
        raise FtbenchError(
            f"Model path {path} does not exist.",
            "Set model.path to a Hugging Face model folder (relative to the workspace or absolute).",
        )
    config_path = path / "config.json"
    if not config_path.is_file():
        raise FtbenchError(
            f"Model folder {path} has no config.json.",
            "Point model.path at the folder that holds config.json and the weights.",
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise FtbenchError(f"{config_path} is not valid JSON.", "Re-download or re-export the model.") from exc
    if config.get("auto_map") and not recipe.model.trust_remote_code:
        from transformers import CONFIG_MAPPING

        if config.get("model_type") not in CONFIG_MAPPING:
            raise FtbenchError(
                f"Model {path} ({config.get('model_type')}) needs its own Python code (auto_map in config.json), "
                "which runs only with --trust-remote-code.",
                FLAG_HINT,
            )
    return config


def resolve_precision(requested: str) -> str:
    """auto -> bf16 on a GPU that supports it, else fp16 on a GPU, fp32 on the CPU."""
    import torch

    if requested != "auto":
        if requested == "fp16" and not torch.cuda.is_available():
            raise FtbenchError(
                "training.precision fp16 needs a GPU; this machine has none.",
                "Use precision: auto (fp32 on the CPU) or bf16.",
            )
        return requested
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def check_bitsandbytes(recipe: Recipe) -> None:
    """qlora needs an importable bitsandbytes with a backend for this machine."""
    if "bitsandbytes" not in method_spec(recipe.method.name).needs:
        return
    try:
        import bitsandbytes  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - import errors come in many shapes (missing CUDA libs ...)
        raise FtbenchError(
            f"method qlora needs bitsandbytes, which cannot be imported here ({type(exc).__name__}: {exc}).",
            "pip install 'bitsandbytes>=0.50' (it runs 4-bit on the CPU too), or use method: lora.",
        ) from exc


def load_tokenizer(recipe: Recipe) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(recipe.model.path, trust_remote_code=recipe.model.trust_remote_code)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    return tok


def load_model(recipe: Recipe, precision: str) -> LoadedModel:
    """The base model in the right dtype (or 4/8-bit for qlora) with the method applied."""
    import torch
    from transformers import AutoModelForCausalLM

    check_bitsandbytes(recipe)
    tokenizer = load_tokenizer(recipe)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    if recipe.model.dtype != "auto":
        dtype = getattr(torch, recipe.model.dtype)
    kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": recipe.model.trust_remote_code}
    if recipe.model.attn_implementation != "auto":
        kwargs["attn_implementation"] = recipe.model.attn_implementation
    method = recipe.method
    if method.name == "qlora":
        from transformers import BitsAndBytesConfig

        compute = torch.bfloat16 if precision != "fp16" else torch.float16
        if method.bits == 4:
            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type=method.quant_type,
                bnb_4bit_use_double_quant=method.double_quant,
                bnb_4bit_compute_dtype=compute,
            )
        else:
            kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
        if torch.cuda.is_available():
            kwargs["device_map"] = {"": torch.cuda.current_device()}
    try:
        model = AutoModelForCausalLM.from_pretrained(recipe.model.path, **kwargs)
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise FtbenchError(
                f"Model {recipe.model.path} needs trust_remote_code, which is off.",
                FLAG_HINT,
            ) from exc
        raise
    info: dict[str, Any] = {"architecture": model.config.model_type}
    if recipe.training.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    model = apply_method(model, recipe, info)
    info["trainable_params"], info["total_params"] = count_params(model)
    return LoadedModel(model, tokenizer, precision, info)


def count_params(model: Any) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
