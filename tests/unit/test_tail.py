"""core/tail.py LineTail: the one byte-offset tail under events.jsonl readers and the log panes."""

from __future__ import annotations

from ftbench.core.events import EventTail
from ftbench.core.tail import LineTail


def test_only_complete_lines_come_back_and_a_torn_line_waits(tmp_path):
    path = tmp_path / "log.txt"
    tail = LineTail(path)
    assert tail.read_new() == []  # no file yet
    path.write_bytes(b"one\r\ntw")
    assert tail.read_new() == [b"one"]
    with open(path, "ab") as handle:
        handle.write(b"o\nthree\n")
    assert tail.read_new_text() == ["two", "three"]
    assert tail.read_new() == []


def test_a_truncated_file_is_read_again_from_the_start(tmp_path):
    path = tmp_path / "log.txt"
    path.write_bytes(b"a long first line\nsecond\n")
    tail = LineTail(path)
    assert len(tail.read_new()) == 2
    path.write_bytes(b"new\n")
    assert tail.read_new() == [b"new"]


def test_starting_near_the_end_skips_the_line_it_lands_in(tmp_path):
    path = tmp_path / "log.txt"
    path.write_bytes(b"".join(b"line %d\n" % i for i in range(100)))
    tail = LineTail(path, start_from_end=20)
    lines = tail.read_new_text()
    assert lines == ["line 98", "line 99"]  # 20 bytes back lands inside "line 97"
    assert LineTail(path, start_from_end=10_000).read_new_text()[0] == "line 0"  # whole file: nothing skipped


def test_event_tail_parses_the_same_lines_and_counts_bad_ones(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"type": "log", "t": 1}\nnot json\n[1]\n{"type": "train", "t": 2')
    tail = EventTail(path)
    assert [e["type"] for e in tail.read_new()] == ["log"] and tail.skipped == 2
    with open(path, "ab") as handle:
        handle.write(b"}\n")
    assert [e["type"] for e in tail.read_new()] == ["train"]
