"""Metrics against hand-worked numbers and the reference tools' documented examples."""

from __future__ import annotations

import numpy as np
import pytest

from ftbench.train.metrics import (
    classification_metrics,
    entity_metrics,
    get_entities,
    multilabel_metrics,
    normalize_answer,
    squad_metrics,
    token_f1,
)


def test_classification_metrics_hand_worked() -> None:
    # class a: tp=2 fp=1 fn=0; class b: tp=1 fp=0 fn=1; class c: tp=0 fp=0 fn=1 (never predicted)
    y_true = [0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 0, 1]
    m = classification_metrics(y_true, y_pred, labels=["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(3 / 5)
    a, b, c = m["per_class"]["a"], m["per_class"]["b"], m["per_class"]["c"]
    assert (a["precision"], a["recall"]) == pytest.approx((2 / 3, 1.0))
    assert (b["precision"], b["recall"]) == pytest.approx((1 / 2, 1 / 2))
    assert (c["precision"], c["recall"], c["f1"]) == (0.0, 0.0, 0.0)
    assert [a["support"], b["support"], c["support"]] == [2, 2, 1]
    assert m["f1_macro"] == pytest.approx((0.8 + 0.5 + 0.0) / 3)
    # single-label micro F1 equals accuracy
    assert m["f1_micro"] == pytest.approx(0.6)


def test_classification_metrics_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError):
        classification_metrics([0, 1], [0])


def test_multilabel_metrics() -> None:
    y_true = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]])
    y_pred = np.array([[1, 0, 1], [0, 0, 0], [1, 1, 1]])
    m = multilabel_metrics(y_true, y_pred, labels=["x", "y", "z"])
    assert m["accuracy"] == pytest.approx(1 / 3)  # only the first row is entirely right
    # pooled: tp=4, fp=1, fn=1
    assert m["f1_micro"] == pytest.approx(0.8)
    assert m["per_class"]["x"]["f1"] == pytest.approx(1.0)
    assert m["per_class"]["y"]["recall"] == pytest.approx(0.5)
    assert m["per_class"]["z"]["precision"] == pytest.approx(0.5)
    assert m["f1_macro"] == pytest.approx((1.0 + 2 / 3 + 2 / 3) / 3)


def test_get_entities_follows_seqeval_chunking() -> None:
    assert get_entities(["B-PER", "I-PER", "O", "B-LOC"]) == [("PER", 0, 1), ("LOC", 3, 3)]
    # a stray I- after O opens an entity; a type change closes the previous one
    assert get_entities(["O", "I-ORG", "I-ORG", "I-LOC"]) == [("ORG", 1, 2), ("LOC", 3, 3)]
    # B directly after B starts a new entity of the same type
    assert get_entities(["B-PER", "B-PER"]) == [("PER", 0, 0), ("PER", 1, 1)]
    # IOBES
    assert get_entities(["S-LOC", "B-PER", "E-PER", "O"]) == [("LOC", 0, 0), ("PER", 1, 2)]
    assert get_entities(["O", "O"]) == []


def test_entity_metrics_seqeval_doc_example() -> None:
    # The example in seqeval's README: f1 0.5, accuracy 0.8, MISC wrong (boundary), PER right.
    y_true = [["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    y_pred = [["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    m = entity_metrics(y_true, y_pred)
    assert m["f1"] == pytest.approx(0.5)
    assert m["precision"] == pytest.approx(0.5)
    assert m["recall"] == pytest.approx(0.5)
    assert m["accuracy"] == pytest.approx(0.8)
    assert m["per_type"]["MISC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m["per_type"]["PER"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    assert m["f1_macro"] == pytest.approx(0.5)


def test_entity_metrics_same_span_in_other_sentence_is_not_a_match() -> None:
    y_true = [["B-LOC", "O"], ["O", "O"]]
    y_pred = [["O", "O"], ["B-LOC", "O"]]
    m = entity_metrics(y_true, y_pred)
    assert m["f1"] == 0.0
    assert m["per_type"]["LOC"]["support"] == 1


def test_entity_metrics_length_mismatch() -> None:
    with pytest.raises(ValueError, match="sequence 0"):
        entity_metrics([["O", "O"]], [["O"]])


def test_squad_normalisation_and_f1() -> None:
    assert normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    assert normalize_answer("an apple, a pear") == "apple pear"
    assert token_f1("the Eiffel tower in Paris", "Eiffel Tower") == pytest.approx(2 * (2 / 4) * 1 / (2 / 4 + 1))
    assert token_f1("", "") == 1.0
    assert token_f1("Paris", "") == 0.0


def test_squad_metrics_with_unanswerable() -> None:
    refs = {"q1": ["Denver Broncos", "The Broncos"], "q2": ["1990"], "q3": []}
    preds = {"q1": "the broncos", "q2": "in 1991", "q3": ""}
    m = squad_metrics(preds, refs)
    # q1 exact (best gold), q2 no overlap, q3 correctly abstains
    assert m["exact_match"] == pytest.approx(200 / 3)
    assert m["f1"] == pytest.approx(200 / 3)
    assert m["no_ans_exact_match"] == pytest.approx(100.0)
    assert m["has_ans_exact_match"] == pytest.approx(50.0)
    assert m["total"] == 3
    # a missing prediction counts as an empty answer
    assert squad_metrics({}, {"q": ["x"]})["f1"] == 0.0
