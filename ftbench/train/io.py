"""Reading dataset rows for training: JSONL, JSON, CSV/TSV, Parquet, Arrow and `save_to_disk` folders.

Why our own JSONL reader: a broken line must be reported by its line number (or skipped and counted with
`data.skip_bad_rows`), which `datasets.load_dataset("json")` cannot do. Everything here runs before any
model is loaded, so a bad file fails in a second with one clear line.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftbench.core.errors import FtbenchError


@dataclass
class Rows:
    rows: list[dict[str, Any]]
    bad_lines: list[int]


def read_rows(path: str | Path, skip_bad_rows: bool = False, max_rows: int | None = None) -> Rows:
    """All rows of a data file as dicts; broken JSON lines fail with their line numbers unless skipped."""
    p = Path(path)
    if not p.exists():
        raise FtbenchError(f"Data file {p} does not exist.", "Check data.train / data.eval; relative paths are relative to the workspace.")
    if p.is_dir():
        return Rows(_read_saved_dataset(p, max_rows), [])
    suffix = "".join(s.lower() for s in p.suffixes[-2:]) if p.suffix.lower() == ".gz" else p.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return _read_jsonl(p, skip_bad_rows, max_rows)
    if suffix == ".json":
        return _read_json(p, skip_bad_rows, max_rows)
    if suffix in (".csv", ".tsv"):
        with open(p, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle, delimiter="\t" if suffix == ".tsv" else ",")
            rows = [dict(r) for r, _ in zip(reader, range(max_rows or 10**12), strict=False)]
        return Rows(rows, [])
    if suffix in (".parquet", ".arrow"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        if suffix == ".parquet":
            table = pq.read_table(p)
        else:
            with pa.memory_map(str(p)) as source:
                try:
                    table = pa.ipc.open_stream(source).read_all()
                except pa.ArrowInvalid:
                    table = pa.ipc.open_file(source).read_all()
        if max_rows:
            table = table.slice(0, max_rows)
        return Rows(table.to_pylist(), [])
    raise FtbenchError(
        f"Data file {p} has an unsupported extension '{p.suffix}'.",
        "Use .jsonl, .json, .csv, .tsv, .parquet, .arrow or a datasets.save_to_disk folder.",
    )


def _read_jsonl(p: Path, skip_bad_rows: bool, max_rows: int | None) -> Rows:
    rows: list[dict[str, Any]] = []
    bad: list[int] = []
    with open(p, encoding="utf-8", errors="replace") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                bad.append(lineno)
                continue
            if not isinstance(obj, dict):
                bad.append(lineno)
                continue
            rows.append(obj)
            if max_rows and len(rows) >= max_rows:
                break
    if bad and not skip_bad_rows:
        shown = ", ".join(map(str, bad[:10])) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        raise FtbenchError(
            f"{p}: {len(bad)} line(s) are not JSON objects (line {shown}).",
            "Fix those lines, or set data.skip_bad_rows: true to skip them (they are counted in the run log).",
        )
    return Rows(rows, bad)


def _read_json(p: Path, skip_bad_rows: bool, max_rows: int | None) -> Rows:
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except ValueError as exc:
        # Maybe it is JSONL with a .json name.
        try:
            return _read_jsonl(p, skip_bad_rows=False, max_rows=max_rows)
        except FtbenchError:
            pass
        raise FtbenchError(f"{p} is not valid JSON: {exc}.", "A .json file must hold a list of objects (or use JSONL).") from exc
    if isinstance(obj, dict):
        lists = [v for v in obj.values() if isinstance(v, list)]
        if len(obj) == 1 and lists:
            obj = lists[0]
        else:
            obj = [obj]
    if not isinstance(obj, list):
        raise FtbenchError(f"{p} holds a {type(obj).__name__}, not a list of rows.", "A .json file must hold a list of objects.")
    bad = [i for i, r in enumerate(obj) if not isinstance(r, dict)]
    if bad and not skip_bad_rows:
        raise FtbenchError(f"{p}: item(s) {', '.join(map(str, bad[:10]))} are not objects.", "Fix them, or set data.skip_bad_rows: true.")
    rows = [r for r in obj if isinstance(r, dict)]
    return Rows(rows[:max_rows] if max_rows else rows, bad)


def _read_saved_dataset(p: Path, max_rows: int | None) -> list[dict[str, Any]]:
    if not any((p / name).exists() for name in ("dataset_info.json", "dataset_dict.json", "state.json")):
        raise FtbenchError(f"{p} is a folder but not a datasets.save_to_disk folder.", "Point data.train at a file or a saved dataset folder.")
    from datasets import DatasetDict, load_from_disk

    ds = load_from_disk(str(p))
    if isinstance(ds, DatasetDict):
        ds = ds["train"] if "train" in ds else next(iter(ds.values()))
    if max_rows:
        ds = ds.select(range(min(max_rows, len(ds))))
    return ds.to_list()
