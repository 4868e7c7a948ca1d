"""Training reads rows through the browser's readers: the same files open, with the same row numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftbench.catalog.datasets import open_dataset
from ftbench.core.errors import FtbenchError
from ftbench.train.io import read_rows

GOOD = {"instruction": "a", "output": "b"}


def _jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_row_numbers_match_the_browser_across_blank_and_broken_lines(tmp_path):
    path = _jsonl(
        tmp_path / "d.jsonl", [json.dumps(GOOD), "", "not json", json.dumps({"instruction": "c", "output": "d"})]
    )
    loaded = read_rows(path, skip_bad_rows=True)
    assert loaded.numbers == [1, 4] and loaded.bad_lines == [3]
    with open_dataset(path) as reader:
        browsed = reader.rows(0, 4)
    assert browsed[2].error is not None and browsed[2].index + 1 == 3
    assert browsed[3].data == loaded.rows[1] and browsed[3].index + 1 == loaded.numbers[1]
    with pytest.raises(FtbenchError, match=r"1 row\(s\) cannot be read as objects \(row 3\)"):
        read_rows(path)


def test_a_format_error_names_the_browser_row(tmp_path):
    from ftbench.core.recipe import validate_recipe
    from ftbench.train.data import load_rows

    path = _jsonl(tmp_path / "d.jsonl", [json.dumps(GOOD), "", json.dumps({"instruction": "only"})])
    recipe = validate_recipe({"task": "sft", "model": "m", "data": {"train": str(path), "format": "alpaca"}})
    with pytest.raises(FtbenchError, match=r"d.jsonl: row 3: missing field 'output'"):
        load_rows(recipe.data, "sft")


@pytest.mark.parametrize("kind", ["csv", "tsv", "json", "json-lines-named-json", "parquet"])
def test_every_browser_format_trains_the_same_rows(tmp_path, kind):
    rows = [{"text": f"row {i}", "label": str(i % 2)} for i in range(5)]
    if kind in ("csv", "tsv"):
        sep = "," if kind == "csv" else "\t"
        path = tmp_path / f"d.{kind}"
        path.write_text(
            "text" + sep + "label\n" + "".join(f"{r['text']}{sep}{r['label']}\n" for r in rows), encoding="utf-8"
        )
    elif kind == "json":
        path = tmp_path / "d.json"
        path.write_text(json.dumps({"data": rows}), encoding="utf-8")
    elif kind == "json-lines-named-json":
        path = _jsonl(tmp_path / "d.json", [json.dumps(r) for r in rows])
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = tmp_path / "d.parquet"
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=2)
    loaded = read_rows(path, max_rows=4)
    assert loaded.rows == rows[:4] and loaded.numbers == [1, 2, 3, 4]
    with open_dataset(path) as reader:
        assert [r.data for r in reader.rows(0, 4)] == loaded.rows


def test_a_saved_dataset_dict_trains_its_train_split(tmp_path):
    import pyarrow as pa

    root = tmp_path / "saved"
    for split, n in (("test", 2), ("train", 3)):
        (root / split).mkdir(parents=True)
        table = pa.Table.from_pylist([{"text": f"{split} {i}"} for i in range(n)])
        with (
            pa.OSFile(str(root / split / "data-00000-of-00001.arrow"), "wb") as sink,
            pa.ipc.new_stream(sink, table.schema) as writer,
        ):
            writer.write_table(table)
    (root / "dataset_dict.json").write_text(json.dumps({"splits": ["test", "train"]}), encoding="utf-8")
    assert [r["text"] for r in read_rows(root).rows] == ["train 0", "train 1", "train 2"]


def test_a_missing_or_unreadable_file_is_one_clear_error(tmp_path):
    with pytest.raises(FtbenchError, match="does not exist"):
        read_rows(tmp_path / "nope.jsonl")
    odd = tmp_path / "d.xlsx"
    odd.write_bytes(b"PK")
    with pytest.raises(FtbenchError, match="suffix '.xlsx', which ftbench cannot read"):
        read_rows(odd)
