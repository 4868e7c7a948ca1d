"""The GGUF header reader against gguf-py's GGUFReader, on files written by gguf's own GGUFWriter.

Big string arrays (a 150k-token vocabulary with long, empty and NUL-filled tokens) exercise both ways the
reader skips strings: the vectorised fast path and the exact pointer-doubling path.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

import gguf
import numpy as np
import pytest
from gguf_checks import assert_matches_gguf_py

from ftbench.catalog.gguf_header import GGUFArray, read_gguf_header
from ftbench.core.errors import FtbenchError

VT = gguf.GGUFValueType


def write(path: Path, build, endianess=gguf.GGUFEndian.LITTLE, tensors: dict[str, np.ndarray] | None = None) -> Path:
    writer = gguf.GGUFWriter(str(path), "llama", endianess=endianess)
    build(writer)
    for name, array in (
        tensors or {"token_embd.weight": np.zeros((8, 4), np.float16), "norm": np.ones(4, np.float32)}
    ).items():
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def vocab(n: int, seed: int = 0, extra: dict[int, str] | None = None) -> list[str]:
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyzé日本 Ġ"
    tokens = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 14))) for _ in range(n)]
    for i, t in (extra or {}).items():
        tokens[i] = t
    return tokens


def every_type(w: gguf.GGUFWriter) -> None:
    w.add_key_value("t.u8", 200, VT.UINT8)
    w.add_key_value("t.i8", -100, VT.INT8)
    w.add_key_value("t.u16", 60000, VT.UINT16)
    w.add_key_value("t.i16", -30000, VT.INT16)
    w.add_key_value("t.u32", 4_000_000_000, VT.UINT32)
    w.add_key_value("t.i32", -2_000_000_000, VT.INT32)
    w.add_key_value("t.f32", 0.1, VT.FLOAT32)
    w.add_key_value("t.bool", True, VT.BOOL)
    w.add_key_value("t.str", "héllo\x00world", VT.STRING)
    w.add_key_value("t.u64", 2**63 + 5, VT.UINT64)
    w.add_key_value("t.i64", -(2**62), VT.INT64)
    w.add_key_value("t.f64", 1e300, VT.FLOAT64)
    w.add_key_value("t.arr_u8", list(range(7)), VT.ARRAY, VT.UINT8)
    w.add_key_value("t.arr_f32", [0.5] * 11, VT.ARRAY, VT.FLOAT32)
    w.add_key_value("t.arr_bool", [True, False, True], VT.ARRAY, VT.BOOL)
    w.add_key_value("t.arr_i64", [-1, 2**40], VT.ARRAY, VT.INT64)
    w.add_key_value("t.arr_nested", [[1, 2], [3, 4, 5]], VT.ARRAY)
    w.add_key_value("t.arr_str", ["a", "", "ccc"], VT.ARRAY, VT.STRING)
    w.add_context_length(4096)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)


def test_every_value_type_matches_gguf_py(tmp_path: Path) -> None:
    header = assert_matches_gguf_py(write(tmp_path / "types.gguf", every_type))
    assert header.get("t.f32") == pytest.approx(0.1) and header.get("t.u64") == 2**63 + 5
    assert header.get("t.str") == "héllo\x00world"
    nested = header.get("t.arr_nested")
    assert isinstance(nested, GGUFArray) and (nested.type, nested.count) == (int(VT.ARRAY), 2)
    assert header.architecture == "llama" and header.n_params == 8 * 4 + 4


def test_big_endian_file_matches_gguf_py(tmp_path: Path) -> None:
    def build(w: gguf.GGUFWriter) -> None:
        every_type(w)
        w.add_token_list(vocab(3000))

    header = assert_matches_gguf_py(write(tmp_path / "be.gguf", build, gguf.GGUFEndian.BIG))
    assert header.byte_order == ">" and header.array_length("tokenizer.ggml.tokens") == 3000


@pytest.mark.parametrize(
    "extra",
    [
        {},  # short tokens only: the vectorised fast path
        {3: "", 1000: "", 2999: ""},  # empty strings: eight zero bytes look like more starts
        {10: "x" * 300, 2000: "y" * 70_000},  # longer than 255 and 65535 bytes
        {5: "\x00" * 9, 6: "a\x00\x00\x00\x00\x00\x00\x00b", 7: "\x00"},  # NUL runs inside tokens
    ],
    ids=["short", "empty", "long", "nul"],
)
def test_tokenizer_arrays_match_gguf_py(tmp_path: Path, extra: dict[int, str]) -> None:
    tokens = vocab(3000, extra=extra)

    def build(w: gguf.GGUFWriter) -> None:
        w.add_tokenizer_model("gpt2")
        w.add_token_list(tokens)
        w.add_token_types([1] * len(tokens))
        w.add_token_scores([0.0] * len(tokens))
        w.add_token_merges([f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)])
        w.add_chat_template("{{ messages }}")
        w.add_eos_token_id(2)

    header = assert_matches_gguf_py(write(tmp_path / "tok.gguf", build))
    assert header.array_length("tokenizer.ggml.tokens") == 3000
    assert header.array_length("tokenizer.ggml.merges") == 2999
    assert header.get("tokenizer.ggml.eos_token_id") == 2  # read correctly after both skipped arrays


def test_a_150k_vocabulary_is_skipped_exactly(tmp_path: Path) -> None:
    """Too big to hand to GGUFReader in a unit test (it takes tens of seconds): the values written after the
    arrays, the tensor table and the data offset (checked against the file's end) prove the skips landed."""
    n = 150_000
    tokens = vocab(n, seed=1, extra={7: "", 100_000: "z" * 1000, n - 1: "\x00" * 12})
    tensors = {f"blk.{i}.w": np.full((4, 8), i, np.float32) for i in range(300)}

    def build(w: gguf.GGUFWriter) -> None:
        w.add_token_list(tokens)
        w.add_token_types([1] * n)
        w.add_token_merges([f"{a} {b}" for a, b in zip(tokens[:50_000], tokens[1:50_001], strict=True)])
        w.add_key_value("after.arrays", "still here", VT.STRING)
        w.add_custom_alignment(64)

    path = write(tmp_path / "big.gguf", build, tensors=tensors)
    header = read_gguf_header(path)
    assert header.array_length("tokenizer.ggml.tokens") == n and header.array_length("tokenizer.ggml.merges") == 50_000
    assert header.get("after.arrays") == "still here" and header.alignment == 64
    assert [t.name for t in header.tensors] == list(tensors)
    assert all(t.shape == (8, 4) and t.type == int(gguf.GGMLQuantizationType.F32) for t in header.tensors)
    last = header.tensors[-1]
    assert last.offset + last.n_elements * 4 == path.stat().st_size  # the data offset is exact
    with open(path, "rb") as handle:
        handle.seek(header.tensors[123].offset)
        assert np.frombuffer(handle.read(32 * 4), np.float32).tolist() == [123.0] * 32


def handmade(version: int = 3, kv: bytes = b"", n_kv: int = 0, magic: bytes = b"GGUF") -> bytes:
    return magic + struct.pack("<IQQ", version, 0, n_kv) + kv


def kv_array(key: str, etype: int, count: int, body: bytes = b"") -> bytes:
    k = key.encode()
    return struct.pack("<Q", len(k)) + k + struct.pack("<IIQ", int(VT.ARRAY), etype, count) + body


def test_empty_arrays_match_gguf_py(tmp_path: Path) -> None:
    """GGUFWriter refuses empty arrays, but files have them; written by hand."""
    path = tmp_path / "empty.gguf"
    path.write_bytes(
        handmade(kv=kv_array("a.strings", int(VT.STRING), 0) + kv_array("a.ints", int(VT.INT32), 0), n_kv=2)
    )
    header = assert_matches_gguf_py(path)
    assert header.array_length("a.strings") == 0 and header.array_length("a.ints") == 0 and header.tensors == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GGML" + b"\x00" * 40, "is not a GGUF file"),
        (handmade(version=7), "GGUF version 7"),
        (b"GGUF\x03\x00", "too short"),
        (handmade(n_kv=1), "ends inside a metadata key"),
        (handmade(kv=kv_array("a", int(VT.STRING), 5, struct.pack("<Q", 3) + b"abc"), n_kv=1), "runs past the end"),
        (handmade(kv=kv_array("a", 99, 1), n_kv=1), "unknown element type 99"),
    ],
    ids=["magic", "version", "short", "cut-key", "cut-strings", "bad-type"],
)
def test_bad_files_are_one_clear_error(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(data)
    with pytest.raises(FtbenchError, match=message) as info:
        read_gguf_header(path)
    assert str(path) in info.value.message and info.value.hint


def test_every_truncation_is_an_error_or_a_complete_header(tmp_path: Path) -> None:
    def build(w: gguf.GGUFWriter) -> None:
        every_type(w)
        w.add_token_list(vocab(500))

    path = write(tmp_path / "whole.gguf", build)
    whole = path.read_bytes()
    full = read_gguf_header(path)
    cut = tmp_path / "cut.gguf"
    for end in sorted({*range(0, 200, 7), *random.Random(2).sample(range(len(whole)), 60)}):
        cut.write_bytes(whole[:end])
        try:
            header = read_gguf_header(cut)
        except FtbenchError as exc:
            assert str(cut) in exc.message
            continue
        assert end >= full.data_offset - 32 and header.metadata.keys() == full.metadata.keys()


def test_file_type_names_are_gguf_pys() -> None:
    """The catalog's own `general.file_type` table (it avoids importing gguf) says what gguf-py's enum says."""
    from ftbench.catalog.gguf_header import FILE_TYPE_NAMES, file_type_name

    expected = {int(t): t.name.removeprefix("MOSTLY_") for t in gguf.LlamaFileType}
    assert FILE_TYPE_NAMES == expected
    assert file_type_name(15) == "Q4_K_M" and file_type_name(999) == "999"
