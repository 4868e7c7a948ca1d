"""A minimal GGUF header peek: the general.* and adapter.* keys, without reading the tokenizer or the tensors.

The artifacts resolver uses it to say what a .gguf file is (architecture, quantization, LoRA adapter or model)
in a few reads, torch- and numpy-free. One function, `peek_gguf`, so a faster shared header reader can replace it.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from ftbench.core.errors import FtbenchError

_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_GGUF_STRING, _GGUF_ARRAY = 8, 9
FILE_TYPES = {  # general.file_type -> the quantization name llama.cpp prints
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    32: "BF16",
}


def peek_gguf(path: Path) -> dict[str, Any]:
    """The general.* and adapter.* keys of a GGUF header, read up to the first tokenizer key (never the tensors).

    Kept to one function so a faster shared header reader can replace it."""
    wanted: dict[str, Any] = {}
    try:
        with open(path, "rb") as fh:
            if fh.read(4) != b"GGUF":
                raise ValueError("bad magic")
            version, _n_tensors, n_kv = struct.unpack("<IQQ", fh.read(20))
            if version < 2:
                raise ValueError(f"GGUF version {version}")
            for _ in range(n_kv):
                key = _read_gguf_string(fh)
                if key.startswith("tokenizer."):
                    break
                value = _read_gguf_value(fh, struct.unpack("<I", fh.read(4))[0])
                if key.startswith(("general.", "adapter.")):
                    wanted[key] = value
    except (OSError, ValueError, struct.error, UnicodeDecodeError) as exc:
        raise FtbenchError(
            f"{path} is not a readable GGUF file ({exc}).", "Check the path; the file may be truncated."
        ) from exc
    return wanted


def _read_gguf_string(fh: Any) -> str:
    (length,) = struct.unpack("<Q", fh.read(8))
    return fh.read(length).decode("utf-8")


def _read_gguf_value(fh: Any, vtype: int) -> Any:
    if vtype == _GGUF_STRING:
        return _read_gguf_string(fh)
    if vtype == _GGUF_ARRAY:
        item_type, count = struct.unpack("<IQ", fh.read(12))
        return [_read_gguf_value(fh, item_type) for _ in range(count)]
    fmt = _GGUF_SCALARS.get(vtype)
    if fmt is None:
        raise ValueError(f"unknown value type {vtype}")
    return struct.unpack(fmt, fh.read(struct.calcsize(fmt)))[0]


def quant_name(file_type: Any) -> str | None:
    """Q4_K_M for general.file_type 15; the number itself when unknown; None when absent."""
    return None if file_type is None else FILE_TYPES.get(file_type, str(file_type))
