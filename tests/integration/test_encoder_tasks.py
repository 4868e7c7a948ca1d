"""Classification, NER and QA trained for a few steps on a tiny random BERT built at test time.

Each run goes through the real job target (`ftbench.train.worker.run`) with a real JobContext, in this
process (no detached child), so a run takes seconds. The checks: something was learned (each task's metric on
held-out rows beats a fixed baseline: the majority class, an all-labels guess, uniformly random tags, an
always-empty answer), eval events carry the task metrics, the final metrics land in status.json and
metrics.json with values in range and consistent with each other, and the saved folder holds what
`ftbench predict` needs.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from inlinejob import run_job_inline

from ftbench.core.events import read_events
from ftbench.core.jobs import new_job_id

NAMES = ["alice", "bob"]
PLACES = ["seoul", "paris", "london", "berlin"]
GOOD = ["good", "great", "happy", "thanks"]
BAD = ["bad", "terrible", "slow", "sad"]


# ---------------------------------------------------------------------------------------------------------
# helpers


@pytest.fixture(scope="module")
def bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/tinymodels.make_tiny_bert: its fixed vocabulary keeps the test words whole, so they can be learned."""
    from tinymodels import make_tiny_bert
    from transformers import AutoTokenizer

    path = make_tiny_bert(tmp_path_factory.mktemp("enc") / "bert")
    assert AutoTokenizer.from_pretrained(path).tokenize("good seoul") == ["good", "seoul"]
    return path


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def reviews(n: int = 48, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "text": " ".join(rng.choices(GOOD if i % 2 == 0 else BAD, k=4)),
            "label": "positive" if i % 2 == 0 else "negative",
        }
        for i in range(n)
    ]


def topics(n: int = 40, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        labels = sorted(rng.sample(["people", "places", "mood"], k=rng.randint(0, 2)))
        words = (
            (["alice"] if "people" in labels else [])
            + (["paris"] if "places" in labels else [])
            + (["happy"] if "mood" in labels else [])
        )
        rows.append({"text": " ".join(words + ["the", "review"]), "labels": labels})
    return rows


def ner_rows(n: int = 40, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "tokens": ["hello", rng.choice(NAMES), "from", rng.choice(PLACES), "thanks"],
            "ner_tags": ["O", "B-PER", "O", "B-LOC", "O"],
        }
        for _ in range(n)
    ]


def squad_rows(n: int = 40, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        who, where = rng.choice(NAMES), rng.choice(PLACES)
        context = f"the review says {who} lives in {where} and likes the product a lot"
        if i % 8 == 7:
            rows.append(
                {
                    "id": f"q{i}",
                    "question": "what is the price",
                    "context": context,
                    "answers": {"text": [], "answer_start": []},
                }
            )
        else:
            rows.append(
                {
                    "id": f"q{i}",
                    "question": f"where is {who}",
                    "context": context,
                    "answers": {"text": [where], "answer_start": [context.index(where)]},
                }
            )
    return rows


def run_inline(ws: Any, recipe: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    """Run the training job target in this process with a real JobContext; returns (run dir, status)."""
    from ftbench.core.recipe import validate_recipe

    job_dir = ws.root / "runs" / new_job_id("train", recipe["task"])
    run_job_inline(ws.root, job_dir, "train", "ftbench.train.worker:run", {"recipe": validate_recipe(recipe).to_dict()})
    return job_dir, json.loads((job_dir / "status.json").read_text())


def recipe_for(task: str, model: Path, train: Path, method: str = "lora", **extra: Any) -> dict[str, Any]:
    recipe: dict[str, Any] = {
        "task": task,
        "model": str(model),
        "data": {"train": str(train), "max_length": 32, "eval_split": 0.2},
        "method": {"name": method, "r": 4},
        "training": {
            "max_steps": 8,
            "batch_size": 8,
            "lr": 5e-3,
            "eval_steps": 4,
            "logging_steps": 2,
            "scheduler": "constant",
        },
    }
    for key, value in extra.items():
        recipe.setdefault(key, {}).update(value) if isinstance(value, dict) else recipe.__setitem__(key, value)
    return recipe


def random_tagger_f1(seed: int = 0) -> float:
    """Entity F1 of uniformly random tags on the held-out NER rows (the chance baseline)."""
    from ftbench.train.metrics import entity_metrics

    rng = random.Random(seed)
    gold = [r["ner_tags"] for r in ner_rows(8, seed=1)] * 25
    tags = sorted({t for row in gold for t in row})
    return entity_metrics(gold, [[rng.choice(tags) for _ in row] for row in gold])["f1"]


def eval_events(job_dir: Path) -> list[dict[str, Any]]:
    return read_events(job_dir / "events.jsonl", ["eval"])


# ---------------------------------------------------------------------------------------------------------
# training runs (module-scoped: the predict tests below reuse them)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from ftbench.core.workspace import Workspace

    return Workspace.open(tmp_path_factory.mktemp("encws") / "ws")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("encdata")
    write_jsonl(d / "reviews.jsonl", reviews())
    write_jsonl(d / "reviews-eval.jsonl", reviews(10, seed=1))
    write_jsonl(d / "topics.jsonl", topics())
    write_jsonl(d / "ner.jsonl", ner_rows())
    write_jsonl(d / "ner-eval.jsonl", ner_rows(8, seed=1))
    write_jsonl(d / "squad.jsonl", squad_rows())
    write_jsonl(d / "squad-eval.jsonl", squad_rows(8, seed=1))
    return d


def with_eval(recipe: dict[str, Any], path: Path) -> dict[str, Any]:
    recipe["data"].update(eval=str(path), eval_split=0.0)
    return recipe


@pytest.fixture(scope="module")
def cls_run(ws: Any, bert: Path, data_dir: Path) -> tuple[Path, dict[str, Any]]:
    recipe = with_eval(recipe_for("classification", bert, data_dir / "reviews.jsonl"), data_dir / "reviews-eval.jsonl")
    recipe["training"].update(max_steps=16, lr=2e-2, eval_steps=8)  # enough for a random BERT to separate the words
    return run_inline(ws, recipe)


@pytest.fixture(scope="module")
def multi_run(ws: Any, bert: Path, data_dir: Path) -> tuple[Path, dict[str, Any]]:
    recipe = recipe_for("classification", bert, data_dir / "topics.jsonl", method="full")
    recipe["training"].update(max_steps=24, lr=1e-2, eval_steps=12)
    return run_inline(ws, recipe)


@pytest.fixture(scope="module")
def ner_run(ws: Any, bert: Path, data_dir: Path) -> tuple[Path, dict[str, Any]]:
    recipe = with_eval(recipe_for("ner", bert, data_dir / "ner.jsonl"), data_dir / "ner-eval.jsonl")
    recipe["training"].update(max_steps=12, lr=2e-2)
    return run_inline(ws, recipe)


@pytest.fixture(scope="module")
def qa_run(ws: Any, bert: Path, data_dir: Path) -> tuple[Path, dict[str, Any]]:
    recipe = with_eval(
        recipe_for("qa", bert, data_dir / "squad.jsonl", qa={"doc_stride": 4}), data_dir / "squad-eval.jsonl"
    )
    recipe["data"]["max_length"] = 16  # forces several windows per context
    recipe["training"].update(max_steps=24, lr=2e-3)
    return run_inline(ws, recipe)


def test_classification_lora_metrics_in_events_status_and_files(cls_run: tuple[Path, dict[str, Any]]) -> None:
    job_dir, status = cls_run
    result = status["result"]
    evals = eval_events(job_dir)
    assert [e["step"] for e in evals] == [8, 16]
    for event in evals:
        assert 0.0 <= event["accuracy"] <= 1.0
        assert event["f1_micro"] == pytest.approx(event["accuracy"])  # single-label: micro F1 == accuracy
        assert {"f1_macro", "eval_loss", "per_class/negative/precision", "per_class/positive/recall"} <= set(event)
    assert result["steps"] == 16
    assert result["accuracy"] == pytest.approx(evals[-1]["accuracy"])
    gold = [r["label"] for r in reviews(10, seed=1)]
    majority = max(gold.count(label) for label in set(gold)) / len(gold)
    assert result["accuracy"] > majority, f"accuracy {result['accuracy']} does not beat the majority class ({majority})"
    assert set(result["per_class"]) == {"negative", "positive"}
    assert sum(c["support"] for c in result["per_class"].values()) == result["eval_rows"] == 10
    summary = result["data_summary"]
    assert summary["counts"] == {"negative": 24, "positive": 24} and summary["imbalance_ratio"] == 1.0
    metrics = json.loads((job_dir / "metrics.json").read_text())
    assert metrics["per_class"]["positive"]["support"] == 5
    assert metrics["f1_macro"] == pytest.approx(result["f1_macro"], abs=1e-6)
    task = json.loads((job_dir / "adapter" / "ftbench_task.json").read_text())
    assert (
        task["labels"] == ["negative", "positive"] and task["multi_label"] is False and task["task"] == "classification"
    )
    adapter_cfg = json.loads((job_dir / "adapter" / "adapter_config.json").read_text())
    assert sorted(adapter_cfg["target_modules"]) == ["query", "value"]
    assert "classifier" in adapter_cfg["modules_to_save"]


def test_multilabel_full_uses_bce_and_keeps_label_names(multi_run: tuple[Path, dict[str, Any]]) -> None:
    job_dir, status = multi_run
    result = status["result"]
    config = json.loads((job_dir / "model" / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    assert config["id2label"] == {"0": "mood", "1": "people", "2": "places"}
    assert config["label2id"] == {"mood": 0, "people": 1, "places": 2}
    assert set(result["per_class"]) == {"mood", "people", "places"}
    assert result["eval_rows"] == 8  # the default 20% hold-out of 40 rows
    # baseline: every label for every row (an untrained head's likeliest shape); its micro F1 is 2p/(1+p)
    density = sum(c["support"] for c in result["per_class"].values()) / (result["eval_rows"] * 3)
    all_labels = 2 * density / (1 + density)
    assert result["f1_micro"] > all_labels, (
        f"f1_micro {result['f1_micro']} does not beat guessing every label ({all_labels:.3f})"
    )
    assert eval_events(job_dir)[-1]["f1_micro"] == pytest.approx(result["f1_micro"])


def test_prompt_tuning_classification_trains(workspace: Any, bert: Path, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "reviews.jsonl", reviews(24))
    recipe = recipe_for("classification", bert, data, method="prompt_tuning")
    recipe["method"] = {"name": "prompt_tuning", "num_virtual_tokens": 4}
    recipe["training"]["max_steps"] = 4
    job_dir, status = run_inline(workspace, recipe)
    assert status["result"]["steps"] == 4
    assert json.loads((job_dir / "adapter" / "adapter_config.json").read_text())["peft_type"] == "PROMPT_TUNING"


def test_ner_lora_entity_metrics(ner_run: tuple[Path, dict[str, Any]]) -> None:
    job_dir, status = ner_run
    result = status["result"]
    evals = eval_events(job_dir)
    assert evals and {"precision", "recall", "f1", "accuracy", "eval_loss"} <= set(evals[-1])
    assert set(result["per_type"]) <= {"PER", "LOC"}
    for type_ in result["per_type"]:
        assert result["per_type"][type_]["support"] == 8  # every eval row has one PER and one LOC
        assert f"per_type/{type_}/f1" in evals[-1]
    p, r, f1 = result["precision"], result["recall"], result["f1"]
    assert f1 == pytest.approx(2 * p * r / (p + r) if p + r else 0.0)
    assert f1 > random_tagger_f1(), f"entity F1 {f1} does not beat uniformly random tags"
    task = json.loads((job_dir / "adapter" / "ftbench_task.json").read_text())
    assert task["labels"] == ["O", "B-LOC", "B-PER"]


def test_qa_lora_squad_metrics_and_predictions(qa_run: tuple[Path, dict[str, Any]]) -> None:
    job_dir, status = qa_run
    result = status["result"]
    assert result["train_windows"] > result["train_rows"]
    assert 0.0 <= result["exact_match"] <= result["f1"] <= 100.0
    assert result["total"] == result["eval_rows"] == 8
    rows = squad_rows(8, seed=1)
    always_empty = 100.0 * sum(not r["answers"]["text"] for r in rows) / len(rows)
    assert result["f1"] > always_empty, f"F1 {result['f1']} does not beat always answering nothing ({always_empty})"
    evals = eval_events(job_dir)
    assert {"exact_match", "f1", "eval_loss"} <= set(evals[-1])
    predictions = json.loads((job_dir / "eval_predictions.json").read_text())
    assert len(predictions) == 8 and all(isinstance(v, str) for v in predictions.values())
    task = json.loads((job_dir / "adapter" / "ftbench_task.json").read_text())
    assert task["allow_unanswerable"] is True and task["doc_stride"] == 4


# ---------------------------------------------------------------------------------------------------------
# ftbench predict: must agree with the run's own eval metrics


def predict_cli(ws: Any, capsys: Any, *args: str) -> Any:
    from ftbench.cli import main

    capsys.readouterr()
    code = main(["--workspace", str(ws.root), "predict", *args])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def test_predict_classification_matches_eval_accuracy(
    ws: Any, cls_run: tuple[Path, dict[str, Any]], data_dir: Path, capsys: Any
) -> None:
    job_dir, status = cls_run
    results = json.loads(
        predict_cli(ws, capsys, job_dir.name, "--file", str(data_dir / "reviews-eval.jsonl"), "--json")
    )
    gold = [r["label"] for r in reviews(10, seed=1)]
    assert len(results) == 10
    for r in results:
        assert sum(d["score"] for d in r["labels"]) == pytest.approx(1.0, abs=1e-5)
        assert r["label"] == r["labels"][0]["label"] in ("negative", "positive")
    accuracy = sum(r["label"] == g for r, g in zip(results, gold, strict=True)) / 10
    assert accuracy == pytest.approx(status["result"]["accuracy"])
    text = predict_cli(ws, capsys, str(job_dir), "good great happy")
    assert text.splitlines()[0].split("\t")[0] in ("negative", "positive")


def test_predict_multilabel_returns_label_lists(ws: Any, multi_run: tuple[Path, dict[str, Any]], capsys: Any) -> None:
    job_dir, _ = multi_run
    (result,) = json.loads(predict_cli(ws, capsys, job_dir.name, "alice paris the review", "--json"))
    assert isinstance(result["label"], list)
    assert {d["label"] for d in result["labels"]} == {"mood", "people", "places"}
    assert all(0.0 <= d["score"] <= 1.0 for d in result["labels"])
    assert result["label"] == [d["label"] for d in result["labels"] if d["score"] >= 0.5]


def test_predict_ner_matches_eval_f1(
    ws: Any, ner_run: tuple[Path, dict[str, Any]], data_dir: Path, capsys: Any
) -> None:
    from ftbench.train.metrics import entity_metrics

    job_dir, status = ner_run
    rows = ner_rows(8, seed=1)
    results = json.loads(predict_cli(ws, capsys, job_dir.name, "--file", str(data_dir / "ner-eval.jsonl"), "--json"))
    m = entity_metrics([r["ner_tags"] for r in rows], [r["tags"] for r in results])
    assert m["f1"] == pytest.approx(status["result"]["f1"])
    for r in results:
        for e in r["entities"]:
            assert r["text"][e["start"] : e["end"]] == e["text"] and e["type"] in ("PER", "LOC")
    # raw text: words and punctuation are split, spans point into the original string
    (raw,) = json.loads(predict_cli(ws, capsys, job_dir.name, "hello bob, from paris!", "--json"))
    assert raw["tokens"] == ["hello", "bob", ",", "from", "paris", "!"]
    for e in raw["entities"]:
        assert "hello bob, from paris!"[e["start"] : e["end"]] == e["text"]


def test_predict_qa_matches_eval_predictions(
    ws: Any, qa_run: tuple[Path, dict[str, Any]], data_dir: Path, capsys: Any
) -> None:
    job_dir, _ = qa_run
    results = json.loads(predict_cli(ws, capsys, job_dir.name, "--file", str(data_dir / "squad-eval.jsonl"), "--json"))
    expected = json.loads((job_dir / "eval_predictions.json").read_text())
    assert [r["answer"] for r in results] == [expected[row["id"]] for row in squad_rows(8, seed=1)]
    for r in results:
        assert 0.0 <= r["probability"] <= 1.0
        if r["answer"]:
            assert r["context"][r["start"] : r["end"]] == r["answer"]
    (one,) = json.loads(
        predict_cli(ws, capsys, job_dir.name, "where is bob ||| the review says bob lives in paris", "--json")
    )
    assert one["question"] == "where is bob" and one["context"].endswith("paris")


def test_predict_errors(
    ws: Any, cls_run: tuple[Path, dict[str, Any]], qa_run: tuple[Path, dict[str, Any]], capsys: Any
) -> None:
    from ftbench.cli import main

    assert main(["--workspace", str(ws.root), "predict", cls_run[0].name]) == 2
    assert "Nothing to predict" in capsys.readouterr().err
    assert main(["--workspace", str(ws.root), "predict", qa_run[0].name, "no separator here"]) == 2
    assert "question ||| context" in capsys.readouterr().err
    sft_dir = ws.root / "runs" / "sft-run"
    sft_dir.mkdir(parents=True)
    (sft_dir / "status.json").write_text(json.dumps({"id": "sft-run", "kind": "train", "state": "succeeded"}))
    (sft_dir / "recipe.yaml").write_text("task: sft\n")
    assert main(["--workspace", str(ws.root), "predict", "sft-run", "hi"]) == 2
    assert "ftbench chat" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------
# bad input: a clear error before any model loads


def _error(workspace: Any, recipe: dict[str, Any]) -> str:
    from ftbench.core.errors import FtbenchError

    with pytest.raises(FtbenchError) as info:
        run_inline(workspace, recipe)
    assert info.value.hint
    return info.value.message


def test_missing_label_names_the_row(workspace: Any, bert: Path, tmp_path: Path) -> None:
    rows = reviews(12)
    rows[6] = {"text": "no label here", "label": None}
    data = write_jsonl(tmp_path / "bad.jsonl", rows)
    message = _error(workspace, recipe_for("classification", bert, data))
    assert "row 7" in message and "bad.jsonl" in message


def test_inconsistent_labels(workspace: Any, bert: Path, tmp_path: Path) -> None:
    rows = reviews(12)
    rows[3]["label"] = ["positive"]
    data = write_jsonl(tmp_path / "mixed.jsonl", rows)
    assert "row 4" in _error(workspace, recipe_for("classification", bert, data))
    rows = reviews(12)
    rows[5]["label"] = 1
    data = write_jsonl(tmp_path / "kinds.jsonl", rows)
    assert "row 6" in _error(workspace, recipe_for("classification", bert, data))


def test_eval_label_unknown_to_training(workspace: Any, bert: Path, tmp_path: Path) -> None:
    train = write_jsonl(tmp_path / "train.jsonl", reviews(12))
    evalrows = reviews(4)
    evalrows[2]["label"] = "neutral"
    ev = write_jsonl(tmp_path / "eval.jsonl", evalrows)
    recipe = recipe_for("classification", bert, train)
    recipe["data"].update(eval=str(ev), eval_split=0.0)
    message = _error(workspace, recipe)
    assert "eval.jsonl" in message and "row 3" in message and "'neutral'" in message


def test_ner_tokens_and_tags_of_different_lengths(workspace: Any, bert: Path, tmp_path: Path) -> None:
    rows = ner_rows(12)
    rows[8]["ner_tags"] = rows[8]["ner_tags"][:-1]
    data = write_jsonl(tmp_path / "ner.jsonl", rows)
    message = _error(workspace, recipe_for("ner", bert, data))
    assert "row 9" in message and "5" in message and "4" in message


def test_ner_integer_tags_need_names(workspace: Any, bert: Path, tmp_path: Path) -> None:
    rows = [{"tokens": r["tokens"], "ner_tags": [0, 1, 0, 2, 0]} for r in ner_rows(12)]
    data = write_jsonl(tmp_path / "ids.jsonl", rows)
    assert "integer ner_tags" in _error(workspace, recipe_for("ner", bert, data))
    from ftbench.core.errors import FtbenchError
    from ftbench.train.encoders import Numbered
    from ftbench.train.tasks.ner import discover_tags

    numbered = [Numbered("ids.jsonl", i + 1, r) for i, r in enumerate(rows)]
    with pytest.raises(FtbenchError) as info:
        discover_tags(numbered)
    assert "ner.labels" in (info.value.hint or "")
    with pytest.raises(FtbenchError, match="row 1"):
        discover_tags(numbered, ["O", "B-PER"])  # id 2 has no name
    assert discover_tags(numbered, ["O", "B-PER", "B-LOC"]) == ["O", "B-PER", "B-LOC"]


def test_answer_start_not_matching_context(workspace: Any, bert: Path, tmp_path: Path) -> None:
    rows = squad_rows(12)
    rows[4]["answers"]["answer_start"] = [rows[4]["answers"]["answer_start"][0] + 2]
    data = write_jsonl(tmp_path / "squad.jsonl", rows)
    message = _error(workspace, recipe_for("qa", bert, data))
    assert "row 5" in message and "answer_start" in message


def test_causal_lm_refused_for_ner_and_qa(workspace: Any, tiny_llama: Path, tmp_path: Path) -> None:
    ner = write_jsonl(tmp_path / "ner.jsonl", ner_rows(12))
    squad = write_jsonl(tmp_path / "squad.jsonl", squad_rows(12))
    for task, data in (("ner", ner), ("qa", squad)):
        message = _error(workspace, recipe_for(task, tiny_llama, data))
        assert "causal language model" in message and task in message


def test_prompt_tuning_refused_for_ner(workspace: Any, bert: Path, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "ner.jsonl", ner_rows(12))
    assert "prompt_tuning" in _error(workspace, recipe_for("ner", bert, data, method="prompt_tuning"))


def test_cli_train_refuses_bad_encoder_data_before_any_job(
    workspace: Any, bert: Path, tmp_path: Path, capsys: Any
) -> None:
    import yaml

    from ftbench.cli import main

    data = tmp_path / "squad.jsonl"
    rows = [
        {
            "id": str(i),
            "question": "Who?",
            "context": "Alice met Bob in Paris.",
            "answers": {"text": ["Bob"], "answer_start": [10]},
        }
        for i in range(6)
    ]
    rows[2]["answers"]["answer_start"] = [3]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = tmp_path / "qa.yaml"
    recipe.write_text(yaml.safe_dump(recipe_for("qa", bert, data)))
    assert main(["--workspace", str(workspace.root), "train", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "row 3" in err and "answer_start" in err and "hint: " in err
    assert not any(workspace.runs_dir.iterdir())  # nothing launched, nothing half made


def squad_original(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows in the layout SQuAD v2.0 is published in: data > paragraphs (one per context) > qas."""
    paragraphs: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        answers = [{"text": t, "answer_start": s} for t, s in zip(*row["answers"].values(), strict=True)]
        qa = {"id": row["id"], "question": row["question"], "answers": answers, "is_impossible": not answers}
        if not answers:
            qa["plausible_answers"] = [{"text": "product", "answer_start": row["context"].index("product")}]
        paragraphs.setdefault(row["context"], []).append(qa)
    article = {"title": "reviews", "paragraphs": [{"context": c, "qas": q} for c, q in paragraphs.items()]}
    return {"version": "v2.0", "data": [article]}


def test_qa_trains_on_the_original_squad_layout(workspace: Any, bert: Path, tmp_path: Path) -> None:
    """A SQuAD v2.0 file as published (nested, with is_impossible) trains the QA task like the flat rows."""
    rows = squad_rows(8)  # fewer than 10: no held-out rows, so no eval pass (seconds)
    data = tmp_path / "train-v2.0.json"
    data.write_text(json.dumps(squad_original(rows)), encoding="utf-8")
    recipe = recipe_for("qa", bert, data)
    recipe["data"]["eval_split"] = 0.0
    recipe["training"].update(max_steps=2, eval_steps=None)
    job_dir, status = run_inline(workspace, recipe)
    result = status["result"]
    assert result["train_rows"] == len(rows) and result["steps"] == 2, result
    assert (job_dir / "adapter" / "adapter_model.safetensors").is_file()
    bad = squad_original(rows)
    bad["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] += 1
    data.write_text(json.dumps(bad), encoding="utf-8")
    message = _error(workspace, recipe_for("qa", bert, data))
    assert "row 1 (question id 'q0')" in message and "answer_start" in message
