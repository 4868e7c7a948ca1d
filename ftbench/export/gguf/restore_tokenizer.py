"""Tokenizer files for `ftbench import`, rebuilt from a GGUF's tokenizer.ggml.* keys.

A byte-level BPE vocabulary (tokenizer.ggml.model "gpt2") becomes a tokenizer.json whose pre-tokenizer is
the one llama.cpp runs under the stored name (pretok.HF_PRE_TOKENIZERS), so transformers and llama.cpp
split text alike and a later export picks the same name again. A SentencePiece vocabulary ("llama") is kept
as a SentencePiece model (tokenizer.model, same pieces, scores and types), so a later export reads the same
vocabulary type; transformers derives tokenizer.json from it. Either way tokenizer_config.json carries the
special tokens, the add-BOS/EOS flags and the chat template.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ftbench.core.errors import FtbenchError
from ftbench.export.gguf.pretok import HF_PRE_TOKENIZERS
from ftbench.export.gguf.reader import GGUFFile
from ftbench.export.gguf.tokenizer import BYTE, CONTROL, UNKNOWN, UNUSED, USER_DEFINED

# llama.cpp strips the whitespace after every special token except these when general.name says Phi-3
# (llama-vocab.cpp keys it on the name, not the architecture); the imported tokenizer does the same.
_PHI3_NAMES = ("phi-3", "phi3")
_PHI3_NO_RSTRIP = ("<unk>", "<s>", "<|endoftext|>")


def write_tokenizer(g: GGUFFile, out_dir: Path) -> None:
    """tokenizer.json (and tokenizer.model for SentencePiece) plus tokenizer_config.json for the GGUF's vocabulary,
    saved once more through transformers so the folder is laid out as transformers itself saves it."""
    from transformers import AutoTokenizer

    kind = g.get("tokenizer.ggml.model")
    if kind == "gpt2":
        (out_dir / "tokenizer.json").write_text(json.dumps(bpe_tokenizer_json(g), ensure_ascii=False), "utf-8")
        _write_config(g, out_dir, "TokenizersBackend")
    elif kind == "llama":
        write_sentencepiece_model(g, out_dir)
        _write_config(g, out_dir, "GemmaTokenizer" if g.arch.startswith("gemma") else "LlamaTokenizer")
    else:
        raise FtbenchError(
            f"{g.path} has a {kind!r} tokenizer (tokenizer.ggml.model), which ftbench cannot import.",
            "Importable tokenizers: gpt2 (byte-level BPE) and llama (SentencePiece).",
        )
    AutoTokenizer.from_pretrained(out_dir).save_pretrained(out_dir)  # for SentencePiece, adds its tokenizer.json


def _added_tokens(g: GGUFFile) -> list[dict[str, Any]]:
    """The special (control) and user-defined tokens, as tokenizer.json's added_tokens entries."""
    tokens, types = g.get("tokenizer.ggml.tokens"), g.get("tokenizer.ggml.token_type")
    phi3 = any(n in str(g.get("general.name") or "").lower() for n in _PHI3_NAMES)
    out = []
    for i, (text, kind) in enumerate(zip(tokens, types, strict=True)):
        if kind in (CONTROL, USER_DEFINED) or (kind == UNKNOWN and g.get("tokenizer.ggml.model") == "llama"):
            rstrip = phi3 and kind != UNKNOWN and text not in _PHI3_NO_RSTRIP
            out.append(
                {
                    "id": i,
                    "content": text,
                    "single_word": False,
                    "lstrip": False,
                    "rstrip": rstrip,
                    "normalized": False,
                    "special": kind != USER_DEFINED,
                }
            )
    return out


def bpe_tokenizer_json(g: GGUFFile) -> dict[str, Any]:
    """A byte-level BPE tokenizer.json: vocabulary (padding tokens left out), merges, the pre-tokenizer."""
    pre = str(g.get("tokenizer.ggml.pre") or "default")  # llama.cpp's "default" has a rule of its own
    if pre not in HF_PRE_TOKENIZERS:
        raise FtbenchError(
            f"{g.path} uses llama.cpp's pre-tokenizer {pre!r}, which ftbench cannot rebuild for transformers.",
            "Importable pre-tokenizers: " + ", ".join(sorted(HF_PRE_TOKENIZERS)) + ".",
        )
    spec = HF_PRE_TOKENIZERS[pre]
    tokens, types = g.get("tokenizer.ggml.tokens"), g.get("tokenizer.ggml.token_type")
    vocab = {t: i for i, (t, k) in enumerate(zip(tokens, types, strict=True)) if k != UNUSED}
    merges = [m.split(" ", 1) for m in g.get("tokenizer.ggml.merges") or []]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": _added_tokens(g),
        "normalizer": spec.get("normalizer"),
        "pre_tokenizer": spec["pre_tokenizer"],
        "post_processor": _template(g, tokens),
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": bool(spec.get("ignore_merges", False)),
            "vocab": vocab,
            "merges": merges,
        },
    }


def _template(g: GGUFFile, tokens: list[str]) -> dict[str, Any]:
    """BOS/EOS around each sequence exactly when the GGUF says its tokenizer adds them."""
    edges: dict[str, int] = {}
    for kind in ("bos", "eos"):
        token_id = g.get(f"tokenizer.ggml.{kind}_token_id")
        if g.get(f"tokenizer.ggml.add_{kind}_token") and token_id is not None:
            edges[kind] = int(token_id)

    def seq(part: str, type_id: int) -> list[dict[str, Any]]:
        out = [{"Sequence": {"id": part, "type_id": type_id}}]
        if "bos" in edges:
            out.insert(0, {"SpecialToken": {"id": tokens[edges["bos"]], "type_id": type_id}})
        if "eos" in edges:
            out.append({"SpecialToken": {"id": tokens[edges["eos"]], "type_id": type_id}})
        return out

    specials = {tokens[i]: {"id": tokens[i], "ids": [i], "tokens": [tokens[i]]} for i in edges.values()}
    return {
        "type": "TemplateProcessing",
        "single": seq("A", 0),
        "pair": seq("A", 0) + seq("B", 1),
        "special_tokens": specials,
    }


def _write_config(g: GGUFFile, out_dir: Path, tokenizer_class: str) -> None:
    tokens = g.get("tokenizer.ggml.tokens")
    config: dict[str, Any] = {"tokenizer_class": tokenizer_class, "clean_up_tokenization_spaces": False}
    for kind, key in (("bos", "bos"), ("eos", "eos"), ("unk", "unknown"), ("pad", "padding")):
        token_id = g.get(f"tokenizer.ggml.{key}_token_id")
        if token_id is not None and 0 <= int(token_id) < len(tokens):
            config[f"{kind}_token"] = tokens[int(token_id)]
    for kind in ("bos", "eos"):
        config[f"add_{kind}_token"] = bool(g.get(f"tokenizer.ggml.add_{kind}_token", False))
    config["added_tokens_decoder"] = {str(t["id"]): {k: v for k, v in t.items() if k != "id"} for t in _added_tokens(g)}
    if g.get("tokenizer.chat_template"):
        config["chat_template"] = g.get("tokenizer.chat_template")
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False), "utf-8")


def write_sentencepiece_model(g: GGUFFile, out_dir: Path) -> Path:
    """tokenizer.model rebuilt from a SentencePiece-vocabulary GGUF: the same pieces, scores and types, byte
    fallback when it has byte pieces, and the "▁" prefix flag. llama.cpp merges by score, as SentencePiece's BPE
    does, so the model type is BPE whatever the original was."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    tokens, scores, types = (
        g.get("tokenizer.ggml.tokens"),
        g.get("tokenizer.ggml.scores"),
        g.get("tokenizer.ggml.token_type"),
    )
    proto = pb.ModelProto()
    for piece, score, kind in zip(tokens, scores or [0.0] * len(tokens), types, strict=True):
        proto.pieces.add(piece=piece, score=float(score), type=int(kind))
    trainer = proto.trainer_spec
    trainer.model_type = pb.TrainerSpec.BPE
    trainer.vocab_size = len(tokens)
    trainer.byte_fallback = BYTE in types
    for key, attr in (("unknown", "unk_id"), ("bos", "bos_id"), ("eos", "eos_id"), ("padding", "pad_id")):
        setattr(trainer, attr, int(g.get(f"tokenizer.ggml.{key}_token_id", -1)))
    norm = proto.normalizer_spec
    norm.name = "identity"
    norm.add_dummy_prefix = bool(g.get("tokenizer.ggml.add_space_prefix", True))
    norm.remove_extra_whitespaces = False
    norm.escape_whitespaces = True
    out = out_dir / "tokenizer.model"
    out.write_bytes(proto.SerializeToString())
    return out
