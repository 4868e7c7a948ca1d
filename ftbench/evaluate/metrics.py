"""Scores for generated answers against references: EM, token F1, ROUGE-1/2/L, BLEU, chrF, labels, lengths.

Why our own code: sacrebleu and rouge-score are not runtime dependencies (rouge-score pulls nltk and absl),
and evaluation must not fetch metric scripts. tests/unit/test_eval_metrics.py proves each function equal to
the reference implementation on random text:

- BLEU: sacrebleu's corpus BLEU (13a tokenizer, 4-grams, `exp` smoothing, closest reference length);
  per-example BLEU is sacrebleu's sentence BLEU (effective order).
- chrF: sacrebleu's chrF2 (character 6-grams, whitespace removed, effective order, best reference per line).
- ROUGE: rouge-score's RougeScorer without stemming (lower case, [a-z0-9] tokens), F-measure, best reference.
- EM / token F1: SQuAD normalisation, shared with train/metrics.py.

Text in a script written without spaces between words, or with particles glued to words (Chinese, Japanese,
Korean, Thai), makes word-level metrics meaningless: rouge-score drops every non-ASCII letter, and a Korean
word with a different particle never matches. Such text is scored on characters instead (BLEU with sacrebleu's
`char` tokenizer, ROUGE and token F1 on one token per character); `tokenization` in the result says which was
used. chrF is character-level already. Pure Python and the standard library: cheap to import anywhere.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ftbench.train.metrics import normalize_answer

# Hangul, CJK ideographs, kana, Thai and friends: scripts where whitespace does not delimit comparable words.
_UNSPACED = re.compile(
    "[\u0e00-\u0e7f\u1100-\u11ff\u3040-\u30ff\u3100-\u312f\u3130-\u318f\u3400-\u4dbf"
    "\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f]"
)
WORD, CHAR = "word", "char"


def tokenization_for(texts: Sequence[str]) -> str:
    """`char` when any text contains an unspaced script, else `word`: one choice per comparison, so a
    Korean reference and an English answer are tokenized alike."""
    return CHAR if any(_UNSPACED.search(t or "") for t in texts) else WORD


# ---------------------------------------------------------------------------------------------------------
# EM and token F1 (SQuAD)


def _answer_tokens(text: str, tokenization: str) -> list[str]:
    norm = normalize_answer(text)
    return list(norm.replace(" ", "")) if tokenization == CHAR else norm.split()


def exact_match(prediction: str, references: Sequence[str]) -> float:
    return float(any(normalize_answer(prediction) == normalize_answer(r) for r in references))


def token_f1(prediction: str, references: Sequence[str]) -> float:
    """Best bag-of-tokens F1 over the references; two empty answers score 1 (as SQuAD does)."""
    best = 0.0
    for ref in references:
        mode = tokenization_for([prediction, ref])
        pred_tokens, gold_tokens = _answer_tokens(prediction, mode), _answer_tokens(ref, mode)
        if not pred_tokens or not gold_tokens:
            best = max(best, float(pred_tokens == gold_tokens))
            continue
        same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
        if same:
            precision, recall = same / len(pred_tokens), same / len(gold_tokens)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


# ---------------------------------------------------------------------------------------------------------
# ROUGE (rouge-score semantics)

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def rouge_tokens(text: str, tokenization: str = WORD) -> list[str]:
    if tokenization == CHAR:
        return [c for c in text.lower() if not c.isspace()]
    return [t for t in _NON_ALNUM.sub(" ", text.lower()).split() if t]


def _fmeasure(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _rouge_n(target: list[str], prediction: list[str], n: int) -> float:
    t, p = _ngrams(target, n), _ngrams(prediction, n)
    overlap = sum(min(count, p[g]) for g, count in t.items())
    return _fmeasure(overlap / max(sum(p.values()), 1), overlap / max(sum(t.values()), 1))


def _lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def _rouge_l(target: list[str], prediction: list[str]) -> float:
    if not target or not prediction:
        return 0.0
    lcs = _lcs_length(target, prediction)
    return _fmeasure(lcs / len(prediction), lcs / len(target))


def rouge(prediction: str, references: Sequence[str]) -> dict[str, float]:
    """rouge1 / rouge2 / rougeL F-measures (0..1), each the best over the references (rouge-score's score_multi)."""
    best = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for ref in references:
        mode = tokenization_for([prediction, ref])
        target, pred = rouge_tokens(ref, mode), rouge_tokens(prediction, mode)
        scores = {
            "rouge1": _rouge_n(target, pred, 1),
            "rouge2": _rouge_n(target, pred, 2),
            "rougeL": _rouge_l(target, pred),
        }
        best = {k: max(v, scores[k]) for k, v in best.items()}
    return best


# ---------------------------------------------------------------------------------------------------------
# BLEU (sacrebleu semantics)

_13A_RULES = (
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
)
MAX_ORDER = 4


def tokenize_13a(line: str) -> str:
    """mteval-v13a tokenization, as sacrebleu's default `13a` tokenizer applies it."""
    line = line.rstrip().replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = line.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    line = f" {line} "
    for pattern, repl in _13A_RULES:
        line = pattern.sub(repl, line)
    return " ".join(line.split())


def _bleu_tokens(text: str, tokenization: str) -> list[str]:
    if tokenization == CHAR:
        return " ".join(text.rstrip()).split()
    return tokenize_13a(text).split()


def _bleu_stats(prediction: str, references: Sequence[str], tokenization: str) -> list[int]:
    """[hyp_len, ref_len, correct_1..4, total_1..4] for one line, as sacrebleu collects them."""
    hyp = _bleu_tokens(prediction, tokenization)
    ref_max: Counter = Counter()
    ref_lens = []
    for ref in references:
        tokens = _bleu_tokens(ref, tokenization)
        ref_lens.append(len(tokens))
        for n in range(1, MAX_ORDER + 1):
            for gram, count in _ngrams(tokens, n).items():
                ref_max[gram] = max(ref_max[gram], count)
    ref_len = min(ref_lens, key=lambda r: (abs(len(hyp) - r), r)) if ref_lens else 0
    correct, total = [0] * MAX_ORDER, [0] * MAX_ORDER
    for n in range(1, MAX_ORDER + 1):
        for gram, count in _ngrams(hyp, n).items():
            total[n - 1] += count
            correct[n - 1] += min(count, ref_max.get(gram, 0))
    return [len(hyp), ref_len, *correct, *total]


def _bleu_from_stats(stats: Sequence[int], effective_order: bool) -> float:
    sys_len, ref_len = stats[0], stats[1]
    correct, total = stats[2 : 2 + MAX_ORDER], stats[2 + MAX_ORDER :]
    bp = 1.0 if sys_len >= ref_len else (math.exp(1 - ref_len / sys_len) if sys_len > 0 else 0.0)
    if not any(correct):
        return 0.0
    precisions = [0.0] * MAX_ORDER
    smooth, order = 1.0, MAX_ORDER
    for n in range(1, MAX_ORDER + 1):
        if total[n - 1] == 0:
            break
        if effective_order:
            order = n
        if correct[n - 1] == 0:
            smooth *= 2
            precisions[n - 1] = 100.0 / (smooth * total[n - 1])
        else:
            precisions[n - 1] = 100.0 * correct[n - 1] / total[n - 1]
    logs = [math.log(p) if p > 0 else -9999999999 for p in precisions[:order]]
    return bp * math.exp(sum(logs) / order)


def corpus_bleu(predictions: Sequence[str], references: Sequence[Sequence[str]], tokenization: str = WORD) -> float:
    """sacrebleu's `BLEU().corpus_score` (0..100) with each line's own list of references."""
    sums = [0] * (2 + 2 * MAX_ORDER)
    for prediction, refs in zip(predictions, references, strict=True):
        sums = [a + b for a, b in zip(sums, _bleu_stats(prediction, refs, tokenization), strict=True)]
    return _bleu_from_stats(sums, effective_order=False)


def sentence_bleu(prediction: str, references: Sequence[str], tokenization: str = WORD) -> float:
    """sacrebleu's `sentence_bleu` (effective order, exp smoothing), 0..100."""
    return _bleu_from_stats(_bleu_stats(prediction, references, tokenization), effective_order=True)


# ---------------------------------------------------------------------------------------------------------
# chrF (sacrebleu semantics: chrF2, character 6-grams)

CHRF_ORDER, CHRF_BETA = 6, 2


def _char_ngrams(text: str) -> list[Counter]:
    line = "".join(text.split())
    return [Counter(line[i : i + n] for i in range(len(line) - n + 1)) for n in range(1, CHRF_ORDER + 1)]


def _chrf_from_stats(stats: Sequence[int]) -> float:
    factor = CHRF_BETA**2
    avg_prec = avg_rec = 0.0
    effective = 0
    for i in range(CHRF_ORDER):
        n_hyp, n_ref, n_match = stats[3 * i : 3 * i + 3]
        if n_hyp > 0 and n_ref > 0:
            avg_prec += n_match / n_hyp
            avg_rec += n_match / n_ref
            effective += 1
    if effective:
        avg_prec, avg_rec = avg_prec / effective, avg_rec / effective
    if avg_prec + avg_rec <= 0:
        return 0.0
    return 100 * (1 + factor) * avg_prec * avg_rec / (factor * avg_prec + avg_rec)


def _chrf_stats(prediction: str, references: Sequence[str]) -> list[int]:
    """[hyp, ref, match] per order against the reference with the best sentence chrF (sacrebleu's choice)."""
    hyp = _char_ngrams(prediction)
    best: list[int] = []
    best_score = -1.0
    for ref in references:
        stats: list[int] = []
        for h, r in zip(hyp, _char_ngrams(ref), strict=True):
            match = sum(min(c, r[g]) for g, c in h.items() if g in r)
            stats += [sum(h.values()) if r else 0, sum(r.values()), match]
        score = _chrf_from_stats(stats)
        if score > best_score:
            best_score, best = score, stats
    return best or [0] * (3 * CHRF_ORDER)


def corpus_chrf(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    sums = [0] * (3 * CHRF_ORDER)
    for prediction, refs in zip(predictions, references, strict=True):
        sums = [a + b for a, b in zip(sums, _chrf_stats(prediction, refs), strict=True)]
    return _chrf_from_stats(sums)


def sentence_chrf(prediction: str, references: Sequence[str]) -> float:
    return _chrf_from_stats(_chrf_stats(prediction, references))


# ---------------------------------------------------------------------------------------------------------
# labels and lengths


def parse_label(text: str, pattern: re.Pattern[str]) -> str | None:
    """The label in an answer: the pattern's first group (or whole match), lower-cased; None when it does not
    match, so an answer in the wrong format counts as wrong."""
    m = pattern.search(text)
    if m is None:
        return None
    return (m.group(1) if m.groups() else m.group(0)).strip().lower()


def answer_length(text: str) -> int:
    """Length in words, or in characters for unspaced scripts (the same unit the metrics use)."""
    return len(rouge_tokens(text, CHAR)) if tokenization_for([text]) == CHAR else len(text.split())


def length_stats(lengths: Sequence[int]) -> dict[str, float]:
    if not lengths:
        return {"mean": 0.0, "median": 0.0, "min": 0, "max": 0}
    return {
        "mean": statistics.fmean(lengths),
        "median": float(statistics.median(lengths)),
        "min": min(lengths),
        "max": max(lengths),
    }


# ---------------------------------------------------------------------------------------------------------
# per example and aggregate

GENERATION_METRICS = ("exact_match", "token_f1", "rouge1", "rouge2", "rougeL", "bleu", "chrf", "label_accuracy")


@dataclass(frozen=True)
class ScoreOptions:
    metrics: tuple[str, ...] = GENERATION_METRICS
    label_pattern: str | None = None  # e.g. `Sentiment: (\w+)`; label accuracy is scored only with one

    def compiled(self) -> re.Pattern[str] | None:
        return re.compile(self.label_pattern) if self.label_pattern else None


def score_example(prediction: str, references: Sequence[str], options: ScoreOptions) -> dict[str, Any]:
    """Per-example scores (all 0..1 except BLEU/chrF, 0..100) plus the parsed labels and the tokenization used."""
    out: dict[str, Any] = {"length": answer_length(prediction)}
    if not references:
        return out
    wanted = set(options.metrics)
    out["tokenization"] = tokenization_for([prediction, *references])
    if "exact_match" in wanted:
        out["exact_match"] = exact_match(prediction, references)
    if "token_f1" in wanted:
        out["token_f1"] = token_f1(prediction, references)
    if wanted & {"rouge1", "rouge2", "rougeL"}:
        out.update({k: v for k, v in rouge(prediction, references).items() if k in wanted})
    if "bleu" in wanted:
        out["bleu"] = sentence_bleu(prediction, references, out["tokenization"])
    if "chrf" in wanted:
        out["chrf"] = sentence_chrf(prediction, references)
    if "label_accuracy" in wanted and options.label_pattern:
        pattern = options.compiled()
        gold = {parse_label(r, pattern) or normalize_answer(r) for r in references}
        out["label"] = parse_label(prediction, pattern)
        out["label_accuracy"] = float(out["label"] in gold)
    return out


def aggregate(rows: Sequence[dict[str, Any]], options: ScoreOptions) -> dict[str, Any]:
    """Corpus numbers for one variant from its rows ({prediction, references, scores, nll?, tokens?}).

    Means of per-example scores in 0..1 are reported as percentages, like BLEU and chrF; BLEU and chrF are
    corpus-level (sacrebleu's corpus_score), not means of sentence scores; perplexity is exp(total NLL /
    total reference tokens).
    """
    out: dict[str, Any] = {"examples": len(rows)}
    scored = [r for r in rows if r.get("references")]
    wanted = set(options.metrics)
    for key in ("exact_match", "token_f1", "rouge1", "rouge2", "rougeL", "label_accuracy"):
        if scored and all(key in r["scores"] for r in scored):
            out[key] = 100.0 * statistics.fmean(r["scores"][key] for r in scored)
    if scored and "bleu" in wanted:
        mode = tokenization_for([t for r in scored for t in (r["prediction"], *r["references"])])
        out["bleu"] = corpus_bleu([r["prediction"] for r in scored], [r["references"] for r in scored], mode)
        out["tokenization"] = mode
    if scored and "chrf" in wanted:
        out["chrf"] = corpus_chrf([r["prediction"] for r in scored], [r["references"] for r in scored])
    nll = [r for r in rows if r.get("nll") is not None and r.get("ref_tokens")]
    if nll:
        out["perplexity"] = math.exp(sum(r["nll"] for r in nll) / sum(r["ref_tokens"] for r in nll))
    out["length"] = length_stats([r["scores"]["length"] for r in rows])
    return out
