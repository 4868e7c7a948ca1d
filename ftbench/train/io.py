"""Reading dataset rows for training, through the same readers the Datasets screen browses with.

Why the catalog's readers (catalog/datasets.py `open_dataset`): whatever the browser opens, training reads,
and a row has the same number in both - "row N" in a training error is row N on the Datasets screen (for
JSON Lines, also line N of the file). A broken row fails with its number (or is skipped and counted with
`data.skip_bad_rows`), which `datasets.load_dataset` cannot do. Everything here runs before any model is
loaded, so a bad file fails in a second with one clear line.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftbench.catalog.datasets import open_dataset
from ftbench.core.errors import FtbenchError
from ftbench.core.text_files import NOT_UTF8_HINT


@dataclass
class Rows:
    """The good rows of a file, each with its 1-based row number, and the numbers of the broken rows."""

    rows: list[dict[str, Any]]
    bad_lines: list[int]
    numbers: list[int] = field(default_factory=list)  # numbers[i] is the row number of rows[i]


def read_rows(
    path: str | Path, skip_bad_rows: bool = False, max_rows: int | None = None, columns: dict[str, str] | None = None
) -> Rows:
    """All rows of a data file (or `save_to_disk` folder) as dicts; broken rows fail with their numbers unless skipped.

    `columns` is the recipe's data.columns (format field -> file column): a column it names that no row has
    is an error here, since a mapping that silently matches nothing trains on the wrong field or fails later."""
    p = Path(path)
    if not p.exists():
        raise FtbenchError(
            f"Data file {p} does not exist.",
            "Check data.train / data.eval; relative paths are relative to the workspace.",
        )
    rows: list[dict[str, Any]] = []
    numbers: list[int] = []
    bad: list[int] = []
    first_problem = ""
    with open_dataset(_split_folder(p)) as reader:
        for row in reader.iter_rows():
            if row.data is None:
                if row.raw.strip():  # blank lines are not rows anyone wrote
                    bad.append(row.index + 1)
                    first_problem = first_problem or str(row.error)
                continue
            rows.append(row.data)
            numbers.append(row.index + 1)
            if max_rows and len(rows) >= max_rows:
                break
    if bad and not skip_bad_rows and first_problem.startswith("not UTF-8"):
        raise FtbenchError(f"{p} line {bad[0]} is {first_problem}; ftbench reads data files as UTF-8.", NOT_UTF8_HINT)
    if bad and not skip_bad_rows:
        shown = ", ".join(map(str, bad[:10])) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        raise FtbenchError(
            f"{p}: {len(bad)} row(s) cannot be read as objects (row {shown}).",
            "Fix those rows (the Datasets screen shows why), or set data.skip_bad_rows: true to skip them "
            "(they are counted in the run log).",
        )
    _check_columns(p, rows, columns or {})
    return Rows(rows, bad, numbers)


def _check_columns(path: Path, rows: list[dict[str, Any]], columns: dict[str, str]) -> None:
    present: dict[str, None] = {}
    for row in rows:
        present.update(dict.fromkeys(map(str, row)))
    for field_name, column in columns.items():
        if column not in present:
            near = difflib.get_close_matches(column, list(present), n=1, cutoff=0.6)
            hint = f"Did you mean data.columns.{field_name}: {near[0]}?" if near else "Name a column the file has."
            raise FtbenchError(
                f"data.columns.{field_name} names column {column!r}, which {path} does not have "
                f"(columns: {', '.join(present) or 'none'}).",
                hint,
            )


def _split_folder(p: Path) -> Path:
    """For a `save_to_disk` DatasetDict folder, its train split (else its first split); other paths as given."""
    dict_file = p / "dataset_dict.json"
    if not (p.is_dir() and dict_file.is_file()):
        return p
    try:
        splits = json.loads(dict_file.read_text(encoding="utf-8")).get("splits") or []
    except (ValueError, AttributeError) as exc:
        raise FtbenchError(f"{dict_file} is not valid JSON.", "Save the dataset again with save_to_disk.") from exc
    for name in ("train", *splits):
        if (p / name).is_dir():
            return p / name
    raise FtbenchError(
        f"{p} is a saved DatasetDict without a split folder.", "Save the dataset again with save_to_disk."
    )
