"""GGUF -> Hugging Face folder (dequantized), so a GGUF-only model can be fine-tuned.

transformers' GGUF loader does the dequantization and the inverse tensor transforms; we add the
architecture check up front, carry the chat template over, and write through a .partial folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ftbench.core.errors import FtbenchError

IMPORTABLE = ("llama", "qwen2", "qwen3", "phi3", "gemma2", "gemma3", "gpt2")


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
        raise FtbenchError(f"{src} has architecture {arch!r}, which cannot be imported.", "Importable: " + ", ".join(IMPORTABLE) + ".")
    out = Path(out_dir)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    tok = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    model = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name, dtype=torch.float32)
    # The weights are already dequantized to float32; drop the "gguf" quantizer marker so it saves as plain HF.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(partial, safe_serialization=True)
    tok.save_pretrained(partial)
    if out.exists():
        raise FtbenchError(f"{out} already exists.", "Choose another --out folder or remove it.")
    os.replace(partial, out)
    return out
