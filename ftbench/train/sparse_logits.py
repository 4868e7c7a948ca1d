"""Logits only where the loss is: the LM head and cross-entropy run on the trained positions alone.

A causal LM's forward projects every position onto the vocabulary (49k entries for SmolLM2), then the loss
throws away every position whose next token is a prompt or padding token - in instruction data most of them.
That projection, its fp32 upcast and its gradient are a large share of a small model's step time and of its
peak memory. transformers' `logits_to_keep` accepts a boolean (batch, seq) mask and returns the kept rows
flattened, so the collator marks the positions whose next token is trained (`trained_positions`) and
`causal_loss` computes the same token-mean cross-entropy the model would (sum over trained tokens divided by
the Trainer's `num_items_in_batch`, or the mean when it passes none). tests/integration/test_sft_levers.py
checks the loss and gradients equal the model's own.
"""

from __future__ import annotations

import inspect
from typing import Any

IGNORE = -100
MASK_KEY = "logits_to_keep"


def supports_sparse_logits(model: Any) -> bool:
    """Whether the model's forward takes `logits_to_keep` and this transformers slices by a 2-D boolean mask."""
    try:
        from transformers.modeling_utils import slice_logits_to_keep  # noqa: F401 - the 2-D mask helper (5.x)
    except ImportError:
        return False
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return MASK_KEY in inspect.signature(base.forward).parameters


def trained_positions(labels: Any) -> Any:
    """(batch, seq) booleans: True where the next token's label is trained (the last position never is)."""
    import torch

    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != IGNORE
    return keep


def causal_loss(outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
    """Cross-entropy of the kept logits (rows in the mask's row-major order) against the next tokens."""
    import torch.nn.functional as F

    targets = labels[:, 1:]
    targets = targets[targets != IGNORE]
    logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
    logits = logits.reshape(-1, logits.shape[-1]).float()
    if num_items_in_batch is None:
        return F.cross_entropy(logits, targets.to(logits.device))
    total = F.cross_entropy(logits, targets.to(logits.device), reduction="sum")
    if hasattr(num_items_in_batch, "to"):
        num_items_in_batch = num_items_in_batch.to(total.device)
    return total / num_items_in_batch
