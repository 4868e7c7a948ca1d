"""An encoder eval's scoring, from cached predictions (no model): multi-label classification, NER with integer
tags, QA with an unanswerable question. The numbers must be training's metric functions on the same rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ftbench.evaluate.encoder_inputs import EncoderVariant
from ftbench.evaluate.encoder_job import write_outputs
from ftbench.evaluate.job import CacheWriter, cache_path
from ftbench.evaluate.report import metrics_table
from ftbench.train.metrics import entity_metrics, multilabel_metrics, squad_metrics


def score(tmp_path: Path, task: str, info: dict[str, Any], rows: list[dict], results: list[dict]) -> tuple[dict, list]:
    items = [{"id": f"{i:05d}-z", "source": "f.jsonl", "number": i + 1, "row": r} for i, r in enumerate(rows)]
    variant = EncoderVariant("run", "/r/adapter", "/r", info)
    writer = CacheWriter(cache_path(tmp_path, 0, variant.name))
    writer.write([{"id": item["id"], "result": r} for item, r in zip(items, results, strict=True)])
    writer.close()
    summary = write_outputs(tmp_path, items, [variant], {"task": task, "data_label": "f.jsonl"}, "job")
    predictions = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    return summary["variants"][0]["metrics"], predictions


def test_multilabel_classification(tmp_path: Path) -> None:
    labels = ["mood", "people", "places"]
    info = {"task": "classification", "labels": labels, "multi_label": True}
    gold = [["people"], ["mood", "places"], [], ["places"]]
    pred = [["people"], ["mood"], [], ["people", "places"]]
    rows = [{"text": f"t{i}", "label": g} for i, g in enumerate(gold)]
    metrics, predictions = score(tmp_path, "classification", info, rows, [{"label": p} for p in pred])

    def matrix(sets: list[list[str]]) -> list[list[int]]:
        return [[int(name in s) for name in labels] for s in sets]

    assert metrics == {"examples": 4, **multilabel_metrics(matrix(gold), matrix(pred), labels)}
    assert metrics["accuracy"] == 0.5  # subset accuracy: rows 1 and 3
    assert [p["answers"]["run"]["scores"]["accuracy"] for p in predictions] == [1.0, 0.0, 1.0, 0.0]
    assert predictions[1]["references"] == ["mood, places"] and predictions[1]["answers"]["run"]["prediction"] == "mood"


def test_ner_with_integer_tags_named_by_the_run(tmp_path: Path) -> None:
    labels = ["O", "B-PER", "I-PER", "B-LOC"]
    info = {"task": "ner", "labels": labels}
    rows = [
        {"tokens": ["Ann", "Lee", "in", "Rome"], "ner_tags": [1, 2, 0, 3]},
        {"tokens": ["hello", "Bo"], "ner_tags": [0, 1]},
    ]
    tags = [["B-PER", "I-PER", "O", "O"], ["O", "B-PER"]]
    metrics, predictions = score(tmp_path, "ner", info, rows, [{"tags": t} for t in tags])
    gold = [[labels[t] for t in r["ner_tags"]] for r in rows]
    assert metrics == {"examples": 2, **entity_metrics(gold, tags)}
    assert metrics["recall"] == pytest.approx(2 / 3) and metrics["precision"] == 1.0
    assert predictions[0]["references"] == ["PER: Ann Lee; LOC: Rome"]
    assert predictions[0]["answers"]["run"]["prediction"] == "PER: Ann Lee"
    assert predictions[0]["answers"]["run"]["scores"]["f1"] == pytest.approx(2 / 3)


def test_qa_with_an_unanswerable_question(tmp_path: Path) -> None:
    rows = [
        {"question": "where", "context": "Bo lives in Rome", "answers": {"text": ["Rome"], "answer_start": [12]}},
        {"question": "price", "context": "Bo lives in Rome", "answers": {"text": [], "answer_start": []}},
        {"question": "who", "context": "Bo lives in Rome", "answers": {"text": ["Bo"], "answer_start": [0]}},
    ]
    answers = ["in Rome", "", "Rome"]
    metrics, predictions = score(tmp_path, "qa", {"task": "qa"}, rows, [{"answer": a} for a in answers])
    expected = squad_metrics({"0": "in Rome", "1": "", "2": "Rome"}, {"0": ["Rome"], "1": [], "2": ["Bo"]})
    assert metrics == {"examples": 3, **expected}
    assert predictions[1]["references"] == [] and predictions[1]["answers"]["run"]["scores"]["exact_match"] == 100.0
    assert predictions[0]["prompt"] == "where ||| Bo lives in Rome"
    summary = json.loads((tmp_path / "metrics.json").read_text())
    headers, cells, _ = metrics_table(summary)
    assert headers == ["variant", "EM %", "F1"] and cells[0][1] == f"{expected['exact_match']:.2f}"
