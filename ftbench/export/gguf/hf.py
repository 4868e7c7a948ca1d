"""Torch-free reading of a Hugging Face model folder: config.json and safetensors tensors, one at a time.

The converter must stream (peak memory about one tensor), read BF16 without torch, and know every tensor's
shape before writing the GGUF header, so safetensors headers are parsed here directly and each tensor is a
lazy handle that memory-maps its bytes only when asked.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ftbench.catalog.hf_files import read_safetensors_header
from ftbench.core.errors import FtbenchError
from ftbench.core.text_files import read_text

_DTYPES = {
    "F32": np.float32,
    "F16": np.float16,
    "F64": np.float64,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}


@dataclass(frozen=True)
class HFTensor:
    """One tensor in a safetensors file, read on demand."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    path: Path
    offset: int
    nbytes: int

    def numpy(self) -> np.ndarray:
        """The tensor as float32 (float types) or its own integer dtype; BF16 is widened bit-exactly."""
        return self._read(self.offset, self.nbytes, self.shape)

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) of a 2-D tensor, reading only their bytes (for writing big tensors in slices)."""
        row_bytes = self.nbytes // self.shape[0]
        return self._read(self.offset + start * row_bytes, (stop - start) * row_bytes, (stop - start, *self.shape[1:]))

    def _read(self, offset: int, nbytes: int, shape: tuple[int, ...]) -> np.ndarray:
        if nbytes == 0:
            return np.zeros(shape, dtype=np.float32)
        raw = np.memmap(self.path, mode="r", dtype=np.uint8, offset=offset, shape=(nbytes,))
        if self.dtype == "BF16":
            bits = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32)
            bits <<= 16  # in place: one float32-sized buffer, no temporaries
            return bits.view(np.float32).reshape(shape)
        if self.dtype not in _DTYPES:
            raise FtbenchError(
                f"Tensor {self.name} in {self.path} has dtype {self.dtype}, which the converter cannot read.",
                "Save the model in F32, F16 or BF16 safetensors (model.save_pretrained).",
            )
        arr = np.frombuffer(raw, dtype=_DTYPES[self.dtype]).reshape(shape)
        if arr.dtype.kind == "f":
            return arr.astype(np.float32)
        return np.array(arr)


def read_tensors(path: Path) -> dict[str, HFTensor]:
    """Lazy handles for every tensor of one safetensors file (the header is read by catalog/hf_files.py)."""
    meta = read_safetensors_header(path)
    start = 8 + _header_length(path)
    out: dict[str, HFTensor] = {}
    for name, info in meta.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        out[name] = HFTensor(name, info["dtype"], tuple(info["shape"]), path, start + a, b - a)
    return out


@dataclass
class HFModel:
    """A model folder: its config and a name -> tensor table across all shards."""

    path: Path
    config: dict[str, Any]
    tensors: dict[str, HFTensor]

    @property
    def architecture(self) -> str:
        archs = self.config.get("architectures") or []
        return archs[0] if archs else str(self.config.get("model_type", "?"))

    def n_params(self) -> int:
        return int(sum(int(np.prod(t.shape)) for t in self.tensors.values()))

    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors.values())


def load_hf_model(path: str | Path) -> HFModel:
    """Open a HF folder without loading weights; a clear error when it is not one."""
    root = Path(path)
    cfg_path = root / "config.json"
    if not cfg_path.is_file():
        raise FtbenchError(
            f"{root} has no config.json, so it is not a Hugging Face model folder.",
            "Point at the folder that holds config.json and *.safetensors.",
        )
    try:
        config = json.loads(read_text(cfg_path, "model configs"))
    except ValueError as exc:
        raise FtbenchError(f"{cfg_path} is not valid JSON ({exc}).", "Re-download or re-save the model.") from exc
    files = sorted(root.glob("*.safetensors"))
    if not files:
        hint = "Re-save it with model.save_pretrained(dir, safe_serialization=True)."
        if list(root.glob("*.bin")):
            raise FtbenchError(f"{root} holds only PyTorch .bin weights; the GGUF converter reads safetensors.", hint)
        raise FtbenchError(f"{root} has no *.safetensors weights.", hint)
    tensors: dict[str, HFTensor] = {}
    for f in files:
        tensors.update(read_tensors(f))
    return HFModel(root, config, tensors)


def rope_params(config: dict[str, Any], layer_type: str = "full_attention") -> dict[str, Any]:
    """Rope settings from transformers 4 (`rope_theta`, `rope_scaling`) or 5 (`rope_parameters`)."""
    rp = config.get("rope_parameters")
    out: dict[str, Any] = {}
    if isinstance(rp, dict):
        if layer_type in rp and isinstance(rp[layer_type], dict):
            rp = rp[layer_type]
        out.update(rp)
    scaling = config.get("rope_scaling")
    if isinstance(scaling, dict):
        for k, v in scaling.items():
            out.setdefault(k, v)
    if "rope_theta" not in out and config.get("rope_theta") is not None:
        out["rope_theta"] = config["rope_theta"]
    if "rope_type" not in out and "type" in out:
        out["rope_type"] = out["type"]
    return out


def _header_length(path: Path) -> int:
    """The byte length of a safetensors file's JSON header (tensor data starts after it and its 8-byte length)."""
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
    return n
