"""`ftbench eval` of classification, NER and QA runs (tiny random BERTs trained for a few steps).

The eval job target runs in this process (as the training runs do in test_encoder_tasks.py), so these take
seconds; the one test of the detached job through `--wait` is marked slow. The numbers must equal what
`ftbench predict` gives on the same file scored by training's metric functions, and the run's own final eval
(an independent path: the Trainer's logits through compute_metrics) when the file is the run's eval file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import test_encoder_tasks as enc
from inlinejob import run_job_inline
from test_encoder_tasks import (
    ner_rows,
    predict_cli,
    recipe_for,
    reviews,
    run_inline,
    squad_rows,
    with_eval,
    write_jsonl,
)

from ftbench.cli import main
from ftbench.core.events import read_events
from ftbench.core.jobs import SPEC, new_job_id
from ftbench.train.metrics import classification_metrics, entity_metrics

N_EVAL = 10  # rows of reviews-eval.jsonl
# test_encoder_tasks' fixtures: the tiny BERT, its workspace and data files, its NER and QA runs
bert, ws, data_dir, ner_run, qa_run = enc.bert, enc.ws, enc.data_dir, enc.ner_run, enc.qa_run


@pytest.fixture(scope="module")
def cls_lora(ws: Any, bert: Path, data_dir: Path) -> tuple[Path, dict[str, Any]]:
    recipe = with_eval(recipe_for("classification", bert, data_dir / "reviews.jsonl"), data_dir / "reviews-eval.jsonl")
    recipe["training"].update(max_steps=8, lr=2e-2, eval_steps=8)
    return run_inline(ws, recipe)


@pytest.fixture(scope="module")
def cls_full(ws: Any, bert: Path, data_dir: Path) -> tuple[Path, dict[str, Any]]:
    """Held out by eval_split (no eval file): its default eval rows are drawn as training drew them."""
    recipe = recipe_for("classification", bert, data_dir / "reviews.jsonl", method="full")
    recipe["training"].update(max_steps=4, lr=1e-3, eval_steps=4)
    return run_inline(ws, recipe)


def eval_inline(ws: Any, *argv: str, job_dir: Path | None = None) -> Path:
    """`ftbench eval ARGV` checked by the CLI, then its job target run in this process (attempt 2 on `job_dir`)."""
    from ftbench.cli import build_parser
    from ftbench.commands.eval import build_params
    from ftbench.evaluate.encoder_inputs import TARGET

    if job_dir is None:
        params, _ = build_params(build_parser().parse_args(["eval", *argv]), ws)
        job_dir = ws.root / "jobs" / new_job_id("eval", "enc")
        run_job_inline(ws.root, job_dir, "eval", TARGET, params)
    else:
        params = json.loads((job_dir / SPEC).read_text())["params"]
        run_job_inline(ws.root, job_dir, "eval", TARGET, params, attempt=2)
    return job_dir


def outputs(job_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    summary = json.loads((job_dir / "metrics.json").read_text())
    predictions = [json.loads(line) for line in (job_dir / "predictions.jsonl").read_text().splitlines()]
    return summary, predictions, (job_dir / "report.md").read_text()


def metrics_of(summary: dict[str, Any], name: str) -> dict[str, Any]:
    return next(v["metrics"] for v in summary["variants"] if v["name"] == name)


def test_classification_runs_score_as_predict_and_training_do(
    ws: Any, cls_lora: Any, cls_full: Any, data_dir: Path, capsys: Any
) -> None:
    from ftbench.evaluate.report import metrics_table

    (lora_dir, lora_status), (full_dir, _) = cls_lora, cls_full
    data = data_dir / "reviews-eval.jsonl"
    job_dir = eval_inline(ws, lora_dir.name, "--also", full_dir.name, "--data", str(data), "--batch-size", "4")
    summary, predictions, report = outputs(job_dir)
    names = [v["name"] for v in summary["variants"]]
    assert len(names) == 2 and summary["task"] == "classification" and summary["examples"] == N_EVAL
    gold = [r["label"] for r in reviews(N_EVAL, seed=1)]
    labels = ["negative", "positive"]
    for name, run_dir in zip(names, (lora_dir, full_dir), strict=True):
        predicted = [
            r["label"] for r in json.loads(predict_cli(ws, capsys, run_dir.name, "--file", str(data), "--json"))
        ]
        assert [p["answers"][name]["prediction"] for p in predictions] == predicted
        expected = classification_metrics([labels.index(g) for g in gold], [labels.index(p) for p in predicted], labels)
        got = metrics_of(summary, name)
        for key in ("accuracy", "f1_macro", "f1_micro"):
            assert got[key] == pytest.approx(expected[key])
        assert got["per_class"]["positive"]["support"] == 5
        for p, g, pred in zip(predictions, gold, predicted, strict=True):
            assert p["references"] == [g] and p["answers"][name]["scores"]["accuracy"] == float(g == pred)
    # the eval file is the LoRA run's own eval file: its final eval (Trainer logits) gives the same accuracy
    assert metrics_of(summary, names[0])["accuracy"] == pytest.approx(lora_status["result"]["accuracy"])
    headers, rows, _ = metrics_table(summary)
    assert headers == ["variant", "accuracy", "F1 macro", "F1 micro"]  # training's metrics, no answer lengths
    assert rows[0][1] == f"{metrics_of(summary, names[0])['accuracy']:.4f}"
    assert rows[0][1] in report and rows[1][2] in report and f"{N_EVAL} rows from {data}" in report
    (evaluation,) = read_events(job_dir / "events.jsonl", ["evaluation"])
    assert evaluation["variants"][names[0]]["accuracy"] == metrics_of(summary, names[0])["accuracy"]
    assert read_events(job_dir / "events.jsonl", ["progress"])[-1]["done"] == 2 * N_EVAL


def test_default_eval_rows_are_the_runs_held_out_split(ws: Any, cls_full: Any) -> None:
    full_dir, status = cls_full
    summary, predictions, _ = outputs(eval_inline(ws, full_dir.name))
    assert summary["examples"] == status["result"]["eval_rows"] == len(predictions)
    assert summary["data"] == f"{full_dir.name} eval rows"
    assert summary["variants"][0]["metrics"]["accuracy"] == pytest.approx(status["result"]["accuracy"])


@pytest.mark.slow  # two more trainings (~30 s on 2 busy cores); classification covers the same path by default
def test_ner_and_qa_runs_score_as_training_does(ws: Any, ner_run: Any, qa_run: Any, data_dir: Path, capsys) -> None:
    ner_dir, ner_status = ner_run
    summary, predictions, _ = outputs(eval_inline(ws, ner_dir.name, "--data", str(data_dir / "ner-eval.jsonl")))
    got = summary["variants"][0]["metrics"]
    assert summary["columns"] == ["precision", "recall", "f1", "accuracy"]
    assert got["f1"] == pytest.approx(ner_status["result"]["f1"])
    tagged = json.loads(predict_cli(ws, capsys, ner_dir.name, "--file", str(data_dir / "ner-eval.jsonl"), "--json"))
    rows = ner_rows(8, seed=1)
    assert got == {"examples": 8, **entity_metrics([r["ner_tags"] for r in rows], [t["tags"] for t in tagged])}
    assert predictions[0]["references"] == [f"PER: {rows[0]['tokens'][1]}; LOC: {rows[0]['tokens'][3]}"]

    qa_dir, qa_status = qa_run
    summary, predictions, _ = outputs(eval_inline(ws, qa_dir.name))  # its data.eval file, by default
    got = summary["variants"][0]["metrics"]
    assert (got["exact_match"], got["f1"]) == (
        pytest.approx(qa_status["result"]["exact_match"]),
        pytest.approx(qa_status["result"]["f1"]),
    )
    expected = json.loads((qa_dir / "eval_predictions.json").read_text())
    name = summary["variants"][0]["name"]
    assert [p["answers"][name]["prediction"] for p in predictions] == [expected[r["id"]] for r in squad_rows(8, 1)]
    assert predictions[7]["references"] == []  # the unanswerable question


def test_resumed_eval_keeps_cached_predictions(ws: Any, cls_lora: Any, cls_full: Any, data_dir: Path) -> None:
    data = str(data_dir / "reviews-eval.jsonl")
    job_dir = eval_inline(ws, cls_lora[0].name, "--also", cls_full[0].name, "--data", data)
    first, before, _ = outputs(job_dir)
    name_a, name_b = (v["name"] for v in first["variants"])
    cache_a, cache_b = sorted((job_dir / "cache").glob("*.jsonl"))
    lines = cache_a.read_text().splitlines()
    kept = json.loads(lines[0])
    flipped = "negative" if kept["result"]["label"] == "positive" else "positive"
    kept["result"]["label"] = flipped  # a marker: only the cache can hold this answer
    # as if killed mid-write: A lost its last 3 predictions (one line torn), B lost all of them
    cache_a.write_text("\n".join([json.dumps(kept), *lines[1:-3]]) + '\n{"id": "000', encoding="utf-8")
    cache_b.unlink()
    for name in ("metrics.json", "predictions.jsonl", "report.md"):
        (job_dir / name).unlink()

    summary, after, _ = outputs(eval_inline(ws, job_dir=job_dir))
    for old, new in zip(before, after, strict=True):
        expected_a = flipped if new["id"] == kept["id"] else old["answers"][name_a]["prediction"]
        assert new["answers"][name_a]["prediction"] == expected_a
        assert new["answers"][name_b]["prediction"] == old["answers"][name_b]["prediction"]
    shift = 1 / N_EVAL if flipped == after[0]["references"][0] else -1 / N_EVAL
    assert metrics_of(summary, name_a)["accuracy"] == pytest.approx(metrics_of(first, name_a)["accuracy"] + shift)
    resumed = [e for e in read_events(job_dir / "events.jsonl", ["progress"]) if e["attempt"] == 2]
    assert resumed[0]["done"] == N_EVAL and resumed[-1]["done"] == 2 * N_EVAL  # 7 kept + A's 3, then B's 10
    logs = [e["message"] for e in read_events(job_dir / "events.jsonl", ["log"])]
    assert "Resuming: 7 of 20 predictions are cached and kept." in logs


def cli_error(ws: Any, capsys: Any, *argv: str) -> str:
    capsys.readouterr()
    code = main(["--workspace", str(ws.root), "eval", *argv])
    err = capsys.readouterr().err
    assert code == 2, err
    return err


def test_bad_input_is_one_sentence_before_a_job(
    ws: Any, cls_lora: Any, tiny_llama: Path, data_dir: Path, tmp_path: Path, capsys: Any
) -> None:
    run = cls_lora[0].name
    jobs_before = sorted(ws.jobs_parent("eval").glob("*"))
    err = cli_error(ws, capsys, run, "--also", str(tiny_llama), "--data", str(data_dir / "reviews-eval.jsonl"))
    assert "is not a classification, NER or QA run" in err and "not both" in err

    def variant_with(name: str, **task_facts: Any) -> str:
        """A copy of the run's weights whose ftbench_task.json says something else."""
        folder = tmp_path / name
        shutil.copytree(cls_lora[0] / "adapter", folder)
        task = json.loads((folder / "ftbench_task.json").read_text())
        (folder / "ftbench_task.json").write_text(json.dumps({**task, **task_facts}))
        return str(folder)

    err = cli_error(ws, capsys, run, "--also", variant_with("tagger", task="ner", labels=["O", "B-PER"]))
    assert "is a classification run but 'tagger' is a ner run; one eval scores one task" in err
    three = variant_with("three-labels", labels=["negative", "neutral", "positive"])
    assert "have different labels (negative, positive vs negative, neutral, positive)" in cli_error(
        ws, capsys, run, "--also", three
    )
    rows = reviews(4)
    del rows[2]["label"]
    missing = write_jsonl(tmp_path / "missing.jsonl", rows)
    err = cli_error(ws, capsys, run, "--data", str(missing))
    assert "missing.jsonl: row 3: missing field 'label' for format classification" in err
    rows = reviews(4)
    rows[1]["label"] = "neutral"
    unknown = write_jsonl(tmp_path / "unknown.jsonl", rows)
    assert "row 2 has label 'neutral', which is not one of the 2 known labels" in cli_error(
        ws, capsys, run, "--data", str(unknown)
    )
    assert "--no-base with no --adapter or --also leaves no run to score" in cli_error(ws, capsys, run, "--no-base")
    checkpoint = sorted((cls_lora[0] / "checkpoints").glob("checkpoint-*"))[0].name  # saved once per epoch
    err = cli_error(ws, capsys, f"{run}@{checkpoint}", "--data", str(data_dir / "reviews-eval.jsonl"))
    assert f"{checkpoint} is a checkpoint; predict needs a finished run's weights" in err
    err = cli_error(ws, capsys, run, "--label-pattern", r"(\w+)")
    assert "--label-pattern scores generated text" in err
    # the plain base model the run was trained on is not a variant of its own (no trained head), not a mix
    from ftbench.cli import build_parser
    from ftbench.commands.eval import build_params

    base = json.loads((cls_lora[0] / "adapter" / "ftbench_task.json").read_text())["base_model"]
    params, _ = build_params(build_parser().parse_args(["eval", base, "--adapter", run]), ws)
    assert [v["path"] for v in params["variants"]] == [str(cls_lora[0] / "adapter")]
    after = sorted(ws.jobs_parent("eval").glob("*"))
    assert after == jobs_before  # none of these started a job


@pytest.mark.slow  # the detached job process imports torch: a minute on 2 busy cores
def test_cli_eval_wait_json_prints_metrics_json(ws: Any, cls_lora: Any, data_dir: Path, capsys: Any) -> None:
    capsys.readouterr()
    data = str(data_dir / "reviews-eval.jsonl")
    code = main(["--workspace", str(ws.root), "eval", cls_lora[0].name, "--data", data, "--wait", "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    summary = json.loads(out.out)
    from ftbench.core.jobs import find_job

    job = find_job(ws, summary["id"])
    assert job.state == "succeeded" and json.loads((job.dir / "metrics.json").read_text()) == summary
    assert summary["variants"][0]["metrics"]["accuracy"] == pytest.approx(cls_lora[1]["result"]["accuracy"])
    code = main(["--workspace", str(ws.root), "eval", cls_lora[0].name, "--data", data, "--wait"])
    table = capsys.readouterr().out
    assert code == 0 and table.splitlines()[0].split() == ["variant", "accuracy", "F1", "macro", "F1", "micro"]
