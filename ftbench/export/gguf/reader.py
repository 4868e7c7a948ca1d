"""A GGUF file opened for import: its metadata as Python values and its tensors dequantized to float32.

Built on the catalog's header reader (catalog/gguf_header.py), which parses the header without decoding
arrays: the arrays import needs (tokens, types, scores, merges) are decoded here once, on first use, and a
tensor's bytes are memory-mapped and dequantized (gguf-py's `gguf.quants`) only when asked for. gguf-py's own
`GGUFReader` builds a numpy view per string, which costs minutes on a 50k-token vocabulary on a busy box.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np

from ftbench.catalog.gguf_header import SCALAR_FORMATS, STRING, GGUFArray, read_gguf_header

_NUMPY_OF = {"B": "u1", "b": "i1", "H": "u2", "h": "i2", "I": "u4", "i": "i4", "f": "f4", "?": "?", "Q": "u8",
             "q": "i8", "d": "f8"}  # fmt: skip


class GGUFFile:
    """Metadata and lazily dequantized tensors of one GGUF file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._header = read_gguf_header(path)  # FtbenchError naming the file when it is not a readable GGUF
        self.arch = str(self._header.architecture)
        self._tensors = {t.name: t for t in self._header.tensors}
        self._arrays: dict[str, list[Any]] = {}

    def get(self, key: str, default: Any = None) -> Any:
        """The value stored under `key` (str, number, bool or list), or `default`."""
        value = self._header.get(key, default)
        if isinstance(value, GGUFArray):
            if key not in self._arrays:
                self._arrays[key] = self._read_array(value)
            return self._arrays[key]
        return value

    def arch_get(self, key: str, default: Any = None) -> Any:
        """`{arch}.key`, e.g. arch_get("block_count")."""
        return self.get(f"{self.arch}.{key}", default)

    def has_tensor(self, name: str) -> bool:
        return name in self._tensors

    def shape(self, name: str) -> tuple[int, ...]:
        """Numpy-order shape (GGUF stores the fastest-varying dimension first)."""
        return tuple(reversed(self._tensors[name].shape))

    def numpy(self, name: str) -> np.ndarray:
        """The tensor as float32 in numpy order, dequantized when stored quantized."""
        import gguf
        from gguf.quants import dequantize

        info = self._tensors[name]
        qtype = gguf.GGMLQuantizationType(info.type)
        shape = self.shape(name)
        raw = self._raw(name)
        if qtype == gguf.GGMLQuantizationType.F32:
            return np.array(raw.view(self._order + "f4").reshape(shape))
        if qtype == gguf.GGMLQuantizationType.F16:
            return raw.view(self._order + "f2").reshape(shape).astype(np.float32)
        byte_shape = gguf.quant_shape_to_byte_shape(shape, qtype)
        return np.asarray(dequantize(raw.reshape(byte_shape), qtype), dtype=np.float32).reshape(shape)

    def same_bytes(self, a: str, b: str) -> bool:
        """True when two tensors hold identical data (a tied output written twice)."""
        return self._tensors[a].type == self._tensors[b].type and np.array_equal(self._raw(a), self._raw(b))

    @property
    def _order(self) -> str:
        return self._header.byte_order

    def _raw(self, name: str) -> np.ndarray:
        """The tensor's stored bytes, memory-mapped."""
        import gguf

        info = self._tensors[name]
        block, size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(info.type)]
        nbytes = info.n_elements // block * size
        return np.memmap(self.path, dtype=np.uint8, mode="r", offset=info.offset, shape=(nbytes,))

    def _read_array(self, arr: GGUFArray) -> list[Any]:
        with open(self.path, "rb") as fh:
            fh.seek(arr.offset)
            if arr.type != STRING:
                fmt = SCALAR_FORMATS[arr.type]
                data = fh.read(arr.count * struct.calcsize(fmt))
                return np.frombuffer(data, dtype=self._order + _NUMPY_OF[fmt]).tolist()
            u64 = struct.Struct(self._order + "Q")
            out = []
            for _ in range(arr.count):
                (n,) = u64.unpack(fh.read(8))
                out.append(fh.read(n).decode("utf-8", errors="replace"))
            return out
