"""ftbench.evaluate.metrics against the reference implementations (sacrebleu, rouge-score) on random text.

Random sentences mix words from a small vocabulary (so n-grams overlap), punctuation, digits with dashes and
HTML entities (the 13a tokenizer's special cases), and some lines are empty or share no word at all.
"""

from __future__ import annotations

import random
import re

import pytest

from ftbench.evaluate import metrics as m

sacrebleu = pytest.importorskip("sacrebleu")
rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")

VOCAB = "the cat sat on a mat dog ran fast slow red blue Blue THE it's 3-4 1,000 2.5 end. (yes) &amp; x-ray, why? ok!".split()


def random_line(rng: random.Random, max_words: int = 14) -> str:
    if rng.random() < 0.05:
        return ""
    return " ".join(rng.choice(VOCAB) for _ in range(rng.randint(1, max_words)))


def corpus(seed: int, n: int = 40, refs: int = 1) -> tuple[list[str], list[list[str]]]:
    rng = random.Random(seed)
    hyps = [random_line(rng) for _ in range(n)]
    references = [[random_line(rng) for _ in range(refs)] for _ in range(n)]
    return hyps, references


@pytest.mark.parametrize("seed,refs", [(0, 1), (1, 1), (2, 2), (3, 3)])
def test_corpus_bleu_equals_sacrebleu(seed, refs):
    hyps, references = corpus(seed, refs=refs)
    expected = sacrebleu.corpus_bleu(hyps, [list(col) for col in zip(*references, strict=True)]).score
    assert m.corpus_bleu(hyps, references) == pytest.approx(expected, abs=1e-9)
    assert expected > 1.0  # the random text overlaps enough for the comparison to mean something


@pytest.mark.parametrize("seed", range(4))
def test_sentence_bleu_equals_sacrebleu(seed):
    hyps, references = corpus(seed, n=30, refs=2)
    for hyp, refs in zip(hyps, references, strict=True):
        assert m.sentence_bleu(hyp, refs) == pytest.approx(sacrebleu.sentence_bleu(hyp, refs).score, abs=1e-9)


@pytest.mark.parametrize("seed,refs", [(0, 1), (5, 2)])
def test_chrf_equals_sacrebleu(seed, refs):
    hyps, references = corpus(seed, refs=refs)
    expected = sacrebleu.corpus_chrf(hyps, [list(col) for col in zip(*references, strict=True)]).score
    assert m.corpus_chrf(hyps, references) == pytest.approx(expected, abs=1e-9)
    for hyp, line_refs in zip(hyps, references, strict=True):
        assert m.sentence_chrf(hyp, line_refs) == pytest.approx(sacrebleu.sentence_chrf(hyp, line_refs).score, abs=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_rouge_equals_rouge_score(seed):
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=False)
    hyps, references = corpus(seed, refs=2)
    for hyp, refs in zip(hyps, references, strict=True):
        expected = scorer.score_multi(refs, hyp)
        got = m.rouge(hyp, refs)
        for key in ("rouge1", "rouge2", "rougeL"):
            assert got[key] == pytest.approx(expected[key].fmeasure, abs=1e-12), (hyp, refs, key)


def test_korean_scores_on_characters_where_words_say_nothing():
    ref = "배송이 빠르고 품질이 좋아요"
    close = "배송은 빠르고 품질도 좋아요"  # particles differ: no word matches, most characters do
    assert m.tokenization_for([close, ref]) == m.CHAR
    # rouge-score drops Hangul entirely and would give 0; character ROUGE-1 sees 10 of 12 characters
    assert m.rouge(close, [ref])["rouge1"] == pytest.approx(10 / 12)
    assert m.token_f1(close, [ref]) == pytest.approx(10 / 12)
    assert 0 < m.sentence_bleu(close, [ref], m.CHAR) < 100
    assert m.sentence_bleu(close, [ref], m.CHAR) == pytest.approx(
        sacrebleu.sentence_bleu(close, [ref], tokenize="char").score, abs=1e-9
    )
    assert m.answer_length(ref) == 12  # characters, not 4 words


def test_squad_exact_match_and_f1_and_label_parsing():
    assert m.exact_match("The Cat!", ["a cat"]) == 1.0
    assert m.token_f1("the cat sat", ["cat sat on mat"]) == pytest.approx(2 * (2 / 2) * (2 / 4) / (1 + 0.5))
    pattern = re.compile(r"Sentiment: (\w+)")
    options = m.ScoreOptions(label_pattern=pattern.pattern)
    right = m.score_example("Sentiment: Positive.", ["Sentiment: positive"], options)
    wrong_format = m.score_example("I think it is positive", ["positive"], options)
    assert (right["label"], right["label_accuracy"]) == ("positive", 1.0)
    assert (wrong_format["label"], wrong_format["label_accuracy"]) == (None, 0.0)
    assert "label_accuracy" not in m.score_example("positive", ["positive"], m.ScoreOptions())


def test_aggregate_is_corpus_level_and_percent():
    options = m.ScoreOptions(label_pattern=r"Sentiment: (\w+)")
    data = [("Sentiment: positive", ["Sentiment: positive"]), ("Sentiment: neutral", ["Sentiment: negative"])]
    rows = [
        {"prediction": p, "references": r, "scores": m.score_example(p, r, options), "nll": 2.0, "ref_tokens": 4}
        for p, r in data
    ]
    out = m.aggregate(rows, options)
    assert out["label_accuracy"] == 50.0
    assert out["exact_match"] == 50.0
    assert out["bleu"] == pytest.approx(sacrebleu.corpus_bleu([p for p, _ in data], [[r[0] for _, r in data]]).score)
    assert out["perplexity"] == pytest.approx(2.718281828 ** (4.0 / 8))
    assert out["length"] == {"mean": 2.0, "median": 2.0, "min": 2, "max": 2}


def test_chat_prompt_set_references_are_scored_like_eval(tmp_path):
    from ftbench.commands.chat import prompt_set_scores, read_prompts

    path = tmp_path / "prompts.jsonl"
    path.write_text(
        '{"prompt": "a", "reference": "the cat sat"}\n{"instruction": "b", "output": "a dog ran"}\n', encoding="utf-8"
    )
    prompts = read_prompts(path)
    assert [p["references"] for p in prompts] == [["the cat sat"], ["a dog ran"]]
    rows = []
    for i, (item, answer) in enumerate(zip(prompts, ["The cat sat!", "no idea"], strict=True), start=1):
        scores = m.score_example(answer, item["references"], m.ScoreOptions())
        rows.append(
            {"index": i, "references": item["references"], "answers": {"v": {"text": answer, "scores": scores}}}
        )
    out = prompt_set_scores(rows, ["v"])["v"]
    assert out["exact_match"] == 50.0 and out["examples"] == 2
    assert out["bleu"] == pytest.approx(
        sacrebleu.corpus_bleu(["The cat sat!", "no idea"], [["the cat sat", "a dog ran"]]).score
    )
    assert prompt_set_scores([{"index": 1, "references": [], "answers": {"v": {"text": "x"}}}], ["v"]) == {}
