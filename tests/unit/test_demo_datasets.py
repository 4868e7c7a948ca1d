"""The demo datasets: every file parses, is the format it claims, is consistent and is learnable."""

from __future__ import annotations

import csv
import json
import math
import re
from collections import Counter
from pathlib import Path

import pytest

from ftbench.demo import datasets as demo_datasets
from ftbench.demo.gen_extract import NER_LABELS

HANGUL = re.compile(r"[\uac00-\ud7a3]")


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("demo-datasets") / "demo"
    demo_datasets.write_datasets(dest)
    return dest


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_generation_is_deterministic(written: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    demo_datasets.write_datasets(again)
    for name in demo_datasets.DATASET_FILES:
        assert (again / name).read_bytes() == (written / name).read_bytes(), name


def test_every_file_is_written_with_the_promised_size(written: Path) -> None:
    expected = {
        "sentiment-alpaca.jsonl": 600,
        "sentiment-alpaca-eval.jsonl": 60,
        "support-chat.jsonl": 400,
        "support-chat-sharegpt.json": 100,
        "domain-qa.jsonl": 300,
        "preferences.jsonl": 300,
        "reviews.jsonl": 800,
        "reviews-eval.jsonl": 150,
        "topics.jsonl": 500,
        "ner.jsonl": 600,
        "ner-eval.jsonl": 100,
        "squad.jsonl": 500,
        "squad-eval.jsonl": 100,
        "notes.jsonl": 300,
        "feedback.jsonl": 400,
        "answer-format.jsonl": 200,
    }
    for name, count in expected.items():
        rows = json.loads((written / name).read_text()) if name.endswith(".json") else read_jsonl(written / name)
        assert len(rows) == count, name
    readme = (written / "README.md").read_text()
    for name in demo_datasets.DATASET_FILES:
        assert f"`{name}`" in readme
    table = [line for line in readme.splitlines() if line.startswith("| `")]
    assert len(table) == len(demo_datasets.DATASET_FILES) and all(line.count("|") == 5 for line in table)


def test_csv_and_parquet_hold_the_jsonl_rows(written: Path) -> None:
    import pyarrow.parquet as pq

    rows = read_jsonl(written / "reviews.jsonl")
    with open(written / "reviews.csv", newline="", encoding="utf-8") as handle:
        assert list(csv.DictReader(handle)) == rows
    table = pq.read_table(written / "reviews.parquet")
    assert table.column_names == ["text", "label"]
    assert table.to_pylist() == rows
    assert pq.ParquetFile(written / "reviews.parquet").num_row_groups == math.ceil(len(rows) / 256)


def test_sentiment_alpaca_answers_in_the_learnable_format(written: Path) -> None:
    train = read_jsonl(written / "sentiment-alpaca.jsonl")
    held_out = read_jsonl(written / "sentiment-alpaca-eval.jsonl")
    outputs = Counter(r["output"] for r in train)
    assert set(outputs) == {"Sentiment: positive", "Sentiment: negative", "Sentiment: neutral"}
    assert min(outputs.values()) >= 0.28 * len(train)
    for row in train + held_out:
        assert set(row) == {"instruction", "input", "output"} and row["input"] and row["instruction"]
    assert not {r["input"] for r in train} & {r["input"] for r in held_out}
    assert 0.05 < sum(bool(HANGUL.search(r["input"])) for r in train) / len(train) < 0.2


def test_support_chats_are_well_formed_and_partly_multi_turn(written: Path) -> None:
    chats = read_jsonl(written / "support-chat.jsonl")
    multi = 0
    for row in chats:
        roles = [m["role"] for m in row["messages"]]
        if roles[0] == "system":
            roles = roles[1:]
        assert roles[::2] == ["user"] * len(roles[::2]) and roles[1::2] == ["assistant"] * len(roles[1::2])
        assert roles[-1] == "assistant" and all(m["content"].strip() for m in row["messages"])
        multi += roles.count("user") > 1
    assert multi >= 0.2 * len(chats)
    assert any(HANGUL.search(m["content"]) for row in chats for m in row["messages"])

    sharegpt = json.loads((written / "support-chat-sharegpt.json").read_text())
    assert isinstance(sharegpt, list)
    for row in sharegpt:
        senders = [turn["from"] for turn in row["conversations"]]
        assert set(senders) <= {"system", "human", "gpt"} and senders[-1] == "gpt"
        assert all(isinstance(turn["value"], str) and turn["value"] for turn in row["conversations"])


def test_domain_qa_facts_are_consistent(written: Path) -> None:
    rows = read_jsonl(written / "domain-qa.jsonl")
    answers: dict[str, set[str]] = {}
    for row in rows:
        assert set(row) == {"instruction", "input", "output"}
        question = row["input"] or row["instruction"]
        answers.setdefault(question, set()).add(row["output"])
    assert all(len(a) == 1 for a in answers.values()), "one question, one answer"
    pairing = [r["output"] for r in rows if "pair" in (r["input"] or r["instruction"]).lower()]
    assert pairing and all("5 seconds" in a for a in pairing)
    device_limit = [r["output"] for r in rows if "64" in r["output"]]
    assert device_limit and not any(re.search(r"up to (?!64)\d+ devices", r["output"]) for r in rows)
    assert any(HANGUL.search(r["instruction"]) for r in rows)


def test_preferences_pair_a_helpful_answer_with_a_worse_one(written: Path) -> None:
    rows = read_jsonl(written / "preferences.jsonl")
    assert len({r["prompt"] for r in rows}) == len(rows)
    for row in rows:
        assert set(row) == {"prompt", "chosen", "rejected"}
        assert row["chosen"] != row["rejected"] and len(row["chosen"]) > len(row["rejected"])


def _naive_bayes_accuracy(train: list[dict], test: list[dict]) -> float:
    """Bag-of-words multinomial naive Bayes: proves the labels are carried by words, as a small encoder needs."""
    words = lambda text: re.findall(r"[a-z']+", text.lower())  # noqa: E731
    counts: dict[str, Counter] = {}
    priors = Counter(r["label"] for r in train)
    for row in train:
        counts.setdefault(row["label"], Counter()).update(words(row["text"]))
    vocab = set().union(*counts.values())
    totals = {label: sum(c.values()) + len(vocab) for label, c in counts.items()}

    def score(label: str, tokens: list[str]) -> float:
        return math.log(priors[label]) + sum(math.log((counts[label][w] + 1) / totals[label]) for w in tokens)

    correct = sum(max(counts, key=lambda label: score(label, words(r["text"]))) == r["label"] for r in test)
    return correct / len(test)


def test_reviews_are_balanced_held_out_and_learnable(written: Path) -> None:
    train = read_jsonl(written / "reviews.jsonl")
    held_out = read_jsonl(written / "reviews-eval.jsonl")
    labels = Counter(r["label"] for r in train)
    assert set(labels) == {"positive", "negative"} and abs(labels["positive"] - labels["negative"]) <= 0.1 * len(train)
    assert not {r["text"] for r in train} & {r["text"] for r in held_out}
    assert _naive_bayes_accuracy(train, held_out) >= 0.9


def test_topics_are_multi_label(written: Path) -> None:
    rows = read_jsonl(written / "topics.jsonl")
    topics = {"billing", "shipping", "product", "account"}
    per_topic = Counter(label for r in rows for label in r["labels"])
    assert set(per_topic) == topics and min(per_topic.values()) >= 0.2 * len(rows)
    for row in rows:
        assert row["labels"] == sorted(set(row["labels"])) and set(row["labels"]) <= topics and row["labels"]
    assert sum(len(r["labels"]) > 1 for r in rows) >= 0.3 * len(rows)


def test_ner_tags_line_up_with_tokens_and_follow_bio(written: Path) -> None:
    for name in ("ner.jsonl", "ner-eval.jsonl"):
        rows = read_jsonl(written / name)
        seen = Counter()
        for row in rows:
            tokens, tags = row["tokens"], row["ner_tags"]
            assert len(tokens) == len(tags) and all(t.strip() and " " not in t for t in tokens)
            assert set(tags) <= set(NER_LABELS)
            for prev, tag in zip(["O", *tags], tags, strict=False):
                if tag.startswith("I-"):
                    assert prev[2:] == tag[2:] and prev != "O", row
            seen.update(t[2:] for t in tags if t.startswith("B-"))
            entities = []
            for i, tag in enumerate(tags):
                if tag.startswith("B-"):
                    end = next((j for j in range(i + 1, len(tags)) if not tags[j].startswith("I-")), len(tags))
                    entities.append(" ".join(tokens[i:end]))
            assert len(entities) == len(set(entities)), row  # "{PER} and {PER}" names two people
        assert set(seen) == {"PER", "ORG", "LOC", "PRODUCT"}
    train_text = {" ".join(r["tokens"]) for r in read_jsonl(written / "ner.jsonl")}
    assert not train_text & {" ".join(r["tokens"]) for r in read_jsonl(written / "ner-eval.jsonl")}


def test_squad_answer_starts_are_exact(written: Path) -> None:
    train = read_jsonl(written / "squad.jsonl")
    held_out = read_jsonl(written / "squad-eval.jsonl")
    for rows in (train, held_out):
        assert len({r["id"] for r in rows}) == len(rows)
        unanswerable = 0
        for row in rows:
            answers = row["answers"]
            assert len(answers["text"]) == len(answers["answer_start"])
            if not answers["text"]:
                unanswerable += 1
            for text, start in zip(answers["text"], answers["answer_start"], strict=True):
                assert text and row["context"][start : start + len(text)] == text
        assert 0.05 <= unanswerable / len(rows) <= 0.16
    assert not {r["context"] for r in train} & {r["context"] for r in held_out}


def test_notes_are_plain_text(written: Path) -> None:
    rows = read_jsonl(written / "notes.jsonl")
    assert all(set(r) == {"text"} and len(r["text"]) > 20 for r in rows)
    assert len({r["text"] for r in rows}) == len(rows)
    assert any(HANGUL.search(r["text"]) for r in rows)


def test_objective_datasets_are_in_their_formats_and_balanced(written: Path) -> None:
    from ftbench.catalog.formats import detect_format, row_problem

    feedback = read_jsonl(written / "feedback.jsonl")
    assert detect_format(feedback) == "unpaired" and not any(row_problem("unpaired", r) for r in feedback)
    assert Counter(r["label"] for r in feedback) == {True: 200, False: 200}
    prompts = read_jsonl(written / "answer-format.jsonl")
    assert detect_format(prompts) == "prompts" and not any(row_problem("prompts", r) for r in prompts)
    assert Counter(r["answer"] for r in prompts) == {"positive": 100, "negative": 100}
    assert all("`Answer: <word>`" in r["prompt"] for r in prompts) and len({r["prompt"] for r in prompts}) == 200
