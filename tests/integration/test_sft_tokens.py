"""The fast SFT tokenization (one rendering per row, batched, parallel) gives exactly the masks of the
per-row path it replaced (render 1 + 2 x turns times, tokenize every segment alone), on every demo dataset."""

from __future__ import annotations

import pytest

from ftbench.core.recipe import resolve_recipe_paths, validate_recipe
from ftbench.train.data import CHATML_TEMPLATE, IGNORE, DataReport, chat_segments, load_rows, sft_segments
from ftbench.train.sft_tokens import cut, tokenize_sft, turn_shape

SFT_DEMO_DATA = [
    "datasets/demo/sentiment-alpaca.jsonl",
    "datasets/demo/sentiment-alpaca-eval.jsonl",
    "datasets/demo/support-chat.jsonl",
    "datasets/demo/support-chat-sharegpt.json",
    "datasets/demo/domain-qa.jsonl",
    "datasets/demo/notes.jsonl",
]


def reference_tokenize(rows, fmt, tokenizer, data, report):
    """The previous data.tokenize_sft, kept here verbatim in behaviour as the yardstick."""
    out = []
    for row in rows:
        segments, templated = sft_segments(row, fmt, tokenizer)
        ids, labels = [], []
        for j, (text, trainable) in enumerate(segments):
            piece = list(tokenizer(text, add_special_tokens=(j == 0 and not templated))["input_ids"])
            ids.extend(piece)
            labels.extend(piece if (trainable or data.train_on_prompt) else [IGNORE] * len(piece))
        if len(ids) > data.max_length:
            report.truncated += 1
            ids, labels = ids[: data.max_length], labels[: data.max_length]
        if all(label == IGNORE for label in labels[1:]):
            report.dropped_empty += 1
            continue
        out.append({"input_ids": ids, "labels": labels})
    return out


def demo_rows(ws, path, max_length=1024, **data):
    recipe = validate_recipe(
        {
            "task": "sft",
            "model": "models/smollm2-135m-instruct",
            "data": {"train": path, "max_length": max_length, **data},
        }
    )
    recipe = resolve_recipe_paths(recipe, ws.root)
    return recipe, load_rows(recipe.data, "sft")


@pytest.fixture(scope="module")
def smol_tokenizer(demo_workspace):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(demo_workspace.root / "models" / "smollm2-135m-instruct")


@pytest.mark.parametrize("path", SFT_DEMO_DATA)
def test_masks_equal_the_per_row_path_on_every_demo_dataset(demo_workspace, smol_tokenizer, path):
    recipe, rows = demo_rows(demo_workspace, path, max_length=96)  # short enough that truncation happens too
    fast_report, slow_report = DataReport(rows.report.format), DataReport(rows.report.format)
    fast = tokenize_sft(rows.train, rows.report.format, smol_tokenizer, recipe.data, fast_report, workers=1)
    slow = reference_tokenize(rows.train, rows.report.format, smol_tokenizer, recipe.data, slow_report)
    assert len(fast) == len(slow) > 0
    assert fast == slow
    assert (fast_report.truncated, fast_report.dropped_empty) == (slow_report.truncated, slow_report.dropped_empty)


def test_the_demo_template_takes_the_one_rendering_path(smol_tokenizer):
    shape = turn_shape(smol_tokenizer)
    assert shape is not None and shape.header == "<|im_start|>assistant\n" and shape.suffix == "<|im_end|>\n"
    msgs = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "bye"},
        {"role": "assistant", "content": "bye now"},
    ]
    assert cut(smol_tokenizer, msgs, shape) == chat_segments(smol_tokenizer, msgs)


def test_a_template_that_rewrites_earlier_turns_falls_back(smol_tokenizer):
    """A template that drops every assistant turn but the last (as reasoning templates do with their
    thinking) cannot be cut by one rendering: the probe refuses it and the per-row path decides."""
    from copy import deepcopy

    tok = deepcopy(smol_tokenizer)
    tok.chat_template = (
        "{% for m in messages %}{% if m['role'] != 'assistant' or loop.last %}"
        "{{'<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n'}}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    )
    assert turn_shape(tok) is None
    tok.chat_template = CHATML_TEMPLATE
    assert turn_shape(tok) is not None


def test_parallel_workers_keep_order_and_equal_one_worker(demo_workspace, smol_tokenizer):
    recipe, rows = demo_rows(demo_workspace, "datasets/demo/support-chat.jsonl")
    one = tokenize_sft(rows.train, "messages", smol_tokenizer, recipe.data, DataReport("messages"), workers=1)
    two = tokenize_sft(rows.train, "messages", smol_tokenizer, recipe.data, DataReport("messages"), workers=2)
    assert one == two
