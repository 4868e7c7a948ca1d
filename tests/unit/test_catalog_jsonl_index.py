"""The lazy line index: exact lines at chunk boundaries, estimates before the scan, search, threads."""

from __future__ import annotations

import mmap
import random
import threading
from pathlib import Path

import pytest

from ftbench.catalog import jsonl_index
from ftbench.catalog.jsonl_index import LineIndex


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    """One page per chunk, so a few KB of text crosses many chunk boundaries."""
    monkeypatch.setattr(jsonl_index, "CHUNK", mmap.PAGESIZE)
    return mmap.PAGESIZE


def write_lines(path: Path, lines: list[str], trailing: bool = True, sep: str = "\n") -> Path:
    path.write_bytes((sep.join(lines) + (sep if trailing else "")).encode())
    return path


def random_lines(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [f'{{"id": {i}, "t": "{"x" * rng.randint(0, 300)}"}}' for i in range(n)]


def test_every_line_matches_splitlines_across_chunk_boundaries(tmp_path: Path, small_chunks: int) -> None:
    lines = random_lines(400)
    path = write_lines(tmp_path / "a.jsonl", lines)
    assert path.stat().st_size > 10 * small_chunks
    with LineIndex(path) as index:
        assert index.lines(0, 3) == [x.encode() for x in lines[:3]]
        assert not index.done  # only the chunks up to line 3 were scanned
        assert index.scan() is True
        assert index.row_count() == (400, True)
        assert index.lines(0, 400) == [x.encode() for x in lines]
        assert index.line(399) == lines[399].encode()
        with pytest.raises(IndexError):
            index.line(400)


@pytest.mark.parametrize("trailing", [True, False])
def test_last_line_with_and_without_newline(tmp_path: Path, trailing: bool) -> None:
    path = write_lines(tmp_path / "a.jsonl", ["a", "bb", "ccc"], trailing=trailing)
    with LineIndex(path) as index:
        index.scan()
        assert index.row_count() == (3, True)
        assert index.lines(1, 5) == [b"bb", b"ccc"]


def test_crlf_and_blank_lines_keep_line_numbers(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "a.jsonl", ["a", "", "c"], sep="\r\n")
    with LineIndex(path) as index:
        assert index.lines(0, 3) == [b"a", b"", b"c"]
        assert index.row_count() == (3, True)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    with LineIndex(path) as index:
        assert index.row_count() == (0, True)
        assert index.lines(0, 10) == []
        assert index.head_lines(5) == []
        assert index.find(b"x") is None


def test_estimate_before_scan_is_close_and_marked_inexact(tmp_path: Path, small_chunks: int) -> None:
    lines = random_lines(3000, seed=1)
    path = write_lines(tmp_path / "a.jsonl", lines)
    with LineIndex(path) as index:
        estimate, exact = index.row_count()
        assert not exact
        assert abs(estimate - 3000) / 3000 < 0.1
        index.lines(1000, 1)  # a partial scan refines the estimate
        partial, exact = index.row_count()
        assert not exact and abs(partial - 3000) / 3000 < 0.05
        index.scan()
        assert index.row_count() == (3000, True)


def test_head_lines_need_no_index(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "a.jsonl", random_lines(50))
    with LineIndex(path) as index:
        head = index.head_lines(5)
        assert index.scanned_bytes == 0
        assert head == [x.encode() for x in random_lines(50)[:5]]


def test_find_returns_the_line_holding_the_needle(tmp_path: Path, small_chunks: int) -> None:
    lines = random_lines(500, seed=2)
    lines[137] = '{"id": 137, "t": "needle here"}'
    lines[420] = '{"id": 420, "t": "needle again"}'
    path = write_lines(tmp_path / "a.jsonl", lines)
    with LineIndex(path) as index:
        assert index.find(b"needle") == 137
        assert index.find(b"needle", start_line=138) == 420
        assert index.find(b"needle", start_line=421) is None
        assert index.find(b"absent") is None
        assert index.offset_of(137) == sum(len(x) + 1 for x in lines[:137])


def test_reads_are_consistent_while_another_thread_scans(tmp_path: Path, small_chunks: int) -> None:
    lines = random_lines(2000, seed=3)
    path = write_lines(tmp_path / "a.jsonl", lines)
    with LineIndex(path) as index:
        scanner = threading.Thread(target=index.scan)
        scanner.start()
        rng = random.Random(4)
        for _ in range(200):
            i = rng.randrange(2000)
            assert index.line(i) == lines[i].encode()
        scanner.join()
        assert index.row_count() == (2000, True)


def test_reader_ready_tracks_the_index(tmp_path: Path, small_chunks: int) -> None:
    from ftbench.catalog.datasets import open_dataset

    lines = random_lines(600, seed=5)
    path = write_lines(tmp_path / "a.jsonl", lines)
    with open_dataset(path) as reader:
        assert reader.ready(300) is False  # nothing scanned that far yet: the view draws "indexing…"
        assert reader.rows(300, 1)[0].line == 301  # reading scans just far enough
        assert reader.ready(300) is True
        assert reader.ready(590) is False and reader.row_count()[1] is False
        reader.scan()
        assert reader.ready(599) and reader.row_count() == (600, True)
