"""Torch-free readers of a Hugging Face model folder's files, shared by the catalog and the GGUF exporter.

A safetensors file starts with an 8-byte little-endian header length and a JSON header naming every tensor's
dtype, shape and byte range, so sizes, dtypes and parameter counts are known without reading any weights.
A multimodal config nests its language model under `text_config`; `text_config` returns that part with the
outer keys the LM needs (architectures, tied embeddings, dtype).
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

from ftbench.core.errors import FtbenchError

MAX_HEADER = 100 * 1024 * 1024  # a safetensors header larger than this is a corrupt file, not a model


def read_safetensors_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON header of a safetensors file: {tensor name: {dtype, shape, data_offsets}, "__metadata__"}."""
    p = Path(path)
    with open(p, "rb") as handle:
        head = handle.read(8)
        if len(head) != 8:
            raise FtbenchError(f"{p} is too short to be a safetensors file.", "Re-download or re-save the model.")
        (length,) = struct.unpack("<Q", head)
        if length > MAX_HEADER:
            raise FtbenchError(
                f"{p} claims a {length}-byte header; it is not a valid safetensors file.",
                "Re-download or re-save the model.",
            )
        raw = handle.read(length)
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FtbenchError(
            f"{p} has a corrupt safetensors header ({exc}).", "Re-download or re-save the model."
        ) from exc


def text_config(config: dict[str, Any]) -> dict[str, Any]:
    """The language-model part of a config (multimodal wrappers keep it under text_config)."""
    inner = config.get("text_config")
    if isinstance(inner, dict) and inner.get("hidden_size"):
        merged = dict(inner)
        merged.setdefault("architectures", config.get("architectures"))
        for key in ("tie_word_embeddings", "torch_dtype", "dtype"):
            if key in config and key not in merged:
                merged[key] = config[key]
        return merged
    return config
