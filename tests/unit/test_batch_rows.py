"""How padding-free batches and packing place examples in rows: every example once, no row over its limit,
and padding-free rows near one length so padding them to the longest costs little."""

from __future__ import annotations

import random

import pytest

from ftbench.train.data import IGNORE, balanced_rows, best_fit, join_examples


def examples(*lengths: int) -> list[dict[str, list[int]]]:
    return [{"input_ids": [7] * n, "labels": [1] * n} for n in lengths]


@pytest.mark.parametrize("seed", range(20))
def test_balanced_rows_place_every_example_once_within_the_limit(seed):
    rng = random.Random(seed)
    batch = examples(*(rng.randint(5, 256) for _ in range(rng.randint(1, 16))))
    rows = balanced_rows(batch, 256)
    assert sorted(i for row in rows for i in row) == list(range(len(batch)))
    loads = [sum(len(batch[i]["input_ids"]) for i in row) for row in rows]
    assert max(loads) <= 256
    assert len(rows) >= -(-sum(loads) // 256)


def test_balanced_rows_split_evenly_where_filling_in_turn_pads_a_short_row():
    """4 examples, 324 tokens under a 256 limit. Best fit fills one row and leaves the
    rest short, so padding to the longest row nearly doubles the tokens; balanced rows do not."""
    batch = examples(100, 90, 80, 54)
    padded = {
        name: len(rows) * max(sum(len(batch[i]["input_ids"]) for i in row) for row in rows)
        for name, rows in (("best_fit", best_fit(batch, 256)), ("balanced", balanced_rows(batch, 256)))
    }
    assert padded == {"best_fit": 2 * 244, "balanced": 2 * 170}  # rows of 100+90+54, 80 against 100+54, 90+80
    assert balanced_rows(batch, 1000) == [[0, 1, 2, 3]]  # it all fits: one row


def test_a_joined_row_restarts_positions_and_trains_no_first_token():
    row = join_examples(
        [
            {"input_ids": [1, 2, 3], "labels": [IGNORE, 2, 3]},
            {"input_ids": [4, 5], "labels": [4, 5]},
            {"input_ids": [6, 7, 8, 9], "labels": [6, 7, 8, 9], "position_ids": [0, 1, 0, 1]},  # a packed row
        ]
    )
    assert row["input_ids"] == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert row["position_ids"] == [0, 1, 2, 0, 1, 0, 1, 0, 1]
    assert row["labels"] == [IGNORE, 2, 3, IGNORE, 5, IGNORE, 7, IGNORE, 9]
