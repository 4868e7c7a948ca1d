"""Speed levers give the same loss as the plain path on a tiny llama: logits only at trained positions
(loss and gradients), padding-free batches (per-example loss), and the switches fail clearly when missing."""

from __future__ import annotations

import pytest

from ftbench.core.errors import FtbenchError
from ftbench.core.recipe import validate_recipe
from ftbench.train.data import IGNORE, SftCollator, pack
from ftbench.train.levers import check_liger, use_sparse_logits
from ftbench.train.sparse_logits import MASK_KEY, causal_loss, supports_sparse_logits


@pytest.fixture(scope="module")
def model_and_examples(tiny_llama):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(tiny_llama)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32).eval()
    texts = [("the model learns", " to answer questions"), ("happy support", " team thanks"), ("refund", " price ok")]
    examples = []
    for prompt, answer in texts:
        p, a = tok(prompt)["input_ids"], tok(answer, add_special_tokens=False)["input_ids"]
        examples.append({"input_ids": p + a, "labels": [IGNORE] * len(p) + a})
    return model, tok, examples


def grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("packed", [False, True])
def test_sparse_logits_give_the_models_loss_and_gradients(model_and_examples, packed):
    import torch

    model, tok, examples = model_and_examples
    rows = pack(examples, 64) if packed else examples
    plain = SftCollator(tok.pad_token_id, packed=packed)(rows)
    sparse = SftCollator(tok.pad_token_id, packed=packed, sparse_logits=True)(rows)
    assert int(sparse[MASK_KEY].sum()) == int((plain["labels"][:, 1:] != IGNORE).sum())
    n_items = (plain["labels"][:, 1:] != IGNORE).sum()
    model.zero_grad()
    reference = model(**plain, num_items_in_batch=n_items).loss
    reference.backward()
    want = grads(model)
    model.zero_grad()
    labels = sparse.pop("labels")
    outputs = model(**sparse)
    assert outputs.logits.shape[0] == int(n_items)  # one row of logits per trained token, nothing else
    loss = causal_loss(outputs, labels, n_items)
    loss.backward()
    torch.testing.assert_close(loss, reference, atol=1e-5, rtol=1e-5)
    for name, grad in grads(model).items():
        torch.testing.assert_close(grad, want[name], atol=1e-5, rtol=1e-4)
    model.zero_grad()
    mean = causal_loss(model(**{**sparse}), labels)  # without num_items_in_batch: the token mean
    torch.testing.assert_close(mean, model(**plain).loss, atol=1e-5, rtol=1e-5)


def per_example_losses(logits, labels, spans):
    import torch.nn.functional as F

    out = []
    for row, start, end in spans:
        lg, lb = logits[row, start : end - 1], labels[row, start + 1 : end]
        out.append(float(F.cross_entropy(lg, lb, ignore_index=IGNORE)))
    return out


def test_padding_free_batches_give_the_padded_per_example_loss(model_and_examples):
    import torch

    model, tok, examples = model_and_examples
    padded = SftCollator(tok.pad_token_id, packed=False)(examples)
    flat = SftCollator(tok.pad_token_id, packed=False, padding_free=True)(examples)
    lengths = [len(e["input_ids"]) for e in flat_order(examples)]
    assert flat["input_ids"].shape == (1, -(-sum(lengths) // 8) * 8)  # one row, only the tail rounded up
    tail = flat["input_ids"].shape[1] - sum(lengths)
    assert "attention_mask" not in flat and flat["position_ids"][0].tolist().count(0) == len(examples) + (tail > 0)
    starts = [sum(lengths[:i]) for i in range(len(lengths))]
    order = [examples.index(e) for e in flat_order(examples)]
    with torch.no_grad():
        want = per_example_losses(
            model(**{k: v for k, v in padded.items() if k != "labels"}).logits,
            padded["labels"],
            [(i, 0, len(examples[i]["input_ids"])) for i in order],
        )
        got = per_example_losses(
            model(**{k: v for k, v in flat.items() if k != "labels"}).logits,
            flat["labels"],
            [(0, s, s + n) for s, n in zip(starts, lengths, strict=True)],
        )
    assert got == pytest.approx(want, abs=1e-4)
    assert all(flat["labels"][0, s] == IGNORE for s in starts)  # no example is predicted from its neighbour


def flat_order(examples):
    """The order a padding-free row lays examples in: longest first."""
    return sorted(examples, key=lambda e: -len(e["input_ids"]))


def test_padding_free_rows_within_a_limit_give_the_padded_batchs_loss_and_gradients(model_and_examples):
    """The default layout: a batch's examples end to end in rows of at most max_length tokens. The optimizer
    sees the same batch, so the step's loss and gradients equal the padded batch's."""
    import torch

    model, tok, examples = model_and_examples
    batch = examples * 3  # 9 examples, more than one row's worth
    limit = 24
    padded = SftCollator(tok.pad_token_id, packed=False)(batch)
    rows = SftCollator(tok.pad_token_id, packed=False, padding_free=True, row_limit=limit)(batch)
    assert 1 < rows["input_ids"].shape[0] < len(batch) and rows["input_ids"].shape[1] <= limit
    assert int((rows["position_ids"] == 0).sum()) >= len(batch)  # every example starts its own block
    assert int((rows["labels"] != IGNORE).sum()) == int((padded["labels"][:, 1:] != IGNORE).sum())
    model.zero_grad()
    want = model(**padded).loss
    want.backward()
    want_grads = grads(model)
    model.zero_grad()
    got = model(**rows).loss
    got.backward()
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    for name, grad in grads(model).items():
        torch.testing.assert_close(grad, want_grads[name], atol=1e-5, rtol=1e-4)


def recipe(**training):
    return validate_recipe({"task": "sft", "model": "m", "data": {"train": "d"}, "training": training})


def test_switches_and_their_defaults(model_and_examples, monkeypatch):
    import importlib.util

    model, _, _ = model_and_examples
    assert supports_sparse_logits(model)
    assert use_sparse_logits(recipe(), model)
    assert not use_sparse_logits(recipe(sparse_logits=False), model)
    assert not use_sparse_logits(recipe(liger=True), model)  # Liger's fused loss takes over
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "liger_kernel" else real(name))
    with pytest.raises(FtbenchError, match="liger-kernel package is not installed") as err:
        check_liger(recipe(liger=True))
    assert "training.liger: false" in err.value.hint
    check_liger(recipe())  # off: nothing is needed
