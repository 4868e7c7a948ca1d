"""Rendering, prompt masking, truncation and packing on the test-time tokenizer and tiny llama."""

from __future__ import annotations

import pytest

from ftbench.core.recipe import validate_recipe
from ftbench.train.data import IGNORE, DataReport, SftCollator, chat_segments, pack, preference_texts
from ftbench.train.sft_tokens import tokenize_sft


@pytest.fixture(scope="module")
def tokenizer(tiny_llama):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llama)


def data_section(**kw):
    return validate_recipe({"task": "sft", "model": "m", "data": {"train": "d", **kw}}).data


def decoded_labels(tokenizer, ex) -> str:
    return tokenizer.decode([t for t, lab in zip(ex["input_ids"], ex["labels"], strict=True) if lab != IGNORE])


def test_every_assistant_turn_is_trained_and_nothing_else(tokenizer):
    msgs = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "good day"},
        {"role": "user", "content": "thanks"},
        {"role": "assistant", "content": "happy to help"},
    ]
    segs = chat_segments(tokenizer, msgs)
    assert [t for t, trainable in segs if trainable] == ["good day<|im_end|>\n", "happy to help<|im_end|>\n"]
    assert "".join(t for t, _ in segs) == tokenizer.apply_chat_template(msgs, tokenize=False)
    report = DataReport("messages")
    [ex] = tokenize_sft([{"messages": msgs}], "messages", tokenizer, data_section(), report)
    assert decoded_labels(tokenizer, ex) == "good day<|im_end|>\nhappy to help<|im_end|>\n"
    [whole] = tokenize_sft([{"messages": msgs}], "messages", tokenizer, data_section(train_on_prompt=True), report)
    assert whole["labels"] == whole["input_ids"]


def test_sharegpt_and_alpaca_render_through_the_chat_template(tokenizer):
    report = DataReport("alpaca")
    [a] = tokenize_sft(
        [{"instruction": "rate it", "input": "good review", "output": "Sentiment: positive"}],
        "alpaca",
        tokenizer,
        data_section(),
        report,
    )
    assert decoded_labels(tokenizer, a) == "Sentiment: positive<|im_end|>\n"
    assert tokenizer.decode(a["input_ids"]).startswith("<|im_start|>user\nrate it\n\ngood review<|im_end|>")
    [s] = tokenize_sft(
        [{"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}],
        "sharegpt",
        tokenizer,
        data_section(),
        report,
    )
    assert decoded_labels(tokenizer, s) == "hello<|im_end|>\n"
    prompt, chosen, rejected = preference_texts({"prompt": "q?", "chosen": "yes", "rejected": "no"}, tokenizer)
    assert prompt.endswith("<|im_start|>assistant\n") and chosen == "yes<|im_end|>\n" and rejected == "no<|im_end|>\n"


def test_truncation_is_counted_and_empty_rows_dropped(tokenizer):
    report = DataReport("alpaca")
    rows = [
        {"instruction": "short", "output": "ok"},
        {"instruction": "word " * 40, "output": "answer"},  # prompt alone longer than max_length: nothing to learn
        {"instruction": "x", "output": "long answer " * 20},
    ]
    out = tokenize_sft(rows, "alpaca", tokenizer, data_section(max_length=24), report)
    assert report.truncated == 2 and report.dropped_empty == 1 and len(out) == 2
    assert all(len(ex["input_ids"]) <= 24 for ex in out)


def test_packing_keeps_examples_apart(tiny_llama, tokenizer):
    """Logits of an example inside a packed row equal its logits alone: no attention across examples."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    texts = [
        "the model learns to answer",
        "happy support team thanks please",
        "refund price quality battery screen fast",
    ]
    examples = [{"input_ids": tokenizer(t)["input_ids"], "labels": tokenizer(t)["input_ids"]} for t in texts]
    packed = pack(examples, max_length=64)
    assert len(packed) == 1 and sorted(packed[0]["position_ids"]).count(0) == 3
    collator = SftCollator(tokenizer.pad_token_id, packed=True)
    batch = collator(packed)
    assert "attention_mask" not in batch and collator.tokens == sum(len(e["input_ids"]) for e in examples)
    batch.pop("labels")
    with torch.no_grad():
        logits = model(**batch).logits[0]
        starts = [i for i, p in enumerate(packed[0]["position_ids"]) if p == 0]
        for start in starts:
            n = next(
                e for e in examples if e["input_ids"] == packed[0]["input_ids"][start : start + len(e["input_ids"])]
            )
            alone = model(input_ids=torch.tensor([n["input_ids"]])).logits[0]
            torch.testing.assert_close(logits[start : start + len(n["input_ids"])], alone, atol=1e-4, rtol=1e-4)
    # the first token of each example is never a target (it would be predicted from the previous example)
    assert all(packed[0]["labels"][s] == IGNORE for s in starts)


def test_out_of_memory_is_explained():
    from ftbench.train.session import explain_training_error

    recipe = validate_recipe({"task": "sft", "model": "m", "data": "d", "training": {"batch_size": 16}})
    err = explain_training_error(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), recipe)
    assert err.message.startswith("Training ran out of memory")
    assert "batch_size (now 16)" in err.hint and "gradient_checkpointing: true" in err.hint and "qlora" in err.hint
    other = ValueError("x")
    assert explain_training_error(other, recipe) is other
