"""Prefill for batched greedy or sampled decoding: shared prefix once, each row's own tokens in length-sorted chunks.

Why: decoding is cheapest with the whole batch in one `generate` call (each step is one matrix product for all rows
instead of one nearly empty one per row), but prefilling the batch in that same call pads every row to the longest
prompt, and prompt tokens are most of the work for short answers. So the tokens every prompt starts with (the chat
template's system turn) are run once, each row's own tokens but the last are run in small chunks of rows of similar
length on top of them, and the chunks' keys and values are stitched into one cache with the padding between the
prefix and each row's tokens (masked, skipped by the position ids), from which `generate` continues the whole batch:
it only runs each row's last prompt token. Each row still attends to exactly its own tokens at the positions it has
alone, so greedy answers are the ones each prompt gets by itself.

Only plain per-token key/value caches (transformers' DynamicCache of DynamicLayer) can be stitched; models with
sliding-window, recurrent or shared-KV layers get None and are decoded from plain left-padded prompts instead.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

MIN_SHARED_PREFIX = 8  # tokens; a shorter common prefix is not worth a forward pass of its own
PREFILL_ROWS = 8  # rows per prefill chunk: small enough that similar lengths pad little, large enough for a good GEMM


@dataclass
class Staged:
    """What `generate` continues from: the full left-padded prompts, their mask and the cache of all but the last
    column, passed to generate under `keyword` (transformers renamed `past_key_values` to `cache` during 5.x)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    keyword: str
    cache: Any


def shared_prefix(sequences: Sequence[list[int]]) -> int:
    """Tokens every sequence starts with (the chat template's system turn, a common instruction), leaving each
    sequence at least one token of its own for generate's first step."""
    limit = min(len(t) for t in sequences) - 1
    first = sequences[0]
    n = 0
    while n < limit and all(t[n] == first[n] for t in sequences):
        n += 1
    return n


def usable_prefix(prompts: Sequence[list[int]]) -> int:
    """The shared prefix worth running once for these prompts (0 when it is too short to pay for its own pass)."""
    n = shared_prefix(prompts) if len(prompts) > 1 else 0
    return n if n >= MIN_SHARED_PREFIX else 0


def _stitchable(cache: Any) -> bool:
    from transformers.cache_utils import DynamicCache, DynamicLayer

    return type(cache) is DynamicCache and all(
        type(layer) is DynamicLayer and layer.is_initialized for layer in cache.layers
    )


def _keeps_logits(model: Any) -> bool:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(base.forward).parameters


def _run(model: Any, ids: list[list[int]], pad: int, prefix: tuple[str, Any, int] | None) -> tuple[str, Any]:
    """Forward `ids` (left-padded to a common width) after `prefix` = (keyword, one-row cache, length), each row
    seeing its tokens at the positions it has alone; returns (cache keyword, the rows' cache)."""
    width = max(len(t) for t in ids)
    shared = prefix[2] if prefix else 0
    mask = torch.zeros((len(ids), shared + width), dtype=torch.long)
    mask[:, :shared] = 1
    tokens = torch.full((len(ids), width), pad, dtype=torch.long)
    for i, t in enumerate(ids):
        if t:
            tokens[i, width - len(t) :] = torch.tensor(t, dtype=torch.long)
            mask[i, shared + width - len(t) :] = 1
    kwargs: dict[str, Any] = {"use_cache": True}
    if prefix:
        from transformers.cache_utils import DynamicCache

        rows = [(k.expand(len(ids), -1, -1, -1), v.expand(len(ids), -1, -1, -1)) for k, v, _ in prefix[1]]
        kwargs[prefix[0]] = DynamicCache(ddp_cache_data=rows)
    if _keeps_logits(model):
        kwargs["logits_to_keep"] = 1  # the logits are not used; the full vocabulary projection would be a third
    positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, shared:]
    with torch.inference_mode():
        out = model(
            input_ids=tokens.to(model.device),
            attention_mask=mask.to(model.device),
            position_ids=positions.to(model.device),
            **kwargs,
        )
    keyword = "cache" if hasattr(out, "cache") else "past_key_values"
    return keyword, getattr(out, keyword)


def _stitch(chunks: Sequence[tuple[list[int], Any]], shared: int, width: int, rows: int) -> Any:
    """One cache for all rows (in their original order) from the chunks' caches (each `shared` + its own width),
    zeros filling the masked gap between the prefix and each chunk's columns."""
    from transformers.cache_utils import DynamicCache

    order = [i for members, _ in chunks for i in members]
    back = torch.empty(rows, dtype=torch.long)
    back[torch.tensor(order, dtype=torch.long)] = torch.arange(rows)
    layers = []
    for per_chunk in zip(*(list(cache) for _, cache in chunks), strict=True):
        merged = []
        for part in (0, 1):  # keys, values
            pieces = []
            for layer in per_chunk:
                t = layer[part]
                gap = t.new_zeros((t.shape[0], t.shape[1], shared + width - t.shape[2], t.shape[3]))
                pieces.append(torch.cat([t[:, :, :shared], gap, t[:, :, shared:]], dim=2))
            merged.append(torch.cat(pieces, dim=0).index_select(0, back.to(pieces[0].device)))
        layers.append(tuple(merged))
    return DynamicCache(ddp_cache_data=layers)


def _prefix(model: Any, prompts: Sequence[list[int]], shared: int, pad: int) -> tuple[str, Any, int] | None:
    if not shared:
        return None
    keyword, cache = _run(model, [list(prompts[0][:shared])], pad, None)
    return (keyword, cache, shared) if _stitchable(cache) else None


def staged_batch(model: Any, pad: int, prompts: Sequence[list[int]], shared: int) -> Staged | None:
    """The batch with its prompts prefilled but for each row's last token, or None when the model's cache cannot be
    stitched. `shared` tokens (from shared_prefix, which leaves every row at least one of its own) are run once."""
    prefix = _prefix(model, prompts, shared, pad)
    if shared and prefix is None:
        return None
    heads = [list(p[shared:-1]) for p in prompts]
    by_length = sorted(range(len(prompts)), key=lambda i: len(heads[i]))
    width = len(heads[by_length[-1]])
    chunks, keyword = [], prefix[0] if prefix else "past_key_values"
    for start in range(0, len(by_length), PREFILL_ROWS):
        members = by_length[start : start + PREFILL_ROWS]
        if not any(heads[i] for i in members):  # nothing of their own but the last token: the prefix is their cache
            if prefix is None:
                return None
            n = len(members)
            chunks.append((members, [(k.expand(n, -1, -1, -1), v.expand(n, -1, -1, -1)) for k, v, _ in prefix[1]]))
            continue
        keyword, cache = _run(model, [heads[i] for i in members], pad, prefix)
        if not _stitchable(cache):
            return None
        chunks.append((members, list(cache)))
    ids = torch.full((len(prompts), shared + width + 1), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(prompts):
        own = len(p) - shared
        ids[i, :shared] = torch.tensor(p[:shared], dtype=torch.long)
        ids[i, ids.shape[1] - own :] = torch.tensor(p[shared:], dtype=torch.long)
        mask[i, :shared] = 1
        mask[i, ids.shape[1] - own :] = 1
    cache = _stitch(chunks, shared, width, len(prompts))
    return Staged(ids.to(model.device), mask.to(model.device), keyword, cache)


def tail_logits(
    model: Any, pad: int, prompts: Sequence[list[int]], refs: Sequence[list[int]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher forcing of `refs` after `prompts`: (logits, tokens) of the last max(len(ref)) + 1 columns of the rows
    `prompt + ref` aligned right, so row i's last len(ref_i) + 1 columns are its last prompt token and its reference.

    The prompts are prefilled as for generation (shared prefix once, chunks without padding waste) and only this
    tail goes through the vocabulary projection, which on a small model costs as much as the rest of a token.
    """
    width = max(len(r) for r in refs) + 1
    staged = staged_batch(model, pad, prompts, usable_prefix(prompts))
    block = torch.full((len(prompts), width), pad, dtype=torch.long)
    tail_mask = torch.zeros_like(block)
    for i, (p, r) in enumerate(zip(prompts, refs, strict=True)):
        block[i, width - len(r) - 1 :] = torch.tensor(p[-1:] + r, dtype=torch.long)
        tail_mask[i, width - len(r) - 1 :] = 1
    kwargs: dict[str, Any] = {}
    if staged is not None:
        mask = torch.cat([staged.attention_mask[:, :-1].cpu(), tail_mask], dim=1)
        kwargs[staged.keyword] = staged.cache
        ids = block
    else:  # the whole rows in one left-padded forward
        rows = [p[:-1] for p in prompts]
        head = max(len(t) for t in rows)
        ids = torch.full((len(prompts), head), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, t in enumerate(rows):
            if t:
                ids[i, head - len(t) :] = torch.tensor(t, dtype=torch.long)
                mask[i, head - len(t) :] = 1
        ids, mask = torch.cat([ids, block], dim=1), torch.cat([mask, tail_mask], dim=1)
        if _keeps_logits(model):
            kwargs["logits_to_keep"] = width
    positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -ids.shape[1] :]  # a plain forward does not skip padding
    with torch.inference_mode():
        out = model(
            input_ids=ids.to(model.device),
            attention_mask=mask.to(model.device),
            position_ids=positions.to(model.device),
            **kwargs,
        )
    return out.logits[:, -width:], block.to(model.device)
