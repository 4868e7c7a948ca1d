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


def fake_job(ws_root: Path, log_lines: int) -> str:
    import json
    import time

    job_id = "20261122-000000-sft-big-ab12"
    folder = ws_root / "runs" / job_id
    folder.mkdir(parents=True)
    (folder / "status.json").write_text(
        json.dumps({"id": job_id, "kind": "train", "state": "succeeded", "created_at": time.time()})
    )
    (folder / "log.txt").write_text("".join(f"log line {i}\n" for i in range(log_lines)))
    return job_id


@pytest.mark.parametrize("command", ["logs", "show"])
def test_a_closed_pipe_ends_quietly(command: str, tmp_path: Path) -> None:
    """`ftbench show ID | head`: the reader is gone before ftbench writes (read end closed up front, so the
    test does not depend on pipe buffer sizes)."""
    import os
    import subprocess
    import sys

    from ftbench.core.workspace import Workspace

    ws = Workspace.open(tmp_path / "ws")
    job_id = fake_job(ws.root, 2000)
    repo = Path(__file__).resolve().parents[2]
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "ftbench.cli", "-w", str(ws.root), command, job_id],
            stdout=write_end,
            stderr=subprocess.PIPE,
            cwd=repo,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert done.stderr.decode() == "" and done.returncode == 141


@pytest.mark.parametrize(
    "exc",
    [
        PermissionError(13, "Permission denied", "/data/secret.jsonl"),
        IsADirectoryError(21, "Is a directory", "/data/dir.jsonl"),
    ],
)
def test_cli_turns_os_errors_into_one_sentence_with_the_path(exc: OSError, tmp_path: Path, capsys, monkeypatch) -> None:
    import ftbench.commands.jobs as jobs_cmd
    from ftbench.cli import main

    def failing(*_args):
        raise exc

    from ftbench.core.workspace import Workspace

    Workspace.open(tmp_path / "ws")
    monkeypatch.setattr(jobs_cmd, "cmd_show", failing)
    code = main(["-w", str(tmp_path / "ws"), "show", "x"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.splitlines()[0] == f"error: {exc.filename}: {exc.strerror}."
    assert [line.split(":")[0] for line in err.splitlines()] == ["error", "hint"]


def test_a_row_missing_a_field_is_named_not_the_whole_file(tmp_path: Path) -> None:
    from ftbench.core.recipe import DataSection
    from ftbench.train.data import load_rows

    rows = [{"instruction": f"q{i}", "output": f"a{i}"} for i in range(20)]
    del rows[12]["output"]
    path = tmp_path / "train.jsonl"
    import json

    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(FtbenchError) as err:
        load_rows(DataSection(train=str(path)), "sft")
    assert err.value.message.startswith(f"{path}: row 13: missing field 'output' for format alpaca")


SQUAD_V2 = {
    "version": "v2.0",
    "data": [
        {
            "title": "Paris",
            "paragraphs": [
                {
                    "context": "Paris is the capital of France.",
                    "qas": [
                        {
                            "id": "q-1",
                            "question": "Capital of what?",
                            "answers": [{"text": "France", "answer_start": 24}],
                            "is_impossible": False,
                        },
                        {
                            "id": "q-2",
                            "question": "How big is Rome?",
                            "answers": [],
                            "plausible_answers": [{"text": "capital", "answer_start": 13}],
                            "is_impossible": True,
                        },
                    ],
                }
            ],
        },
        {"title": "Empty", "paragraphs": [{"context": "Nothing here.", "qas": []}]},
    ],
}


def test_the_original_squad_layout_is_browsed_one_question_per_row(tmp_path: Path) -> None:
    import json

    from rich.console import Console

    from ftbench.catalog.datasets import describe, open_dataset
    from ftbench.tui.widgets.record_view import render_record

    path = tmp_path / "dev-v2.0.json"
    path.write_text(json.dumps(SQUAD_V2), encoding="utf-8")
    info = describe(path, "workspace")
    assert (info.rows, info.format, info.error) == (2, "squad", None)
    with open_dataset(path) as reader:
        assert "SQuAD" in reader.note
        first, second = reader.rows(0, 2)
    assert first.data == {
        "id": "q-1",
        "title": "Paris",
        "context": "Paris is the capital of France.",
        "question": "Capital of what?",
        "answers": {"text": ["France"], "answer_start": [24]},
        "is_impossible": False,
    }
    assert second.data["answers"] == {"text": [], "answer_start": []} and second.data["is_impossible"] is True
    assert second.data["plausible_answers"] == {"text": ["capital"], "answer_start": [13]}
    console = Console(width=80, record=True, color_system=None)
    console.print(render_record(first, "squad"))
    shown = console.export_text()
    assert "Capital of what?" in shown and "Paris is the capital of France." in shown and "row 1" in shown
    assert read_rows(path).rows == [first.data, second.data]  # training reads the same rows, numbered the same
