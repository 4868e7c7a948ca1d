"""Models on the box: Hugging Face folders, the Hugging Face cache, GGUF files and PEFT adapters.

Everything is read from metadata, never from weights, and without torch or transformers (this runs inside
the TUI): parameter counts and dtypes come from safetensors headers (an 8-byte little-endian length, then a
JSON header), the architecture and sizes from config.json, the license from the model card's YAML front
matter, GGUF facts from the file's header (`gguf_header`, which skips the vocabulary's contents).
Finding models on the box is `model_listing`'s job; this module describes one.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ftbench.catalog.hf_files import read_safetensors_header, text_config
from ftbench.catalog.walk import folder_fingerprint
from ftbench.core.artifacts import ADAPTER_CONFIG, MODEL_CONFIG, classify
from ftbench.core.errors import FtbenchError

DTYPE_BYTES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
}


@dataclass
class ModelInfo:
    """One entry of the Models list and everything its detail panel shows."""

    name: str
    path: str
    kind: str  # hf | gguf | adapter
    source: str  # the root it was found under, or "hf-cache"
    architecture: str | None = None
    model_type: str | None = None
    params: int | None = None
    dtype: str | None = None
    context_length: int | None = None
    chat_template: bool = False
    vocab_size: int | None = None
    license: str | None = None
    size_bytes: int = 0
    base_model: str | None = None  # adapters: the model they were trained on
    peft_type: str | None = None
    quantization: str | None = None  # GGUF file type, or a bitsandbytes/GPTQ config
    shape: dict[str, int] = field(default_factory=dict)  # hidden_size, num_layers, ... for the estimate
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------------------------
# safetensors headers
# ----------------------------------------------------------------------------------------------
def safetensors_stats(files: list[Path]) -> tuple[int, Counter[str]]:
    """(total parameters, parameters per dtype) over safetensors files, from their headers alone."""
    total = 0
    by_dtype: Counter[str] = Counter()
    for f in files:
        for name, meta in read_safetensors_header(f).items():
            if name == "__metadata__" or not isinstance(meta, dict):
                continue
            n = 1
            for dim in meta.get("shape", []):
                n *= int(dim)
            total += n
            by_dtype[str(meta.get("dtype"))] += n
    return total, by_dtype


def _weight_files(folder: Path, stem: str = "model") -> list[Path]:
    index = folder / f"{stem}.safetensors.index.json"
    if index.is_file():
        names = sorted(set(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}).values()))
        return [folder / n for n in names if (folder / n).is_file()]
    single = folder / f"{stem}.safetensors"
    if single.is_file():
        return [single]
    return sorted(folder.glob("*.safetensors"))


# ----------------------------------------------------------------------------------------------
# folders
# ----------------------------------------------------------------------------------------------
def folder_size(path: Path) -> int:
    """Bytes of the files directly in `path` (a model's weights and configs), symlinked blobs counted once.

    Sub-folders (checkpoints, `original/`) are not walked: on a network file system a recursive walk per
    model is what makes a listing slow, and they are not part of the model a loader reads.
    """
    if path.is_file():
        return path.stat().st_size
    return folder_fingerprint(path).size


def read_license(folder: Path) -> str | None:
    """The `license:` of a model card's YAML front matter (README.md), if any."""
    import yaml

    card = folder / "README.md"
    if not card.is_file():
        return None
    text = card.read_text(encoding="utf-8", errors="replace")
    if not text.startswith("---"):
        return None
    end = text.find("\n---", 3)
    if end < 0:
        return None
    try:
        meta = yaml.safe_load(text[3:end])
    except yaml.YAMLError:
        return None
    if not isinstance(meta, dict) or meta.get("license") is None:
        return None
    lic = meta["license"]
    return ", ".join(map(str, lic)) if isinstance(lic, list) else str(lic)


def _get(config: dict[str, Any], *keys: str) -> Any:
    """The first of `keys` present in config or in its text_config (multimodal configs nest the LM)."""
    for source in (config, text_config(config)):
        for k in keys:
            if source.get(k) is not None:
                return source[k]
    return None


def model_shape(config: dict[str, Any]) -> dict[str, int]:
    """The sizes the VRAM estimate needs, under one set of names whatever the architecture calls them."""
    shape: dict[str, int] = {}
    names = {
        "hidden_size": ("hidden_size", "n_embd", "d_model", "dim"),
        "num_layers": ("num_hidden_layers", "n_layer", "num_layers", "n_layers"),
        "num_heads": ("num_attention_heads", "n_head", "num_heads"),
        "num_kv_heads": ("num_key_value_heads", "num_kv_heads", "n_head_kv"),
        "intermediate_size": ("intermediate_size", "n_inner", "ffn_dim", "hidden_dim"),
        "vocab_size": ("vocab_size",),
        "head_dim": ("head_dim",),
    }
    for key, aliases in names.items():
        value = _get(config, *aliases)
        if isinstance(value, int):
            shape[key] = value
    if "hidden_size" in shape:
        shape.setdefault("intermediate_size", 4 * shape["hidden_size"])
    if "num_heads" in shape:
        shape.setdefault("num_kv_heads", shape["num_heads"])
        if "hidden_size" in shape:
            shape.setdefault("head_dim", shape["hidden_size"] // max(shape["num_heads"], 1))
    shape["tied_embeddings"] = int(bool(_get(config, "tie_word_embeddings")))
    return shape


def _params_from_shape(shape: dict[str, int]) -> int | None:
    """A parameter count from config sizes alone (for .bin-only folders): attention + MLP + embeddings."""
    try:
        h, n, inter, v = shape["hidden_size"], shape["num_layers"], shape["intermediate_size"], shape["vocab_size"]
    except KeyError:
        return None
    kv = shape.get("num_kv_heads", 1) * shape.get("head_dim", h)
    per_layer = 2 * h * h + 2 * h * kv + 3 * h * inter + 2 * h
    return n * per_layer + v * h * (1 if shape.get("tied_embeddings") else 2)


def _dominant(by_dtype: Counter[str]) -> str | None:
    if not by_dtype:
        return None
    return by_dtype.most_common(1)[0][0]


def _has_chat_template(folder: Path) -> bool:
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    tc = folder / "tokenizer_config.json"
    if tc.is_file():
        try:
            return bool(json.loads(tc.read_text(encoding="utf-8")).get("chat_template"))
        except json.JSONDecodeError:
            return False
    return False


def _tokenizer_vocab(folder: Path) -> int | None:
    """The tokenizer's vocabulary (incl. added tokens) from tokenizer.json, when config.json lacks it."""
    tj = folder / "tokenizer.json"
    if not tj.is_file():
        return None
    try:
        data = json.loads(tj.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None
    vocab = data.get("model", {}).get("vocab")
    n = len(vocab) if isinstance(vocab, (dict, list)) else 0
    added = {t.get("id") for t in data.get("added_tokens", []) if isinstance(t, dict)}
    return max(n, max((i for i in added if isinstance(i, int)), default=-1) + 1) or None


def inspect_hf_folder(folder: Path, source: str, name: str | None = None) -> ModelInfo:
    """A ModelInfo for a transformers-style folder (config.json + weights)."""
    info = ModelInfo(name=name or folder.name, path=str(folder), kind="hf", source=source)
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        info.error = f"config.json unreadable: {exc}"
        return info
    archs = config.get("architectures") or []
    info.architecture = archs[0] if archs else None
    info.model_type = config.get("model_type")
    info.shape = model_shape(config)
    info.context_length = _get(config, "max_position_embeddings", "n_positions", "max_seq_len", "seq_length")
    info.vocab_size = info.shape.get("vocab_size") or _tokenizer_vocab(folder)
    info.chat_template = _has_chat_template(folder)
    info.license = read_license(folder)
    quant = config.get("quantization_config")
    if isinstance(quant, dict):
        info.quantization = str(quant.get("quant_method") or ("bnb-4bit" if quant.get("load_in_4bit") else "quantized"))
    try:
        files = _weight_files(folder)
        if files:
            info.params, by_dtype = safetensors_stats(files)
            info.dtype = _dominant(by_dtype)
        else:
            info.params = _params_from_shape(info.shape)
            info.dtype = config.get("torch_dtype") or config.get("dtype")
    except FtbenchError as exc:
        info.error = exc.message
    info.dtype = _canonical_dtype(info.dtype)
    info.size_bytes = folder_size(folder)
    return info


def _canonical_dtype(dtype: Any) -> str | None:
    if dtype is None:
        return None
    text = str(dtype).replace("torch.", "").upper()
    return {"FLOAT32": "F32", "FLOAT16": "F16", "BFLOAT16": "BF16", "FLOAT": "F32", "HALF": "F16"}.get(text, text)


def inspect_adapter(folder: Path, source: str, name: str | None = None) -> ModelInfo:
    """A ModelInfo for a PEFT adapter folder (adapter_config.json + adapter weights), naming its base."""
    info = ModelInfo(name=name or folder.name, path=str(folder), kind="adapter", source=source)
    try:
        config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        info.error = f"adapter_config.json unreadable: {exc}"
        return info
    info.base_model = config.get("base_model_name_or_path")
    info.peft_type = config.get("peft_type")
    info.architecture = info.peft_type
    info.chat_template = _has_chat_template(folder)
    info.license = read_license(folder)
    try:
        files = _weight_files(folder, "adapter_model")
        if files:
            info.params, by_dtype = safetensors_stats(files)
            info.dtype = _canonical_dtype(_dominant(by_dtype))
    except FtbenchError as exc:
        info.error = exc.message
    info.size_bytes = folder_size(folder)
    return info


# ----------------------------------------------------------------------------------------------
# GGUF
# ----------------------------------------------------------------------------------------------


def inspect_gguf(path: Path, source: str, name: str | None = None) -> ModelInfo:
    """A ModelInfo for a .gguf file from its header: metadata scalars, the token list's length, the tensor table."""
    from ftbench.catalog.gguf_header import (  # numpy: not imported at TUI start
        GGUFArray,
        file_type_name,
        read_gguf_header,
    )

    info = ModelInfo(name=name or path.name, path=str(path), kind="gguf", source=source, size_bytes=path.stat().st_size)
    try:
        header = read_gguf_header(path)
    except FtbenchError as exc:  # a truncated file must still be listed
        info.error = f"not a readable GGUF file: {exc.message}"
        return info
    arch = header.architecture

    def value(key: str) -> Any:
        v = header.get(key)
        return None if isinstance(v, GGUFArray) else v

    info.architecture = arch
    info.model_type = arch
    info.context_length = value(f"{arch}.context_length")
    tokens = header.array_length("tokenizer.ggml.tokens")
    info.vocab_size = tokens if tokens is not None else value(f"{arch}.vocab_size")
    info.chat_template = "tokenizer.chat_template" in header.metadata
    info.license = value("general.license")
    info.params = header.n_params
    file_type = value("general.file_type")
    if file_type is not None:
        info.quantization = file_type_name(int(file_type))
    info.dtype = info.quantization
    shape = {
        "hidden_size": value(f"{arch}.embedding_length"),
        "num_layers": value(f"{arch}.block_count"),
        "num_heads": value(f"{arch}.attention.head_count"),
        "num_kv_heads": value(f"{arch}.attention.head_count_kv"),
        "intermediate_size": value(f"{arch}.feed_forward_length"),
        "vocab_size": info.vocab_size,
    }
    info.shape = {k: int(v) for k, v in shape.items() if isinstance(v, int)}
    return info


# ----------------------------------------------------------------------------------------------
# one path
# ----------------------------------------------------------------------------------------------
def model_kind(path: Path, files: Collection[str] | None = None) -> str | None:
    """What a path holds: "gguf" (a .gguf file), "adapter" (adapter_config.json wins), "hf" (config.json), or None.

    The one place the catalog decides adapter versus model; listing and `inspect_model` both ask it. `files`,
    the folder's file names when the caller has just listed it, saves the stat calls.
    """
    if files is None:
        return {"gguf": "gguf", "adapter": "adapter", "model": "hf"}.get(classify(path) or "")
    if ADAPTER_CONFIG in files:
        return "adapter"
    if MODEL_CONFIG in files:
        return "hf"
    return None


INSPECTORS = {"gguf": inspect_gguf, "adapter": inspect_adapter, "hf": inspect_hf_folder}


def inspect_model(path: str | os.PathLike[str], source: str = "path", name: str | None = None) -> ModelInfo:
    """A ModelInfo for a model folder, adapter folder or .gguf file; `FtbenchError` when it is none of them."""
    p = Path(path).expanduser()
    kind = model_kind(p)
    if kind is None:
        raise FtbenchError(
            f"{p} is not a model: no config.json, no adapter_config.json, and not a .gguf file.",
            "Point at a Hugging Face model folder, a PEFT adapter folder or a .gguf file "
            "(`ftbench models` lists them).",
        )
    return INSPECTORS[kind](p, source, name)
