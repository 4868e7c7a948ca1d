"""Checks on the variants of an eval that run in the CLI before the job starts (no model is loaded).

Scores of variants that tokenize differently are not comparable (perplexity is per token, and a GGUF whose
vocabulary was mangled on export answers garbage that looks like a bad fine-tune), so differing vocabularies
are refused; so is a GGUF without a chat template when the chat template is on, since llama.cpp would
silently substitute another model's format.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ftbench.chat.protocol import VariantSpec
from ftbench.core.errors import FtbenchError


def hf_vocab(folder: Path) -> dict[int, str] | None:
    """id -> token from tokenizer.json (model vocab plus added tokens); None when the folder has no fast tokenizer."""
    path = folder / "tokenizer.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    vocab = data.get("model", {}).get("vocab")
    if isinstance(vocab, dict):
        out = {int(i): t for t, i in vocab.items()}
    elif isinstance(vocab, list):  # Unigram: [[piece, score], ...]
        out = {i: (p[0] if isinstance(p, list) else str(p)) for i, p in enumerate(vocab)}
    else:
        return None
    out.update({int(t["id"]): t["content"] for t in data.get("added_tokens", [])})
    return out


def gguf_vocab(path: Path) -> dict[int, str] | None:
    from gguf import GGUFReader

    field = GGUFReader(str(path)).fields.get("tokenizer.ggml.tokens")
    if field is None:
        return None
    return {i: bytes(field.parts[idx]).decode("utf-8", errors="replace") for i, idx in enumerate(field.data)}


def _vocab_of(spec: VariantSpec) -> dict[int, str] | None:
    if spec.kind == "gguf":
        return gguf_vocab(Path(spec.path))
    return hf_vocab(Path(spec.base if spec.kind == "adapter" else spec.path))


def first_difference(a: dict[int, str], b: dict[int, str]) -> int | None:
    """The first token id both vocabularies have but spell differently, or that only one has below the other's
    size (a GGUF may pad its vocabulary at the end, so ids past the smaller size are not compared)."""
    limit = min(max(a, default=-1), max(b, default=-1))
    for i in range(limit + 1):
        if a.get(i) != b.get(i):
            return i
    return None


def check_tokenizers(specs: Sequence[VariantSpec]) -> None:
    reference: tuple[VariantSpec, dict[int, str]] | None = None
    for spec in specs:
        vocab = _vocab_of(spec)
        if vocab is None:
            continue
        if reference is None:
            reference = (spec, vocab)
            continue
        first, ref_vocab = reference
        diff = first_difference(ref_vocab, vocab)
        if diff is not None:
            raise FtbenchError(
                f"Variants '{first.name}' and '{spec.name}' have different tokenizers (token id {diff} is "
                f"{ref_vocab.get(diff)!r} in one and {vocab.get(diff)!r} in the other), so their scores do not compare.",
                "Evaluate models of one family together, or pass --allow-tokenizer-mismatch.",
            )


def check_gguf_templates(specs: Sequence[VariantSpec]) -> None:
    from ftbench.catalog.models import inspect_gguf

    for spec in specs:
        if spec.kind != "gguf":
            continue
        info = inspect_gguf(Path(spec.path), "eval")
        if info.error:
            raise FtbenchError(
                f"Variant '{spec.name}': {spec.path} is {info.error}.", "Pass a GGUF written by `ftbench export`."
            )
        if not info.chat_template:
            raise FtbenchError(
                f"GGUF {spec.path} has no chat template (tokenizer.chat_template), so its prompts would not match the other variants'.",
                "Re-export it from a model with a chat template, or pass --no-chat-template to score raw prompts.",
            )
