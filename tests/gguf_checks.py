"""Hold ftbench's GGUF header reader to gguf-py's `GGUFReader` on one file (used by unit and export tests)."""

from __future__ import annotations

import struct
from pathlib import Path

from ftbench.catalog.gguf_header import SCALAR_FORMATS, STRING, GGUFArray, GGUFHeader, read_gguf_header


def assert_matches_gguf_py(path: Path) -> GGUFHeader:
    """Same keys in the same order, same scalar values and types, same array lengths, same tensor table."""
    import gguf

    header = read_gguf_header(path)
    reader = gguf.GGUFReader(path)
    fields = {k: f for k, f in reader.fields.items() if not k.startswith("GGUF.")}
    assert header.version == reader.fields["GGUF.version"].contents()
    assert list(header.metadata) == list(fields)
    for key, f in fields.items():
        value = header.metadata[key]
        assert header.value_types[key] == int(f.types[0]), key
        if f.types[0] == gguf.GGUFValueType.ARRAY:
            stored_length = int(f.parts[4][0])  # parts: key length, key, type, element type, length, ...
            assert isinstance(value, GGUFArray) and value.count == stored_length, key
            if value.type != gguf.GGUFValueType.ARRAY:  # gguf-py flattens nested arrays into `data`
                assert value.count == len(f.data), key
            if len(f.types) > 1:
                assert value.type == int(f.types[1]), key
            if value.count and value.type != gguf.GGUFValueType.ARRAY:
                assert first_element(header, value) == f.contents(0), key  # the offset points at the elements
        else:
            expected = f.contents()
            assert value == expected and type(value) is type(expected), (key, value, expected)
    ours = [(t.name, t.shape, t.type, t.offset, t.n_elements) for t in header.tensors]
    theirs = [
        (t.name, tuple(int(d) for d in t.shape), int(t.tensor_type), t.data_offset, t.n_elements)
        for t in reader.tensors
    ]
    assert ours == theirs
    assert (header.data_offset, header.alignment) == (reader.data_offset, reader.alignment)
    return header


def first_element(header: GGUFHeader, array: GGUFArray) -> object:
    """The array's first element read at `array.offset`, to check the offset the reader reports."""
    with open(header.path, "rb") as handle:
        handle.seek(array.offset)
        raw = handle.read(1 << 20)
    order = header.byte_order
    if array.type == STRING:
        (n,) = struct.unpack_from(order + "Q", raw, 0)
        return raw[8 : 8 + n].decode("utf-8")
    (value,) = struct.unpack_from(order + SCALAR_FORMATS[array.type], raw, 0)
    return value
