"""Batched generation and teacher-forced reference NLL for HF models and adapters (inside the eval job).

Loading goes through chat/hf.py's HFBackend, so an eval sees exactly what chat sees (same template, same end-of-turn
ids, same adapter checks) and adapters on one base share it: the base is loaded once, each adapter is added onto it
and `switch` flips between them per batch in milliseconds. Prompts are left-padded so a whole batch decodes
together; greedy decoding of a left-padded batch gives each row the answer it gets alone (the attention mask and
position ids hide the padding), which bench/bench_eval.py checks against one-prompt-at-a-time generation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from ftbench.chat.base import cut_at_stop
from ftbench.chat.hf import FALLBACK_TEMPLATE, PLAIN_STOPS, HFBackend, LoadedBase
from ftbench.chat.protocol import VariantSpec
from ftbench.evaluate.prefill import staged_batch, tail_logits, usable_prefix


@dataclass(frozen=True)
class GenConfig:
    max_new_tokens: int = 64
    stop: tuple[str, ...] = ()
    seed: int = 0
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    chat_template: bool = True


def plain_prompt(messages: Sequence[dict[str, str]]) -> str:
    """With the chat template off the model continues the raw text of the prompt's turns."""
    return "\n\n".join(m["content"] for m in messages)


def pad_id(tokenizer: Any, stop_ids: Sequence[int]) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (list(stop_ids) or [0])[0]


def left_padded(model: Any, pad: int, sequences: Sequence[list[int]]) -> dict[str, Any]:
    """input_ids and attention_mask with every sequence aligned to the right, as batched decoding needs."""
    width = max(len(t) for t in sequences)
    ids = torch.full((len(sequences), width), pad, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, t in enumerate(sequences):
        ids[i, width - len(t) :] = torch.tensor(t, dtype=torch.long)
        mask[i, width - len(t) :] = 1
    return {"input_ids": ids.to(model.device), "attention_mask": mask.to(model.device)}


def generate_batch(
    model: Any, tokenizer: Any, stop_ids: Sequence[int], prompts: Sequence[list[int]], config: GenConfig
) -> list[dict[str, Any]]:
    """One `generate` call for a batch of tokenized prompts (the eval job's and the in-training eval's), continuing
    from a cache prefilled in length-sorted chunks on a shared prefix (prefill.py) where the model's cache allows."""
    pad = pad_id(tokenizer, stop_ids)
    staged = staged_batch(model, pad, prompts, usable_prefix(prompts)) if len(prompts) > 1 else None
    kwargs: dict[str, Any] = {
        "max_new_tokens": config.max_new_tokens,
        "eos_token_id": list(stop_ids) or None,
        "pad_token_id": pad,
        "use_cache": True,
    }
    if staged is not None:
        enc = {"input_ids": staged.input_ids, "attention_mask": staged.attention_mask}
        kwargs[staged.keyword] = staged.cache
    else:
        enc = left_padded(model, pad, prompts)
    if config.temperature > 0:
        kwargs.update(do_sample=True, temperature=config.temperature, top_p=config.top_p, top_k=0)
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    torch.manual_seed(config.seed)
    with torch.inference_mode():
        out = model.generate(**enc, **kwargs)
    results = []
    for ids in out[:, enc["input_ids"].shape[1] :].tolist():
        ended = next((i for i, t in enumerate(ids) if t in stop_ids), None)
        ids = ids[:ended] if ended is not None else ids
        # a budget that ends inside a multi-byte character leaves a replacement char; chat drops it the same way
        text = tokenizer.decode(ids, skip_special_tokens=True).rstrip("\ufffd")
        text, hit = cut_at_stop(text, config.stop) if config.stop else (text, False)
        results.append(
            {
                "prediction": text.strip(),
                "gen_tokens": len(ids),
                "finish": "stop" if ended is not None or hit else "length",
            }
        )
    return results


class HFRunner:
    """The HF variants of one eval, with their bases loaded once."""

    def __init__(
        self,
        specs: Sequence[VariantSpec],
        config: GenConfig,
        device: str | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        self.backend = HFBackend(device=device, trust_remote_code=trust_remote_code)
        self.config = config
        for spec in specs:
            self.backend.load(spec)

    def _base(self, name: str) -> LoadedBase:
        return self.backend.bases[self.backend.variants[name][0]]

    def render(self, base: LoadedBase, messages: Sequence[dict[str, str]]) -> tuple[str, bool]:
        """(prompt text, add special tokens): templates carry their own BOS, raw text needs the tokenizer's."""
        if not self.config.chat_template:
            return plain_prompt(messages), True
        return base.render(list(messages)), base.template == FALLBACK_TEMPLATE

    def _prompt_ids(self, base: LoadedBase, messages: Sequence[dict[str, str]]) -> list[int]:
        text, special = self.render(base, messages)
        return base.tokenizer(text, add_special_tokens=special)["input_ids"]

    def generate(self, name: str, batch: Sequence[list[dict[str, str]]]) -> list[dict[str, Any]]:
        """Answers for a batch of prompts: text (cut at stop strings), generated tokens and why it ended."""
        base = self._base(name)
        stops = self.config.stop + (
            PLAIN_STOPS if self.config.chat_template and base.template == FALLBACK_TEMPLATE else ()
        )
        with self.backend.switch(name):
            return generate_batch(
                base.model,
                base.tokenizer,
                base.stop_ids,
                [self._prompt_ids(base, m) for m in batch],
                replace(self.config, stop=stops),
            )

    def reference_nll(self, name: str, batch: Sequence[tuple[list[dict[str, str]], str]]) -> list[tuple[float, int]]:
        """(sum of -log p(reference token | prompt, earlier reference tokens), reference tokens) per row."""
        base = self._base(name)
        prompts = [self._prompt_ids(base, m) for m, _ in batch]
        refs = [base.tokenizer(r, add_special_tokens=False)["input_ids"] for _, r in batch]
        with self.backend.switch(name):
            logits, ids = tail_logits(base.model, pad_id(base.tokenizer, base.stop_ids), prompts, refs)
        logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
        token_lp = logprobs.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        out = []
        for i, ref in enumerate(refs):
            n = len(ref)
            out.append((-float(token_lp[i, token_lp.shape[1] - n :].sum()) if n else 0.0, n))
        return out
