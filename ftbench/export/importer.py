"""GGUF -> Hugging Face folder (dequantized), so a GGUF-only model can be fine-tuned.

transformers' GGUF loader does the dequantization and the inverse tensor transforms; we add the
architecture check up front, carry the chat template over, keep a SentencePiece model when the GGUF holds one
(tokenizer.model, rebuilt from its pieces, scores and types, for tools that want it), and write through a
.partial folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ftbench.core.errors import FtbenchError

# GGUF architectures transformers' GGUF loader can rebuild (gemma, olmo2, granite, smollm3 it cannot).
IMPORTABLE = ("llama", "qwen2", "qwen2moe", "qwen3", "qwen3moe", "phi3", "gemma2", "gemma3", "gpt2")


def gguf_architecture(path: Path) -> tuple[str, str]:
    """(general.architecture, general.type) of a GGUF file, from its header alone."""
    from ftbench.catalog.gguf_header import read_gguf_header

    header = read_gguf_header(path)  # FtbenchError naming the file when it is not a readable GGUF
    kind = header.get("general.type")
    return (header.architecture or "?", kind if isinstance(kind, str) else "model")


def import_gguf(gguf_path: str | Path, out_dir: str | Path) -> Path:
    """Write a float32 HF model folder (weights, config, tokenizer, chat template) for `gguf_path`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = Path(gguf_path).resolve()
    if not src.is_file():
        raise FtbenchError(f"{src} does not exist.", "Give the path to a .gguf file.")
    arch, kind = gguf_architecture(src)
    if kind == "adapter":
        raise FtbenchError(f"{src} is a LoRA adapter GGUF, not a model.", "Import the base model's GGUF instead.")
    if arch not in IMPORTABLE:
        raise FtbenchError(
            f"{src} has architecture {arch!r}, which cannot be imported.", "Importable: " + ", ".join(IMPORTABLE) + "."
        )
    out = Path(out_dir)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    tok = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    config = restored_config(src, arch)
    model = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name, config=config, dtype=torch.float32)
    # The weights are already dequantized to float32; drop the "gguf" quantizer marker so it saves as plain HF.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(partial, safe_serialization=True)
    tok.save_pretrained(partial)
    write_sentencepiece_model(src, partial)
    if out.exists():
        raise FtbenchError(f"{out} already exists.", "Choose another --out folder or remove it.")
    os.replace(partial, out)
    return out


# GGUF keys transformers' GGUF loader does not map back, and the config attribute each one is.
_MISSED_KEYS = {
    "attention.key_length": "head_dim",
    "expert_feed_forward_length": "moe_intermediate_size",
    "expert_shared_feed_forward_length": "shared_expert_intermediate_size",
}


def restored_config(src: Path, arch: str):
    """transformers' config for the GGUF, with the sizes its loader leaves at class defaults filled in from the
    GGUF (head_dim, expert sizes), so models with non-default sizes load; plus the top-k normalisation
    llama.cpp's MoE graphs hard-code."""
    import gguf
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(src.parent, gguf_file=src.name)
    reader = gguf.GGUFReader(src)
    for key, attr in _MISSED_KEYS.items():
        field = reader.get_field(f"{arch}.{key}")
        if field is not None and hasattr(config, attr):
            setattr(config, attr, int(field.contents()))
    if arch in ("qwen2moe", "qwen3moe"):
        config.norm_topk_prob = arch == "qwen3moe"
    return config


def write_sentencepiece_model(gguf_path: Path, out_dir: Path) -> Path | None:
    """tokenizer.model rebuilt from a SentencePiece-vocabulary GGUF (tokenizer.ggml.model == "llama"): the same
    pieces, scores and types, byte fallback when it has byte pieces, and the "▁" prefix flag. None for BPE GGUFs."""
    import gguf

    reader = gguf.GGUFReader(gguf_path)

    def value(key: str, default=None):
        field = reader.get_field(key)
        return field.contents() if field is not None else default

    if value("tokenizer.ggml.model") != "llama":
        return None
    from sentencepiece import sentencepiece_model_pb2 as pb

    tokens, scores, types = (
        value("tokenizer.ggml.tokens"),
        value("tokenizer.ggml.scores"),
        value("tokenizer.ggml.token_type"),
    )
    proto = pb.ModelProto()
    for piece, score, kind in zip(tokens, scores or [0.0] * len(tokens), types, strict=True):
        proto.pieces.add(piece=piece, score=float(score), type=int(kind))
    trainer = proto.trainer_spec
    trainer.model_type = pb.TrainerSpec.BPE
    trainer.vocab_size = len(tokens)
    trainer.byte_fallback = 6 in types
    for key, attr in (("unknown", "unk_id"), ("bos", "bos_id"), ("eos", "eos_id"), ("padding", "pad_id")):
        setattr(trainer, attr, int(value(f"tokenizer.ggml.{key}_token_id", -1)))
    norm = proto.normalizer_spec
    norm.name = "identity"
    norm.add_dummy_prefix = bool(value("tokenizer.ggml.add_space_prefix", True))
    norm.remove_extra_whitespaces = False
    norm.escape_whitespaces = True
    out = out_dir / "tokenizer.model"
    out.write_bytes(proto.SerializeToString())
    return out
