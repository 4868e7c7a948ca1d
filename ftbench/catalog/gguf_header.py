"""Read a GGUF file's header — its metadata and tensor table — without touching array contents or weights.

gguf-py's `GGUFReader` builds a numpy view for every element of every metadata array, so opening a model
with a 150k-token vocabulary costs seconds of Python work for the token and merge lists alone. The catalog
needs the scalars (architecture, context length, file type, license, chat template), the length of the token
list (the vocabulary size) and the tensor table (names, shapes, types, parameter count). This reader gives
exactly that: scalars are decoded, arrays are kept as (element type, length, offset) and skipped.

Skipping an array of numbers is arithmetic. An array of strings is a chain of (u64 length, bytes) records, so
finding its end means following the chain; that is done with numpy over the bytes of the array rather than
one Python step per string (see `_skip_strings`). Only what the header occupies is read (the file is
memory-mapped), so the tensor data of a 40 GB file is never paged in.

Torch-free and gguf-package-free: this runs in the TUI process and in the catalog's worker threads.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ftbench.core.errors import FtbenchError

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)  # what gguf-py reads; version 1 used 32-bit counts and is long gone
DEFAULT_ALIGNMENT = 32

# GGUF metadata value types (the `gguf_type` enum of ggml/gguf.h).
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
SCALAR_FORMATS = {
    UINT8: "B", INT8: "b", UINT16: "H", INT16: "h", UINT32: "I", INT32: "i",
    FLOAT32: "f", BOOL: "?", UINT64: "Q", INT64: "q", FLOAT64: "d",
}  # fmt: skip
SCALAR_SIZES = {t: struct.calcsize(f) for t, f in SCALAR_FORMATS.items()}
HINT = "The file may be truncated or not a GGUF file; re-export or re-download it."


@dataclass(frozen=True)
class GGUFArray:
    """A metadata array that was skipped, not read: what its elements are, how many, and where they start."""

    type: int  # the element value type (STRING for token lists)
    count: int
    offset: int  # file offset of the first element, for a caller that wants the contents after all

    def __len__(self) -> int:
        return self.count


@dataclass(frozen=True)
class GGUFTensorInfo:
    """One entry of the tensor table; `shape` is in GGUF's own order (fastest-varying dimension first)."""

    name: str
    shape: tuple[int, ...]
    type: int  # the ggml type id (0 = F32, 1 = F16, 8 = Q8_0, ...)
    offset: int  # absolute file offset of the tensor's data

    @property
    def n_elements(self) -> int:
        n = 1
        for dim in self.shape:
            n *= dim
        return n


@dataclass
class GGUFHeader:
    """Everything before a GGUF file's tensor data: version, metadata (scalars decoded, arrays skipped), tensors."""

    path: Path
    version: int
    byte_order: str  # "<" or ">"
    metadata: dict[str, Any] = field(default_factory=dict)  # key -> int | float | bool | str | GGUFArray
    value_types: dict[str, int] = field(default_factory=dict)  # key -> GGUF value type
    tensors: list[GGUFTensorInfo] = field(default_factory=list)
    alignment: int = DEFAULT_ALIGNMENT
    data_offset: int = 0  # where the tensor data begins

    def get(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(key, default)

    @property
    def architecture(self) -> str | None:
        arch = self.metadata.get("general.architecture")
        return arch if isinstance(arch, str) else None

    @property
    def n_params(self) -> int:
        return sum(t.n_elements for t in self.tensors)

    def array_length(self, key: str) -> int | None:
        value = self.metadata.get(key)
        return value.count if isinstance(value, GGUFArray) else None


class _Cursor:
    """Sequential reads over the memory-mapped file, with bounds checks that name the offset."""

    def __init__(self, path: Path, buf: mmap.mmap, order: str) -> None:
        self.path = path
        self.buf = buf
        self.size = len(buf)
        self.order = order
        self.pos = 0
        self._u32 = struct.Struct(order + "I")
        self._u64 = struct.Struct(order + "Q")

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.size:
            raise FtbenchError(f"{self.path} ends inside {what} (offset {self.pos:,} of {self.size:,} bytes).", HINT)

    def u32(self, what: str) -> int:
        self.need(4, what)
        (value,) = self._u32.unpack_from(self.buf, self.pos)
        self.pos += 4
        return int(value)

    def u64(self, what: str) -> int:
        self.need(8, what)
        (value,) = self._u64.unpack_from(self.buf, self.pos)
        self.pos += 8
        return int(value)

    def string(self, what: str) -> str:
        n = self.u64(what)
        self.need(n, what)
        raw = self.buf[self.pos : self.pos + n]
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def scalar(self, vtype: int, what: str) -> Any:
        size = SCALAR_SIZES[vtype]
        self.need(size, what)
        (value,) = struct.unpack_from(self.order + SCALAR_FORMATS[vtype], self.buf, self.pos)
        self.pos += size
        return value

    def value(self, vtype: int, key: str) -> Any:
        if vtype == STRING:
            return self.string(f"the value of {key}")
        if vtype in SCALAR_FORMATS:
            return self.scalar(vtype, f"the value of {key}")
        if vtype == ARRAY:
            return self.array(key)
        raise FtbenchError(
            f"{self.path}: metadata key {key} has unknown value type {vtype} (offset {self.pos:,}).", HINT
        )

    def array(self, key: str) -> GGUFArray:
        etype = self.u32(f"the array type of {key}")
        count = self.u64(f"the array length of {key}")
        start = self.pos
        if etype in SCALAR_SIZES:
            self.need(count * SCALAR_SIZES[etype], f"the array {key}")
            self.pos += count * SCALAR_SIZES[etype]
        elif etype == STRING:
            self.pos = _skip_strings(self, count, key)
        elif etype == ARRAY:  # arrays of arrays: allowed by the format, used by no model; walked one by one
            for _ in range(count):
                self.array(key)
        else:
            raise FtbenchError(f"{self.path}: array {key} has unknown element type {etype}.", HINT)
        return GGUFArray(etype, count, start)


# ----------------------------------------------------------------------------------------------
# skipping a string array with numpy
# ----------------------------------------------------------------------------------------------
# A string array is a chain: element k starts at p_k, holds an 8-byte length L_k, and p_{k+1} = p_k + 8 + L_k.
# Every byte position j is a possible element start ("candidate") when the 8 bytes at j read as a length no
# larger than a bound (and the string would fit in the file). Each candidate points at its successor
# j + 8 + L(j); the true chain is the path from the first element and the array ends `count` steps along it.
#
# Fast path: with the bound at 255, short strings leave no impostors, so the first `count` candidates are
# the chain itself; one vectorised comparison (each candidate's successor is the next candidate) proves it.
# Otherwise (an empty string, one longer than 255 bytes) the path is followed exactly by pointer doubling
# (log2(count) gathers) over the candidates of a window, with the bound raised in tiers (65535, any).
_FAST_BOUND = 255
_CHUNK = 1 << 20
_DEAD = -1  # the path left the candidate set inside the window: not a chain under this bound
_OUT = -2  # the path left the window: read a larger window


def _lengths(cur: _Cursor) -> np.ndarray:
    """The 8-byte length that would be read at every offset of the file (a strided view; nothing is read)."""
    return np.ndarray((cur.size - 7,), dtype=np.dtype(cur.order + "u8"), buffer=cur.buf, offset=0, strides=(1,))


def _skip_strings(cur: _Cursor, count: int, key: str) -> int:
    """The file offset just past a string array of `count` elements starting at `cur.pos`."""
    start = cur.pos
    if count == 0:
        return start
    if cur.size - start < 8:
        raise FtbenchError(f"{cur.path} ends inside the string array {key} (offset {start:,}).", HINT)
    lengths = _lengths(cur)
    end = _fast_chain_end(cur, lengths, start, count)
    if end is not None:
        return end
    for bound in (_FAST_BOUND, 65535, cur.size):
        window = min(cur.size - start, max(4096, count * 24))
        end = _chain_end(cur, lengths, start, start + window, count, bound)
        while end == _OUT and start + window < cur.size:
            window = min(cur.size - start, window * 4)
            end = _chain_end(cur, lengths, start, start + window, count, bound)
        if end >= 0:
            return end
    raise FtbenchError(
        f"{cur.path}: the string array {key} (offset {start:,}, {count:,} strings) runs past the end of the file.", HINT
    )


def _fast_chain_end(cur: _Cursor, lengths: np.ndarray, start: int, count: int) -> int | None:
    """The array's end when its first `count` short-string candidates chain exactly; else None."""
    found: list[np.ndarray] = []
    n_found, pos = 0, start
    high = range(1, 8) if cur.order == "<" else range(0, 7)  # the bytes that are zero in a length <= 255
    while n_found < count and pos < lengths.size:
        n = min(_CHUNK, lengths.size - pos)
        zero = np.frombuffer(cur.buf, dtype=np.uint8, count=n + 7, offset=pos) == 0
        short = zero[high[0] : high[0] + n].copy()  # byte compares: cheaper than unaligned 8-byte loads
        for b in high[1:]:
            short &= zero[b : b + n]
        hits = np.flatnonzero(short) + pos
        found.append(hits)
        n_found += hits.size
        pos += n
    if n_found < count:
        return None
    nodes = np.concatenate(found)[:count]
    succ = nodes + 8 + lengths[nodes].astype(np.int64)
    if nodes[0] == start and np.array_equal(succ[:-1], nodes[1:]) and succ[-1] <= cur.size:
        return int(succ[-1])
    return None


def _chain_end(cur: _Cursor, lengths: np.ndarray, start: int, stop: int, count: int, bound: int) -> int:
    """End of the chain of `count` strings from `start` using candidates in [start, stop); or _DEAD / _OUT."""
    window = lengths[start : max(start, stop - 7)]
    if window.size == 0:
        return _OUT
    rel = np.flatnonzero(window <= bound)
    if rel.size == 0 or rel[0] != 0:
        return _DEAD
    succ_pos = rel + 8 + window[rel].astype(np.int64)  # relative to start
    inside = succ_pos <= cur.size - start
    if not inside[0]:
        return _DEAD
    rel, succ_pos = rel[inside], succ_pos[inside]
    idx = np.searchsorted(rel, succ_pos)
    found = idx < rel.size
    found[found] = rel[idx[found]] == succ_pos[found]
    succ = np.where(found, idx, np.where(succ_pos >= window.size, _OUT, _DEAD))
    if count == 1:
        return start + int(succ_pos[0])
    node = _follow(succ, count - 1)
    return node if node < 0 else start + int(succ_pos[node])


def _follow(succ: np.ndarray, steps: int) -> int:
    """The node `steps` successors after node 0 (or _DEAD/_OUT), by pointer doubling."""
    n = succ.size
    dead, out = n, n + 1  # absorbing states appended to the table
    table = np.concatenate([np.where(succ == _DEAD, dead, np.where(succ == _OUT, out, succ)), [dead, out]])
    node = 0
    while steps:
        if steps & 1:
            node = int(table[node])
            if node >= n:
                break
        steps >>= 1
        if steps:
            table = table[table]
    return _DEAD if node == dead else _OUT if node == out else node


# ----------------------------------------------------------------------------------------------
# the header
# ----------------------------------------------------------------------------------------------
def read_gguf_header(path: str | os.PathLike[str]) -> GGUFHeader:
    """The header of a GGUF file; `FtbenchError` naming the file and offset when it is not a valid one."""
    p = Path(path)
    try:
        with open(p, "rb") as handle:
            if os.fstat(handle.fileno()).st_size < 24:
                raise FtbenchError(
                    f"{p} is too short to be a GGUF file ({os.fstat(handle.fileno()).st_size} bytes).", HINT
                )
            buf = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as exc:
        raise FtbenchError(
            f"Cannot read {p}: {exc.strerror or exc}.", "Check that the file exists and is readable."
        ) from exc
    try:
        return _parse(p, buf)
    except (struct.error, ValueError, OverflowError) as exc:  # a length or count that makes no sense
        raise FtbenchError(f"{p} has a malformed GGUF header ({exc}).", HINT) from exc
    finally:
        try:
            buf.close()
        except BufferError:  # a numpy view is still held by a traceback; the map closes when it is collected
            pass


def _parse(path: Path, buf: mmap.mmap) -> GGUFHeader:
    if buf[:4] != GGUF_MAGIC:
        raise FtbenchError(f"{path} is not a GGUF file (it starts with {bytes(buf[:4])!r}, not b'GGUF').", HINT)
    (version,) = struct.unpack_from("<I", buf, 4)
    order = "<"
    if version & 0xFFFF == 0:  # written on a big-endian machine (gguf-py detects it the same way)
        order = ">"
        (version,) = struct.unpack_from(">I", buf, 4)
    if version not in SUPPORTED_VERSIONS:
        raise FtbenchError(
            f"{path} is GGUF version {version}; ftbench reads versions 2 and 3.",
            "Re-export it with a current llama.cpp.",
        )
    cur = _Cursor(path, buf, order)
    cur.pos = 8
    n_tensors = cur.u64("the tensor count")
    n_kv = cur.u64("the metadata count")
    header = GGUFHeader(path=path, version=version, byte_order=order)
    for _ in range(n_kv):
        key = cur.string("a metadata key")
        if key in header.metadata:
            raise FtbenchError(f"{path}: metadata key {key} appears twice (offset {cur.pos:,}).", HINT)
        vtype = cur.u32(f"the type of {key}")
        header.value_types[key] = vtype
        header.metadata[key] = cur.value(vtype, key)
    infos = [_tensor_info(cur) for _ in range(n_tensors)]
    header.alignment = _alignment(path, header)
    data_offset = cur.pos + (-cur.pos) % header.alignment
    header.data_offset = data_offset
    names: set[str] = set()
    for name, shape, ttype, offset in infos:
        if name in names:
            raise FtbenchError(f"{path}: tensor {name} appears twice in the tensor table.", HINT)
        names.add(name)
        header.tensors.append(GGUFTensorInfo(name, shape, ttype, data_offset + offset))
    return header


def _tensor_info(cur: _Cursor) -> tuple[str, tuple[int, ...], int, int]:
    name = cur.string("a tensor name")
    n_dims = cur.u32(f"the dimension count of tensor {name}")
    cur.need(8 * n_dims, f"the shape of tensor {name}")
    shape = struct.unpack_from(f"{cur.order}{n_dims}Q", cur.buf, cur.pos)
    cur.pos += 8 * n_dims
    ttype = cur.u32(f"the type of tensor {name}")
    offset = cur.u64(f"the data offset of tensor {name}")
    return name, tuple(int(d) for d in shape), ttype, offset


def _alignment(path: Path, header: GGUFHeader) -> int:
    if "general.alignment" not in header.metadata:
        return DEFAULT_ALIGNMENT
    value = header.metadata["general.alignment"]
    if header.value_types["general.alignment"] != UINT32 or value == 0 or value & (value - 1):
        raise FtbenchError(f"{path}: general.alignment is {value!r}; it must be a power of two stored as uint32.", HINT)
    return int(value)


# `general.file_type` names, as llama.cpp's `llama_ftype` (gguf-py's `LlamaFileType`, minus `MOSTLY_`) has them.
# Kept here because importing the gguf package costs a third of a second of CPU that a catalog listing
# otherwise does not pay; tests/unit/test_gguf_header.py holds this table equal to gguf-py's.
FILE_TYPE_NAMES = {
    0: "ALL_F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
    12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K",
    19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL",
    26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0",
    37: "TQ2_0", 38: "MXFP4_MOE", 39: "NVFP4", 40: "Q1_0", 1024: "GUESSED",
}  # fmt: skip


def file_type_name(file_type: int) -> str:
    """`general.file_type` as llama.cpp names it (F16, Q4_K_M, ...); an unknown number as itself."""
    return FILE_TYPE_NAMES.get(file_type, str(file_type))
