"""Files written by other tools: a byte-order mark and Windows line endings are normal input; text that is not
UTF-8 is refused with the file, the line and a hint (never silently turned into U+FFFD)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftbench.core.errors import FtbenchError
from ftbench.train.io import read_rows

ROWS = [{"instruction": "hi", "output": "x"}, {"instruction": "café", "output": "y"}]


@pytest.mark.parametrize("kind", ["jsonl", "csv", "tsv"])
def test_bom_and_crlf_are_read_as_plain_rows(kind: str, tmp_path: Path) -> None:
    if kind == "jsonl":
        text = '{"instruction": "hi", "output": "x"}\r\n{"instruction": "café", "output": "y"}\r\n'
    else:
        sep = "," if kind == "csv" else "\t"
        text = f"instruction{sep}output\r\nhi{sep}x\r\ncafé{sep}y\r\n"
    path = tmp_path / f"data.{kind}"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    loaded = read_rows(path)
    assert loaded.rows == ROWS and loaded.bad_lines == []


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_latin1_is_refused_with_file_line_and_hint(kind: str, tmp_path: Path) -> None:
    if kind == "jsonl":
        text = '{"instruction": "hi", "output": "x"}\n{"instruction": "café", "output": "y"}\n'
    else:
        text = "instruction,output\nhi,x\ncafé,y\n"
    path = tmp_path / f"export.{kind}"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(FtbenchError) as err:
        read_rows(path)
    message = err.value.message
    line = 2 if kind == "jsonl" else 3
    assert message.startswith(f"{path} line {line} is not UTF-8 text (byte 0xE9")
    assert "UTF-8" in (err.value.hint or "") and "\ufffd" not in message
