"""Format detection and row checks (torch-free; shared by the dataset browser and the trainer)."""

from __future__ import annotations

import sys

import pytest

from ftbench.catalog.formats import detect_format, row_problem, sharegpt_to_messages

ROWS = {
    "alpaca": {"instruction": "Say hi", "input": "", "output": "hi"},
    "messages": {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
    "sharegpt": {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]},
    "text": {"text": "plain text"},
    "preference": {"prompt": "q", "chosen": "good", "rejected": "bad"},
    "classification": {"text": "great!", "label": 1},
    "ner": {"tokens": ["Alice", "lives"], "ner_tags": [1, 0]},
    "squad": {"question": "who?", "context": "Alice.", "answers": {"text": ["Alice"], "answer_start": [0]}},
}


@pytest.mark.parametrize("fmt", list(ROWS))
def test_each_format_is_detected_and_valid(fmt):
    assert detect_format([ROWS[fmt], ROWS[fmt]]) == fmt
    assert row_problem(fmt, ROWS[fmt]) is None


def test_column_mapping_and_undetectable():
    rows = [{"question": "Say hi", "answer": "hi"}]
    assert detect_format(rows) is None
    mapping = {"instruction": "question", "output": "answer"}
    assert detect_format(rows, mapping) == "alpaca"
    assert row_problem("alpaca", rows[0], mapping) is None
    assert detect_format([{"label": 1, "text": "x"}, {"text": "y"}]) == "text"  # keys common to all rows decide
    assert detect_format([]) is None


def test_row_problems_name_the_field_and_columns_present():
    problem = row_problem("alpaca", {"instruction": "x", "response": "y"})
    assert "'output'" in problem and "columns present: instruction, response" in problem
    assert "role" in row_problem("messages", {"messages": [{"content": "x"}]})
    assert "'narrator'" in row_problem("messages", {"messages": [{"role": "narrator", "content": "x"}]})
    assert "3 items" in row_problem("ner", {"tokens": ["a", "b", "c"], "ner_tags": [0]})
    assert row_problem("text", "not a dict").startswith("a row must be an object")
    assert "must be a string" in row_problem("alpaca", {"instruction": 3, "output": "y"})


def test_sharegpt_roles_map_to_chat_roles():
    msgs = sharegpt_to_messages(
        [{"from": "system", "value": "s"}, {"from": "human", "value": "h"}, {"from": "gpt", "value": "g"}]
    )
    assert [m["role"] for m in msgs] == ["system", "user", "assistant"]


def test_formats_module_is_torch_free():
    import subprocess

    code = "import sys, ftbench.catalog.formats, ftbench.core.recipe; print(any(m in sys.modules for m in ('torch', 'transformers', 'datasets')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_multi_label_files_with_a_labels_column_are_classification():
    from ftbench.catalog.formats import detect_format, row_problem

    rows = [
        {"text": "late parcel and a refund", "labels": ["shipping", "billing"]},
        {"text": "login fails", "labels": ["account"]},
    ]
    assert detect_format(rows) == "classification"
    assert row_problem("classification", rows[0]) is None
