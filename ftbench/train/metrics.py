"""Task metrics computed in-process: classification, entity-level NER and SQuAD EM/F1.

Why our own code: the issue forbids downloading metric scripts at run time (`evaluate.load` fetches them)
and the seqeval package is not a dependency. Each function follows the reference semantics closely enough
that numbers are comparable with papers and tutorials:

- classification: accuracy, macro/micro F1 and per-class precision/recall (scikit-learn conventions,
  zero division -> 0.0); multi-label uses subset accuracy and per-label binary decisions.
- NER: entities are chunked exactly as seqeval's default (non-strict) mode does for IOB1/IOB2/IOBES tags,
  and an entity counts as correct only when its type, start and end all match.
- QA: SQuAD v1.1/v2.0 official normalisation (lower case, no punctuation, no articles, single spaces).

Only numpy and the standard library are used, so this module is cheap to import in tests.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

# ---------------------------------------------------------------------------------------------------------
# shared


def _prf(tp: float, fp: float, fn: float) -> tuple[float, float, float]:
    """Precision, recall and F1 with 0.0 where a denominator is zero (scikit-learn's zero_division=0)."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


# ---------------------------------------------------------------------------------------------------------
# classification


def classification_metrics(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    labels: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Single-label metrics from class ids.

    Returns accuracy, f1_macro, f1_micro, precision_macro, recall_macro and `per_class`
    ({name: {precision, recall, f1, support}}). Macro averages run over every class in `labels` (or every id
    seen in either array), so a class the model never predicts pulls the macro F1 down as it should.
    """
    t = np.asarray(y_true, dtype=np.int64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} items but y_pred has {p.size}")
    if labels is None:
        n = int(max(t.max(initial=-1), p.max(initial=-1))) + 1
        labels = [str(i) for i in range(n)]
    per_class: dict[str, dict[str, float]] = {}
    tps = fps = fns = 0
    for i, name in enumerate(labels):
        tp = int(np.sum((t == i) & (p == i)))
        fp = int(np.sum((t != i) & (p == i)))
        fn = int(np.sum((t == i) & (p != i)))
        tps, fps, fns = tps + tp, fps + fp, fns + fn
        prec, rec, f1 = _prf(tp, fp, fn)
        per_class[str(name)] = {"precision": prec, "recall": rec, "f1": f1, "support": int(np.sum(t == i))}
    return _summarise(per_class, tps, fps, fns, accuracy=float(np.mean(t == p)) if t.size else 0.0)


def multilabel_metrics(
    y_true: np.ndarray | Sequence[Sequence[int]],
    y_pred: np.ndarray | Sequence[Sequence[int]],
    labels: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Multi-label metrics from 0/1 matrices of shape (rows, labels).

    accuracy is subset accuracy (every label of a row right); micro F1 pools all row x label decisions;
    macro F1 averages the per-label binary F1.
    """
    t = np.asarray(y_true).astype(bool)
    p = np.asarray(y_pred).astype(bool)
    if t.shape != p.shape:
        raise ValueError(f"y_true has shape {t.shape} but y_pred has {p.shape}")
    if labels is None:
        labels = [str(i) for i in range(t.shape[1])]
    per_class: dict[str, dict[str, float]] = {}
    tps = fps = fns = 0
    for i, name in enumerate(labels):
        tp = int(np.sum(t[:, i] & p[:, i]))
        fp = int(np.sum(~t[:, i] & p[:, i]))
        fn = int(np.sum(t[:, i] & ~p[:, i]))
        tps, fps, fns = tps + tp, fps + fp, fns + fn
        prec, rec, f1 = _prf(tp, fp, fn)
        per_class[str(name)] = {"precision": prec, "recall": rec, "f1": f1, "support": int(t[:, i].sum())}
    accuracy = float(np.mean(np.all(t == p, axis=1))) if t.shape[0] else 0.0
    return _summarise(per_class, tps, fps, fns, accuracy=accuracy)


def _summarise(per_class: dict[str, dict[str, float]], tp: int, fp: int, fn: int, accuracy: float) -> dict[str, Any]:
    n = len(per_class) or 1
    micro_p, micro_r, micro_f1 = _prf(tp, fp, fn)
    return {
        "accuracy": accuracy,
        "f1_macro": sum(c["f1"] for c in per_class.values()) / n,
        "f1_micro": micro_f1,
        "precision_macro": sum(c["precision"] for c in per_class.values()) / n,
        "recall_macro": sum(c["recall"] for c in per_class.values()) / n,
        "precision_micro": micro_p,
        "recall_micro": micro_r,
        "per_class": per_class,
    }


# ---------------------------------------------------------------------------------------------------------
# NER (seqeval default-mode semantics)


def _split_tag(tag: str) -> tuple[str, str]:
    """`B-PER` -> ("B", "PER"); `O` -> ("O", "_"), as seqeval reads prefix tags."""
    prefix = tag[:1] if tag else "O"
    entity_type = tag[1:].split("-", maxsplit=1)[-1] or "_"
    return prefix, entity_type


def _end_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if prev_tag in ("E", "S"):
        return True
    if prev_tag == "B" and tag in ("B", "S", "O"):
        return True
    if prev_tag == "I" and tag in ("B", "S", "O"):
        return True
    return prev_tag not in ("O", ".") and prev_type != type_


def _start_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag not in ("O", ".") and prev_type != type_


def get_entities(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Entity chunks `(type, start, end_inclusive)` in one tag sequence, chunked like seqeval.

    A stray `I-X` after `O` opens an entity (lenient IOB2), and a type change closes the previous one.
    """
    chunks: list[tuple[str, int, int]] = []
    prev_tag, prev_type, begin = "O", "", 0
    for i, tag in enumerate([*tags, "O"]):
        prefix, type_ = _split_tag(tag)
        if _end_of_chunk(prev_tag, prefix, prev_type, type_):
            chunks.append((prev_type, begin, i - 1))
        if _start_of_chunk(prev_tag, prefix, prev_type, type_):
            begin = i
        prev_tag, prev_type = prefix, type_
    return chunks


def entity_metrics(y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Entity-level precision/recall/F1 per type and overall (micro), plus token accuracy.

    Keys: precision, recall, f1 (micro over entities, seqeval's headline numbers), f1_macro,
    accuracy (token level, seqeval's accuracy_score) and `per_type` ({type: {precision, recall, f1, support}}).
    """
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} gold sequences but {len(y_pred)} predicted")
    true_set: set[tuple[int, str, int, int]] = set()
    pred_set: set[tuple[int, str, int, int]] = set()
    correct_tokens = total_tokens = 0
    for row, (gold, pred) in enumerate(zip(y_true, y_pred, strict=True)):
        if len(gold) != len(pred):
            raise ValueError(f"sequence {row}: {len(gold)} gold tags but {len(pred)} predicted")
        true_set.update((row, *e) for e in get_entities(list(gold)))
        pred_set.update((row, *e) for e in get_entities(list(pred)))
        correct_tokens += sum(g == p for g, p in zip(gold, pred, strict=True))
        total_tokens += len(gold)
    types = sorted({e[1] for e in true_set} | {e[1] for e in pred_set})
    per_type: dict[str, dict[str, float]] = {}
    for type_ in types:
        t = {e for e in true_set if e[1] == type_}
        p = {e for e in pred_set if e[1] == type_}
        tp = len(t & p)
        prec, rec, f1 = _prf(tp, len(p) - tp, len(t) - tp)
        per_type[type_] = {"precision": prec, "recall": rec, "f1": f1, "support": len(t)}
    tp = len(true_set & pred_set)
    precision, recall, f1 = _prf(tp, len(pred_set) - tp, len(true_set) - tp)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "f1_macro": sum(v["f1"] for v in per_type.values()) / len(per_type) if per_type else 0.0,
        "accuracy": correct_tokens / total_tokens if total_tokens else 0.0,
        "per_type": per_type,
    }


# ---------------------------------------------------------------------------------------------------------
# QA (SQuAD official normalisation)

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD's normalize_answer: lower case, drop punctuation and articles, collapse whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    """Bag-of-tokens F1 after normalisation; two empty answers (unanswerable, abstained) score 1."""
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    common = Counter(pred_tokens) & Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_metrics(predictions: dict[str, str], references: dict[str, Iterable[str]]) -> dict[str, Any]:
    """exact_match and f1 in percent (as the official script prints), best over each question's gold answers.

    A question with no gold answers is unanswerable (SQuAD 2.0): only an empty prediction scores. Also
    reports has_ans_* / no_ans_* splits when both kinds are present, and `total`.
    """
    em_scores: dict[str, float] = {}
    f1_scores: dict[str, float] = {}
    for qid, gold_answers in references.items():
        golds = [g for g in gold_answers if normalize_answer(g)] or [""]
        pred = predictions.get(qid, "")
        em_scores[qid] = max(exact_match(pred, g) for g in golds)
        f1_scores[qid] = max(token_f1(pred, g) for g in golds)
    out: dict[str, Any] = {
        "exact_match": 100.0 * sum(em_scores.values()) / len(em_scores) if em_scores else 0.0,
        "f1": 100.0 * sum(f1_scores.values()) / len(f1_scores) if f1_scores else 0.0,
        "total": len(em_scores),
    }
    has_ans = [q for q, g in references.items() if any(normalize_answer(x) for x in g)]
    no_ans = [q for q in references if q not in set(has_ans)]
    if has_ans and no_ans:
        for name, ids in (("has_ans", has_ans), ("no_ans", no_ans)):
            out[f"{name}_exact_match"] = 100.0 * sum(em_scores[q] for q in ids) / len(ids)
            out[f"{name}_f1"] = 100.0 * sum(f1_scores[q] for q in ids) / len(ids)
            out[f"{name}_total"] = len(ids)
    return out
