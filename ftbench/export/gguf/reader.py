"""A GGUF file opened for import: its metadata as Python values and its tensors dequantized to float32.

The header (architecture, type) is checked first with catalog/gguf_header.py, which reads no arrays; this
reader is for the import itself, which needs the token lists and the tensor data. gguf-py's reader maps the
file, so a tensor's bytes are read (and dequantized, for quantized types) only when asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


class GGUFFile:
    """Metadata and lazily dequantized tensors of one GGUF file."""

    def __init__(self, path: Path) -> None:
        import gguf

        self.path = path
        self._reader = gguf.GGUFReader(path)
        self.arch = str(self.get("general.architecture"))
        self._tensors = {t.name: t for t in self._reader.tensors}

    def get(self, key: str, default: Any = None) -> Any:
        """The value stored under `key` (str, number, bool or list), or `default`."""
        field = self._reader.get_field(key)
        return field.contents() if field is not None else default

    def arch_get(self, key: str, default: Any = None) -> Any:
        """`{arch}.key`, e.g. arch_get("block_count")."""
        return self.get(f"{self.arch}.{key}", default)

    def has_tensor(self, name: str) -> bool:
        return name in self._tensors

    def tensor_names(self) -> list[str]:
        return list(self._tensors)

    def shape(self, name: str) -> tuple[int, ...]:
        """Numpy-order shape (GGUF stores the fastest-varying dimension first)."""
        return tuple(int(n) for n in reversed(self._tensors[name].shape))

    def numpy(self, name: str) -> np.ndarray:
        """The tensor as float32 in numpy order, dequantized when stored quantized."""
        from gguf.quants import dequantize

        t = self._tensors[name]
        arr = dequantize(np.asarray(t.data), t.tensor_type)
        return np.asarray(arr, dtype=np.float32).reshape(self.shape(name))

    def same_bytes(self, a: str, b: str) -> bool:
        """True when two tensors hold identical data (a tied output written twice)."""
        ta, tb = self._tensors[a], self._tensors[b]
        return ta.tensor_type == tb.tensor_type and np.array_equal(np.asarray(ta.data), np.asarray(tb.data))
