"""Dataset readers, discovery and stats: every file kind, bad rows by line number, the HF caches."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hfenv import use_hf_home

from ftbench.catalog.datasets import (
    ArrowReader,
    CsvReader,
    JsonArrayReader,
    JsonlReader,
    ParquetReader,
    compute_stats,
    discover_datasets,
    open_dataset,
    row_text,
)
from ftbench.core.errors import FtbenchError


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def make_hub_repo(hub: Path, repo_type: str, repo_id: str, files: dict[str, bytes]) -> Path:
    """A Hugging Face hub cache entry laid out as huggingface_hub writes it: blobs, refs, symlinked snapshot."""
    repo = hub / f"{repo_type}s--{repo_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    for i, (name, data) in enumerate(files.items()):
        blob = repo / "blobs" / f"blob{i:04d}"
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = repo / "snapshots" / commit / name
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, link.parent), link)
    return repo / "snapshots" / commit


def test_jsonl_rows_keep_line_numbers_and_report_bad_rows(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "a.jsonl", [{"text": "a", "label": 0}, "{broken", "[1, 2]", "", {"text": "e", "label": 1}]
    )
    with open_dataset(path) as reader:
        assert isinstance(reader, JsonlReader)
        rows = reader.rows(0, 10)
        assert [r.line for r in rows] == [1, 2, 3, 4, 5]
        assert rows[0].data == {"text": "a", "label": 0}
        assert rows[1].data is None and rows[1].error.startswith("invalid JSON")
        assert rows[2].error == "a JSON list, not an object"
        assert rows[3].error == "empty line"
        assert rows[4].data == {"text": "e", "label": 1}
        assert reader.row_count() == (5, True)
        assert reader.columns() == ["text", "label"]


def test_jsonl_search_finds_non_ascii_text_stored_escaped(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [{"t": "plain"}, {"t": "café"}, {"t": "more"}, {"t": "café again"}])
    assert "\\u00e9" in path.read_text()
    with open_dataset(path) as reader:
        assert reader.search("café") == 1
        assert reader.search("café", start=2) == 3
        assert reader.search("nowhere") is None


def test_json_array_object_wrapper_and_json_lines_in_json(tmp_path: Path) -> None:
    arr = tmp_path / "arr.json"
    arr.write_text(json.dumps([{"a": 1}, {"a": 2}, 3]))
    with open_dataset(arr) as reader:
        assert isinstance(reader, JsonArrayReader)
        assert reader.row_count() == (3, True)
        assert [r.data for r in reader.rows(0, 3)][:2] == [{"a": 1}, {"a": 2}]
        assert reader.rows(2, 1)[0].error == "item 2 is a JSON int, not an object"
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"version": 1, "data": [{"a": 1}]}))
    with open_dataset(wrapped) as reader:
        assert reader.row_count() == (1, True)
    lines = write_jsonl(tmp_path / "lines.json", [{"a": 1}, {"a": 2}])
    with open_dataset(lines) as reader:
        assert isinstance(reader, JsonlReader) and reader.kind == "json"
        assert [r.data["a"] for r in reader.rows(0, 2)] == [1, 2]
    bad = tmp_path / "bad.json"
    bad.write_text('[{"a": 1},\n{"a": }]')
    with pytest.raises(FtbenchError, match="line 2"):
        open_dataset(bad)


def test_csv_quoted_newlines_bad_rows_and_tsv(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text('text,label\n"two\nlines, quoted ""x""",1\nplain,0\n\nx,y,z\nlast,1\n', encoding="utf-8")
    with open_dataset(path) as reader:
        assert isinstance(reader, CsvReader)
        assert reader.columns() == ["text", "label"]
        rows = reader.rows(0, 10)
        assert rows[0].data == {"text": 'two\nlines, quoted "x"', "label": "1"}
        assert [r.line for r in rows] == [2, 4, 6, 7]
        assert rows[2].error == "3 fields, the header has 2"
        assert rows[3].data == {"text": "last", "label": "1"}
        assert reader.row_count() == (4, True)
        streamed = list(reader.iter_rows())
        assert [(r.line, r.data, r.error) for r in streamed] == [(r.line, r.data, r.error) for r in rows]
    tsv = tmp_path / "a.tsv"
    tsv.write_text("text\tlabel\nhello, world\t1\n")
    with open_dataset(tsv) as reader:
        assert reader.kind == "tsv"
        assert reader.rows(0, 1)[0].data == {"text": "hello, world", "label": "1"}


def test_parquet_pages_across_row_groups(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"id": list(range(250)), "text": [f"t{i}" for i in range(250)]}), path, row_group_size=100)
    with open_dataset(path) as reader:
        assert isinstance(reader, ParquetReader)
        assert reader.row_count() == (250, True)
        rows = reader.rows(95, 10)
        assert [r.data["id"] for r in rows] == list(range(95, 105))
        assert reader.rows(245, 50)[-1].data == {"id": 249, "text": "t249"}
        assert reader.search("t123") == 123
        assert sum(1 for _ in reader.iter_rows()) == 250


def test_arrow_stream_and_save_to_disk_folder(tmp_path: Path) -> None:
    import pyarrow as pa

    path = tmp_path / "a.arrow"
    table = pa.table({"id": list(range(30))})
    with pa.ipc.new_stream(str(path), table.schema) as writer:
        for batch in table.to_batches(max_chunksize=7):
            writer.write_batch(batch)
    with open_dataset(path) as reader:
        assert isinstance(reader, ArrowReader)
        assert reader.row_count() == (30, True)
        assert [r.data["id"] for r in reader.rows(5, 4)] == [5, 6, 7, 8]

    import datasets

    ds = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"text": ["a", "b", "c"], "label": [0, 1, 0]}),
            "test": datasets.Dataset.from_dict({"text": ["d"], "label": [1]}),
        }
    )
    ds.save_to_disk(str(tmp_path / "saved"))
    with open_dataset(tmp_path / "saved" / "train") as reader:
        assert reader.kind == "hf_disk"
        assert [r.data for r in reader.rows(0, 5)] == [
            {"text": "a", "label": 0},
            {"text": "b", "label": 1},
            {"text": "c", "label": 0},
        ]


def test_unknown_suffix_and_missing_file_are_clear_errors(tmp_path: Path) -> None:
    odd = tmp_path / "a.xlsx"
    odd.write_bytes(b"x")
    with pytest.raises(FtbenchError, match="suffix '.xlsx'"):
        open_dataset(odd)
    with pytest.raises(FtbenchError, match="does not exist"):
        open_dataset(tmp_path / "nope.jsonl")


def test_discover_workspace_and_hf_caches(workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = workspace.datasets_dir
    write_jsonl(
        root / "chat" / "train.jsonl",
        [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}] * 3,
    )
    write_jsonl(root / "ner.jsonl", [{"tokens": ["EU", "rejects"], "ner_tags": ["B-ORG", "O"]}])
    pq.write_table(pa.table({"prompt": ["p"], "chosen": ["c"], "rejected": ["r"]}), root / "pref.parquet")
    (root / "broken.parquet").write_bytes(b"not parquet")
    (root / "notes.txt").write_text("ignored")
    (root / ".hidden").mkdir()
    write_jsonl(root / ".hidden" / "x.jsonl", [{"text": "x"}])

    hub = tmp_path / "hf" / "hub"
    make_hub_repo(
        hub,
        "dataset",
        "org/squad-mini",
        {"data/train.jsonl": b'{"question": "q", "context": "c", "answers": {"text": ["c"], "answer_start": [0]}}\n'},
    )
    make_hub_repo(hub, "model", "org/some-model", {"config.json": b"{}"})
    use_hf_home(monkeypatch, tmp_path / "hf")

    found = {d.name: d for d in discover_datasets(workspace, hf_cache=True)}
    assert set(found) == {
        "chat/train.jsonl",
        "ner.jsonl",
        "pref.parquet",
        "broken.parquet",
        "org/squad-mini:data/train.jsonl",
    }
    assert found["chat/train.jsonl"].format == "messages"
    assert found["chat/train.jsonl"].rows == 3
    assert found["ner.jsonl"].format == "ner"
    assert (found["pref.parquet"].format, found["pref.parquet"].rows, found["pref.parquet"].rows_exact) == (
        "preference",
        1,
        True,
    )
    assert found["broken.parquet"].error and "pref.parquet" in found  # one bad file hides nothing else
    hf = found["org/squad-mini:data/train.jsonl"]
    assert (hf.source, hf.format, hf.size_bytes) == ("hf-cache", "squad", len(Path(hf.path).read_bytes()))
    assert {d.name for d in discover_datasets(workspace, hf_cache=False)} == set(found) - {hf.name}


def test_discover_lists_save_to_disk_splits_once(workspace) -> None:
    import datasets

    datasets.DatasetDict(
        {"train": datasets.Dataset.from_dict({"text": ["a", "b"]}), "test": datasets.Dataset.from_dict({"text": ["c"]})}
    ).save_to_disk(str(workspace.datasets_dir / "saved"))
    found = {d.name: d for d in discover_datasets(workspace, hf_cache=False)}
    assert set(found) == {"saved/train", "saved/test"}
    assert (found["saved/train"].kind, found["saved/train"].rows, found["saved/train"].format) == ("hf_disk", 2, "text")


def word_tokenizer(words: list[str]):
    """A whitespace word-level tokenizer: a row's token count is its word count, so lengths are checkable."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(["[UNK]", *words])}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return tok


def test_stats_count_bad_rows_duplicates_labels_and_token_lengths(tmp_path: Path) -> None:
    rows: list[object] = [{"text": " ".join(["w"] * n), "label": n % 2} for n in range(1, 11)]
    rows += [{"text": "w w", "label": 0}, "{oops", {"text": 5, "label": 1}]  # duplicate of n=2, bad JSON, wrong type
    path = write_jsonl(tmp_path / "a.jsonl", rows)
    progress: list[tuple[int, int]] = []
    with open_dataset(path) as reader:
        stats = compute_stats(
            reader, word_tokenizer(["w"]), max_length=8, progress=lambda d, t: progress.append((d, t)), bins=5
        )
    assert stats.format == "classification"
    assert stats.rows == 13
    assert stats.duplicates == 1
    assert stats.bad_count == 2
    assert stats.bad_rows[0] == (12, stats.bad_rows[0][1]) and stats.bad_rows[0][1].startswith("invalid JSON")
    assert stats.bad_rows[1] == (13, "'text' must be a string, not int")
    assert stats.labels == {"1": 5, "0": 6}
    tl = stats.token_lengths
    assert tl["max"] == 10 and tl["mean"] == pytest.approx(57 / 11)
    assert sum(tl["counts"]) == 11
    assert (tl["over"], tl["over_share"]) == (2, pytest.approx(2 / 11))
    assert progress[-1] == (13, 13)


def test_stats_ner_tags_and_stop(tmp_path: Path) -> None:
    import threading

    path = write_jsonl(
        tmp_path / "n.jsonl",
        [{"tokens": ["a", "b", "c"], "ner_tags": ["B-PER", "O", "O"]}, {"tokens": ["d"], "ner_tags": ["B-LOC"]}],
    )
    with open_dataset(path) as reader:
        stats = compute_stats(reader)
        assert stats.tags == {"O": 2, "B-PER": 1, "B-LOC": 1}
        assert stats.labels == {}
        stop = threading.Event()
        stop.set()
        stopped = compute_stats(reader, stop=stop)
        assert stopped.rows == 0 and not stopped.complete


def test_row_text_reads_chats_and_fields() -> None:
    assert (
        row_text({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}) == "hi\nyo"
    )
    assert row_text({"conversations": [{"from": "human", "value": "a"}]}) == "a"
    assert row_text({"tokens": ["EU", "rejects"], "ner_tags": [1, 0]}) == "EU rejects"
    assert row_text({"instruction": "do", "input": "", "output": "done", "n": 3}) == "do\n\ndone"


def test_discover_lists_load_dataset_cache_splits(workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    src = write_jsonl(tmp_path / "src" / "train.jsonl", [{"text": f"t{i}", "label": i % 2} for i in range(7)])
    cache = tmp_path / "hf" / "datasets"
    datasets.load_dataset("json", data_files={"train": str(src)}, cache_dir=str(cache))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    use_hf_home(monkeypatch, tmp_path / "hf")
    found = [d for d in discover_datasets(workspace, hf_cache=True) if d.source == "hf-cache"]
    assert len(found) == 1
    assert found[0].name.startswith("json/") and found[0].name.endswith(":train")
    assert (found[0].rows, found[0].rows_exact, found[0].format, found[0].kind) == (7, True, "classification", "arrow")


def test_tokenizer_truncation_from_tokenizer_json_is_switched_off(tmp_path: Path) -> None:
    from ftbench.catalog.datasets import load_tokenizer

    tok = word_tokenizer(["w"])
    tok.enable_truncation(max_length=3)
    tok.save(str(tmp_path / "tokenizer.json"))
    loaded = load_tokenizer(tmp_path)
    assert len(loaded.encode("w w w w w w").ids) == 6
    with pytest.raises(FtbenchError, match="no tokenizer.json"):
        load_tokenizer(tmp_path / "missing")
