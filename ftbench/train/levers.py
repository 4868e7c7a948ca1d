"""Speed switches for the training loop; those on by default keep the training maths (exactly, or in
distribution).

`training.sparse_logits` (on): logits only at trained positions (train/sparse_logits.py), exact, for causal LMs
whose forward takes a `logits_to_keep` mask. `training.fast_dropout` (on): LoRA dropout masks drawn four to a
random word on the CPU (train/lora_dropout.py), the same distribution. `training.liger` (off): Liger kernels
(fused RMSNorm, RoPE, SwiGLU and linear cross-entropy), Triton on a GPU; when on, its fused loss replaces sparse
logits. `training.torch_compile` (off): compiles the model, which costs a compile per new shape at the start.
`data.padding_free` (on): each batch's examples laid end to end, no padding (train/data.py `SftCollator`).
Gradient checkpointing is always the non-reentrant variant (train/model.py).
"""

from __future__ import annotations

import importlib.util
from typing import Any

from ftbench.core.errors import FtbenchError
from ftbench.core.recipe import Recipe
from ftbench.train.sparse_logits import supports_sparse_logits


def check_liger(recipe: Recipe) -> None:
    """training.liger needs the liger-kernel package; fail before any model loads when it is missing."""
    if recipe.training.liger and importlib.util.find_spec("liger_kernel") is None:
        raise FtbenchError(
            "training.liger is on, but the liger-kernel package is not installed here.",
            "Run `pip install 'ftbench[liger]'` (it needs a CUDA GPU and Triton), or set training.liger: false.",
        )


def trainer_overrides(recipe: Recipe) -> dict[str, Any]:
    """TrainingArguments for the switches the Trainer applies itself."""
    check_liger(recipe)
    return {"use_liger_kernel": recipe.training.liger, "torch_compile": recipe.training.torch_compile}


def use_sparse_logits(recipe: Recipe, model: Any) -> bool:
    """Sparse logits when the recipe plans them (`Recipe.sparse_logits_planned`) and the model can slice by a
    mask."""
    return recipe.sparse_logits_planned() and supports_sparse_logits(model)
