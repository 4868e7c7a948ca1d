"""GGUF -> Hugging Face folder (float32 safetensors, config, tokenizer), so a GGUF-only model can be fine-tuned.

ftbench's own importer, the exporter run backwards (export/gguf/restore_*.py): config.json from the GGUF's
metadata, every tensor dequantized and put back under its HF name and layout by inverting the exporter's
plan and per-architecture rules, and the tokenizer rebuilt with the same vocabulary type (a SentencePiece
GGUF keeps tokenizer.model). Every architecture the exporter writes can be imported, and exporting the
imported folder again gives the same tensors. Written through a .partial folder, renamed when complete.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ftbench.core.errors import FtbenchError


def gguf_architecture(path: Path) -> tuple[str, str]:
    """(general.architecture, general.type) of a GGUF file, from its header alone."""
    from ftbench.catalog.gguf_header import read_gguf_header

    header = read_gguf_header(path)  # FtbenchError naming the file when it is not a readable GGUF
    kind = header.get("general.type")
    return (header.architecture or "?", kind if isinstance(kind, str) else "model")


def import_gguf(gguf_path: str | Path, out_dir: str | Path) -> Path:
    """Write a float32 HF model folder (weights, config, tokenizer, chat template) for `gguf_path`."""
    from ftbench.export.gguf.reader import GGUFFile
    from ftbench.export.gguf.restore_config import restored_config, rule_of
    from ftbench.export.gguf.restore_tokenizer import write_tokenizer
    from ftbench.export.gguf.restore_weights import restored_tensors, write_safetensors

    src = Path(gguf_path).resolve()
    if not src.is_file():
        raise FtbenchError(f"{src} does not exist.", "Give the path to a .gguf file.")
    _, kind = gguf_architecture(src)
    if kind == "adapter":
        raise FtbenchError(f"{src} is a LoRA adapter GGUF, not a model.", "Import the base model's GGUF instead.")
    out = Path(out_dir)
    if out.exists():
        raise FtbenchError(f"{out} already exists.", "Choose another --out folder or remove it.")
    g = GGUFFile(src)
    rule = rule_of(g)
    cfg = restored_config(g, rule)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        write_safetensors(restored_tensors(g, rule, cfg), partial)
        _write_config(cfg, partial)
        write_tokenizer(g, partial)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    os.replace(partial, out)
    return out


def _write_config(cfg: dict, out_dir: Path) -> None:
    """config.json through transformers' config class, so every default the class fills in is written out."""
    from transformers import AutoConfig

    config = AutoConfig.for_model(**cfg)
    config.dtype = "float32"
    config.save_pretrained(out_dir)
