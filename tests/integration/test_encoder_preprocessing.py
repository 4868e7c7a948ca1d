"""Encoder-task preprocessing without training: label discovery, imbalance, sub-token alignment, QA windows
and span post-processing, LoRA targets and the encoder check. Uses a tiny WordPiece tokenizer built here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ftbench.core.errors import FtbenchError
from ftbench.train.encoders import Numbered


def rows(*values: Any, key: str = "label") -> list[Numbered]:
    return [Numbered("data.jsonl", i + 1, {"text": "x", key: v}) for i, v in enumerate(values)]


# ---------------------------------------------------------------------------------------------------------
# classification labels


def test_labels_discovered_in_stable_order() -> None:
    from ftbench.train.tasks.classification import discover_labels

    a, multi = discover_labels(rows("pos", "neg", "neutral", "neg"))
    b, _ = discover_labels(rows("neutral", "neg", "pos"))
    assert a == b == ["neg", "neutral", "pos"] and multi is False
    assert discover_labels(rows(2, 0, 1, 0))[0] == ["0", "1", "2"]
    # given labels keep the user's order
    assert discover_labels(rows("pos", "neg"), given=["pos", "neg"])[0] == ["pos", "neg"]
    assert discover_labels(rows(["b"], [], ["a", "b"]))[0:2] == (["a", "b"], True)


@pytest.mark.parametrize(
    ("values", "where"),
    [
        (("pos", None, "neg"), "row 2"),
        (("pos", "", "neg"), "row 2"),
        (("pos", ["neg"]), "row 2"),
        (("pos", 1), "row 2"),
        ((["a"], ["b", 3]), "row 2"),
        (("pos", 1.5), "row 2"),
    ],
)
def test_missing_or_inconsistent_labels(values: tuple[Any, ...], where: str) -> None:
    from ftbench.train.tasks.classification import discover_labels

    with pytest.raises(FtbenchError) as info:
        discover_labels(rows(*values))
    assert where in info.value.message and "data.jsonl" in info.value.message


def test_given_labels_must_cover_the_data() -> None:
    from ftbench.train.tasks.classification import discover_labels, encode_labels

    with pytest.raises(FtbenchError, match="row 3.*'maybe'"):
        discover_labels(rows("pos", "neg", "maybe"), given=["neg", "pos"])
    with pytest.raises(FtbenchError, match="outside 0..1"):
        encode_labels(rows(0, 2), ["a", "b"], multi=False)
    assert encode_labels(rows(["b"], []), ["a", "b"], multi=True) == [[0.0, 1.0], [0.0, 0.0]]


def test_imbalance_summary() -> None:
    from ftbench.train.tasks.classification import describe_summary, imbalance_summary

    summary = imbalance_summary([0] * 8 + [1] * 2, ["neg", "pos"], multi=False)
    assert summary["counts"] == {"neg": 8, "pos": 2}
    assert summary["imbalance_ratio"] == 4.0 and summary["imbalanced"] is True
    assert summary["majority"] == "neg" and summary["majority_share"] == 0.8
    assert "f1_macro" in describe_summary(summary)
    multi = imbalance_summary([[1, 0, 1], [1, 0, 0]], ["a", "b", "c"], multi=True)
    assert multi["counts"] == {"a": 2, "b": 0, "c": 1} and multi["imbalance_ratio"] == float("inf")


# ---------------------------------------------------------------------------------------------------------
# NER


def test_ner_tags_order_and_alignment() -> None:
    from ftbench.train.tasks.ner import IGNORE, align_labels, discover_tags

    data = [Numbered("n.jsonl", 1, {"tokens": ["a", "b", "c"], "ner_tags": ["B-PER", "I-PER", "B-LOC"]})]
    labels = discover_tags(data)
    assert labels == ["O", "B-LOC", "B-PER", "I-PER"]
    # word ids of: [CLS] a a## b c c## c## [SEP]
    word_ids = [None, 0, 0, 1, 2, 2, 2, None]
    word_labels = [labels.index(t) for t in ["B-PER", "I-PER", "B-LOC"]]
    assert align_labels(word_ids, word_labels) == [IGNORE, 2, IGNORE, 3, 1, IGNORE, IGNORE, IGNORE]
    # label_all_tokens: later sub-tokens of a B- word become I- when that tag exists
    all_tokens = align_labels(word_ids, word_labels, labels, label_all_tokens=True)
    assert all_tokens == [IGNORE, 2, 3, 3, 1, 1, 1, IGNORE]


def test_ner_length_mismatch_and_bad_tags() -> None:
    from ftbench.train.tasks.ner import discover_tags

    with pytest.raises(FtbenchError, match="row 2 has 2 tokens but 1 ner_tags"):
        discover_tags(
            [
                Numbered("n.jsonl", 1, {"tokens": ["a"], "ner_tags": ["O"]}),
                Numbered("n.jsonl", 2, {"tokens": ["a", "b"], "ner_tags": ["O"]}),
            ]
        )
    with pytest.raises(FtbenchError, match="'PERSON'"):
        discover_tags([Numbered("n.jsonl", 1, {"tokens": ["a"], "ner_tags": ["PERSON"]})])
    with pytest.raises(FtbenchError, match="inconsistent"):
        discover_tags([Numbered("n.jsonl", 1, {"tokens": ["a", "b"], "ner_tags": ["O", 1]})], ["O", "B-X"])


# ---------------------------------------------------------------------------------------------------------
# QA


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A fast WordPiece tokenizer over a small vocabulary (no model needed)."""
    from transformers import BertTokenizerFast

    words = "where does alice live she lives in paris and bob lives in seoul the city is big what price".split()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(words)), "##s", "?", "."]
    path = Path(tmp_path_factory.mktemp("wp")) / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    from transformers import BertTokenizer

    slow = BertTokenizer(vocab=str(path))
    tok = BertTokenizerFast.from_pretrained(_save(slow, path.parent))
    assert tok.is_fast and tok.tokenize("alice lives in paris") == ["alice", "lives", "in", "paris"]
    return tok


def _save(tok: Any, folder: Path) -> str:
    tok.save_pretrained(str(folder / "tok"))
    return str(folder / "tok")


CONTEXT = "alice lives in paris and bob lives in seoul . the city is big ."


def test_answer_start_checked_against_context() -> None:
    from ftbench.train.tasks.qa import check_rows

    good = {
        "question": "where",
        "context": CONTEXT,
        "answers": {"text": ["paris"], "answer_start": [CONTEXT.index("paris")]},
    }
    none = {"question": "what price", "context": CONTEXT, "answers": {"text": [], "answer_start": []}}
    assert check_rows([Numbered("s.jsonl", 1, good), Numbered("s.jsonl", 2, none)]) == (1, 1)
    bad = {**good, "answers": {"text": ["paris"], "answer_start": [3]}}
    with pytest.raises(FtbenchError) as info:
        check_rows([Numbered("s.jsonl", 1, good), Numbered("s.jsonl", 2, bad)])
    assert "row 2" in info.value.message and "answer_start 3" in info.value.message
    assert str(CONTEXT.index("paris")) in info.value.hint
    uneven = {**good, "answers": {"text": ["paris"], "answer_start": []}}
    with pytest.raises(FtbenchError, match="same length"):
        check_rows([Numbered("s.jsonl", 7, uneven)])


def test_windows_cover_long_context_and_label_the_answer(tokenizer: Any) -> None:
    from ftbench.train.tasks.qa import context_offsets, label_windows, tokenize_windows

    answers = [
        {"text": ["seoul"], "answer_start": [CONTEXT.index("seoul")]},
        {"text": [], "answer_start": []},
    ]
    enc = tokenize_windows(
        tokenizer, ["where does bob live ?", "what price ?"], [CONTEXT, CONTEXT], max_length=14, stride=3
    )
    samples = list(enc["overflow_to_sample_mapping"])
    assert samples.count(0) > 1  # the context needs several windows
    starts, ends = label_windows(enc, answers)
    offsets = context_offsets(enc)
    hits = 0
    for w, sample in enumerate(samples):
        if sample == 1:
            assert starts[w] == ends[w] == 0  # unanswerable: [CLS]
        elif starts[w] != 0:
            hits += 1
            assert CONTEXT[offsets[w][starts[w]][0] : offsets[w][ends[w]][1]] == "seoul"
    assert hits >= 1  # at least one window holds the whole answer
    # every context character is covered by some window
    covered = {c for window in offsets for span in window if span for c in range(*span)}
    assert {i for i, ch in enumerate(CONTEXT) if ch != " "} <= covered


def test_best_answers_picks_span_across_windows_and_abstains() -> None:
    from ftbench.train.tasks.qa import best_answers

    context = "alice lives in paris"
    offsets = [[None, (0, 5), (6, 11), None], [None, (12, 14), (15, 20), None]]
    start = np.array([[0.0, 1.0, 0.0, -9.0], [0.0, 0.0, 5.0, -9.0]])
    end = np.array([[0.0, 0.0, 1.0, -9.0], [0.0, 0.0, 5.0, -9.0]])
    (best,) = best_answers([context], [0, 0], offsets, start, end, n_best=5, max_answer_length=5)
    assert best["text"] == "paris" and (best["start"], best["end"]) == (15, 20) and best["score"] == 10.0
    # a strong [CLS] score makes the model abstain when unanswerable questions are allowed
    start[:, 0] = end[:, 0] = 8.0
    (abstain,) = best_answers([context], [0, 0], offsets, start, end, allow_null=True)
    assert abstain["text"] == "" and abstain["probability"] > 0.5
    (forced,) = best_answers([context], [0, 0], offsets, start, end, allow_null=False)
    assert forced["text"] == "paris"
    # spans longer than max_answer_length or ending before they start are never chosen
    (short,) = best_answers(
        [context],
        [0, 0],
        offsets,
        np.array([[0, 9, 0, 0], [0, 0, 0, 0.0]]),
        np.array([[0, 0, 0, 0], [0, 0, 9, 0.0]]),
        max_answer_length=1,
    )
    assert short["text"] in ("alice", "lives", "in", "paris")


# ---------------------------------------------------------------------------------------------------------
# models


def test_lora_targets_per_architecture() -> None:
    from ftbench.train.methods import LORA_TARGETS, lora_target_modules

    assert lora_target_modules("bert") == ["query", "value"]
    assert lora_target_modules("distilbert") == ["q_lin", "v_lin"]
    assert lora_target_modules("roberta") == ["query", "value"]
    assert lora_target_modules("deberta-v2") == ["query_proj", "value_proj"]
    assert lora_target_modules("modernbert") == ["Wqkv"]
    with pytest.raises(FtbenchError, match="mystery") as info:
        lora_target_modules("mystery")
    assert "method.target_modules" in (info.value.hint or "")
    # the names exist in transformers' implementations of each architecture
    import importlib

    sources = {
        "distilbert": "transformers.models.distilbert.modeling_distilbert",
        "deberta-v2": "transformers.models.deberta_v2.modeling_deberta_v2",
        "modernbert": "transformers.models.modernbert.modeling_modernbert",
        "roberta": "transformers.models.roberta.modeling_roberta",
    }
    import inspect

    for arch, module in sources.items():
        text = inspect.getsource(importlib.import_module(module))
        for name in LORA_TARGETS[arch]:
            assert f"self.{name} = nn.Linear" in text, (arch, name)


def test_encoder_check() -> None:
    from transformers import BertConfig, DistilBertConfig, GPT2Config, LlamaConfig

    from ftbench.train.encoders import require_encoder

    for config in (BertConfig(), DistilBertConfig()):
        for task in ("classification", "ner", "qa"):
            require_encoder(config, task, "m")
    for config in (LlamaConfig(), GPT2Config()):
        require_encoder(config, "classification", "m")  # decoders classify fine
        with pytest.raises(FtbenchError, match="causal language model"):
            require_encoder(config, "ner", "m")
        with pytest.raises(FtbenchError, match="causal language model"):
            require_encoder(config, "qa", "m")


def test_rows_checked_with_format_columns_and_aliases(tmp_path: Path) -> None:
    import json

    from ftbench.core.recipe import validate_recipe
    from ftbench.train.encoders import load_task_rows
    from ftbench.train.tasks.classification import LABEL_ALIASES, TEXT_ALIASES

    data = tmp_path / "tickets.jsonl"
    data.write_text(
        "".join(json.dumps({"body": f"ticket {i}", "labels": ["billing"]}) + "\n" for i in range(20)), encoding="utf-8"
    )
    recipe = validate_recipe(
        {"task": "classification", "model": "m", "data": {"train": str(data), "columns": {"text": "body"}}}
    )
    train, held = load_task_rows(recipe, "classification", {"label": LABEL_ALIASES, "text": TEXT_ALIASES})
    assert (len(train), len(held)) == (18, 2)  # 10% held out by default
    assert train[0].row["label"] == ["billing"] and train[0].row["text"].startswith("ticket")
    assert sorted(r.number for r in train + held) == list(range(1, 21))
    with pytest.raises(FtbenchError, match="data.format: alpaca cannot train task ner; use ner"):
        validate_recipe({"task": "ner", "model": "m", "data": {"train": str(data), "format": "alpaca"}})
    missing = validate_recipe({"task": "ner", "model": "m", "data": str(data)})
    with pytest.raises(FtbenchError, match="row 1: missing field"):
        load_task_rows(missing, "ner")


def test_untrained_heads_are_trained_in_full_with_lora() -> None:
    from transformers import (
        BertConfig,
        BertForQuestionAnswering,
        DebertaV2Config,
        DebertaV2ForSequenceClassification,
        DistilBertConfig,
        DistilBertForSequenceClassification,
    )

    from ftbench.train.methods import head_modules

    small = dict(num_hidden_layers=1, hidden_size=32, num_attention_heads=2, intermediate_size=32)
    assert head_modules(
        DistilBertForSequenceClassification(DistilBertConfig(n_layers=1, dim=32, hidden_dim=32, n_heads=2))
    ) == ["classifier", "pre_classifier"]
    assert head_modules(BertForQuestionAnswering(BertConfig(**small))) == ["qa_outputs"]
    assert head_modules(DebertaV2ForSequenceClassification(DebertaV2Config(**small))) == ["classifier", "pooler"]
