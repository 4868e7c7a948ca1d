import json

import pytest

from ftbench.core.events import EventTail, EventWriter, downsample, ema, iter_series, read_events


def test_writer_appends_json_lines_with_attempt(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventWriter(path, attempt=2) as w:
        w.emit("train", step=1, loss=1.5)
        w.emit("eval", step=1, eval_loss=float("nan"))
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["type"] == "train" and first["attempt"] == 2 and first["loss"] == 1.5
    assert second["eval_loss"] is None  # NaN would make the line invalid JSON


def test_tail_reads_incrementally_and_keeps_torn_line(tmp_path):
    path = tmp_path / "events.jsonl"
    tail = EventTail(path)
    assert tail.read_new() == []  # missing file is fine
    path.write_bytes(b'{"type": "train", "step": 1}\n{"type": "tr')
    assert [e["step"] for e in tail.read_new()] == [1]
    with open(path, "ab") as f:
        f.write(b'ain", "step": 2}\n')
    assert [e["step"] for e in tail.read_new()] == [2]
    assert tail.read_new() == []


def test_tail_skips_corrupt_lines_and_restarts_on_truncation(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"type": "a"}\nnot json\n[1, 2]\n{"type": "b"}\n')
    tail = EventTail(path)
    assert [e["type"] for e in tail.read_new()] == ["a", "b"]
    assert tail.skipped == 2
    path.write_bytes(b'{"type": "c"}\n')
    assert [e["type"] for e in tail.read_new()] == ["c"]


def test_read_events_filters_and_series(tmp_path):
    path = tmp_path / "e.jsonl"
    with EventWriter(path) as w:
        for step in range(1, 6):
            w.emit("train", step=step, loss=10.0 / step)
        w.emit("log", message="hi")
    events = read_events(path, types=["train"])
    assert len(events) == 5
    assert list(iter_series(events, "train", "loss"))[-1] == (5.0, 2.0)


def test_downsample_keeps_extremes_and_ends():
    points = [(float(i), float((i * 37) % 101)) for i in range(10_000)]
    points[5_000] = (5000.0, -50.0)
    small = downsample(points, 300)
    assert len(small) <= 302
    assert small[0] == points[0] and small[-1] == points[-1]
    assert min(v for _, v in small) == -50.0
    assert max(v for _, v in small) == max(v for _, v in points)
    assert downsample(points[:10], 300) == points[:10]


def test_ema_is_bias_corrected():
    assert ema([4.0, 4.0, 4.0]) == pytest.approx([4.0, 4.0, 4.0])
    smoothed = ema([10.0, 0.0], alpha=0.5)
    assert smoothed[0] == 10.0 and abs(smoothed[1] - 10.0 / 3) < 1e-9
