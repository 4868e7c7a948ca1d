"""Extractive question answering (SQuAD v1.1 / v2.0 format: id, question, context, answers{text, answer_start}).

A context longer than the window is split into overlapping windows (`qa.doc_stride` tokens shared), and the
offset mapping ties every token back to its characters. Training labels each window with the answer's token
span, or with the [CLS] position when the answer is not inside that window or the question is unanswerable.
At evaluation and prediction the best span over all windows of an example is chosen from the n-best start
and end logits and mapped back to context characters; the answer is empty when the null ([CLS]) score beats
the best span by more than `qa.null_score_diff_threshold` and the training data had unanswerable questions.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ftbench.core.errors import FtbenchError
from ftbench.train.encoders import Numbered

if TYPE_CHECKING:
    from ftbench.core.job_context import JobContext
    from ftbench.core.recipe import Recipe
    from ftbench.train.session import Session

# ---------------------------------------------------------------------------------------------------------
# validation (pure python)


def check_rows(rows: list[Numbered]) -> tuple[int, int]:
    """Check every answer against its context; returns (answerable, unanswerable) counts.

    An answer_start that does not point at the answer text is the most common SQuAD conversion bug (byte vs.
    character offsets, stripped whitespace), and it silently teaches the model wrong spans, so it is an error.
    """
    answerable = unanswerable = 0
    for item in rows:
        row = item.row
        for key in ("question", "context"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise FtbenchError(
                    f"{item.source}: row {item.number} has an empty or missing '{key}'.",
                    "Every row needs a question and a context.",
                )
        answers = row["answers"]
        texts, starts = answers.get("text"), answers.get("answer_start")
        if not isinstance(texts, list) or not isinstance(starts, list) or len(texts) != len(starts):
            raise FtbenchError(
                f"{item.source}: row {item.number}: answers.text and answers.answer_start must be lists of the same length (got {texts!r} and {starts!r}).",
                'Use answers: {text: ["..."], answer_start: [N]}, or empty lists for an unanswerable question.',
            )
        if not texts:
            unanswerable += 1
            continue
        answerable += 1
        context = row["context"]
        for text, start in zip(texts, starts, strict=True):
            if not isinstance(start, int) or isinstance(start, bool) or not isinstance(text, str) or not text:
                raise FtbenchError(
                    f"{item.source}: row {item.number} has answer {text!r} at {start!r}; answer_start must be an integer and text non-empty.",
                    "Fix the row.",
                )
            found = context[start : start + len(text)] if 0 <= start <= len(context) else ""
            if found != text:
                actual = context.find(text)
                hint = (
                    f"The text occurs at character {actual}; set answer_start to that."
                    if actual >= 0
                    else "The answer text does not occur in the context at all."
                )
                raise FtbenchError(
                    f"{item.source}: row {item.number} (question id {row_id(item)!r}): answer_start {start} does not "
                    f"match the context: it points at {found!r}, not {text!r}.",
                    hint + " answer_start counts characters (not bytes) from 0.",
                )
    return answerable, unanswerable


def row_id(item: Numbered) -> str:
    value = item.row.get("id")
    return str(value) if value not in (None, "") else f"row-{item.number}"


# ---------------------------------------------------------------------------------------------------------
# windows


def stride_for(max_length: int, doc_stride: int) -> int:
    """The stride actually usable: it must leave room for new context in every window."""
    return max(0, min(doc_stride, max_length // 4))


def tokenize_windows(
    tokenizer: Any, questions: list[str], contexts: list[str], max_length: int, stride: int, padding: bool = False
) -> Any:
    """Question + context windows: truncate only the context, overflow into more windows sharing `stride` tokens.

    The question comes first and padding goes right, so the context is always sequence 1 and [CLS] token 0.
    Windows are not padded to max_length (the collator pads each batch to its longest window), which keeps
    short SQuAD paragraphs cheap.
    """
    tokenizer.padding_side = "right"
    return tokenizer(
        questions,
        contexts,
        truncation="only_second",
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=padding,
    )


def label_windows(enc: Any, answers: list[dict[str, list[Any]]], cls_index: int = 0) -> tuple[list[int], list[int]]:
    """Start/end token positions per window: the answer's span when the window holds all of it, else [CLS]."""
    starts, ends = [], []
    for i, offsets in enumerate(enc["offset_mapping"]):
        sample = enc["overflow_to_sample_mapping"][i]
        answer = answers[sample]
        sequence_ids = enc.sequence_ids(i)
        if not answer["text"]:
            starts.append(cls_index)
            ends.append(cls_index)
            continue
        start_char = answer["answer_start"][0]
        end_char = start_char + len(answer["text"][0])
        first = sequence_ids.index(1)
        last = len(sequence_ids) - 1 - sequence_ids[::-1].index(1)
        if offsets[first][0] > start_char or offsets[last][1] < end_char:
            starts.append(cls_index)
            ends.append(cls_index)
            continue
        s = first
        while s <= last and offsets[s][0] <= start_char:
            s += 1
        e = last
        while e >= first and offsets[e][1] >= end_char:
            e -= 1
        starts.append(s - 1)
        ends.append(e + 1)
    return starts, ends


def context_offsets(enc: Any) -> list[list[tuple[int, int] | None]]:
    """Per window, each token's character span in the context, or None outside the context."""
    out = []
    for i, offsets in enumerate(enc["offset_mapping"]):
        sequence_ids = enc.sequence_ids(i)
        out.append([tuple(o) if sequence_ids[k] == 1 else None for k, o in enumerate(offsets)])
    return out


def best_answers(
    contexts: list[str],
    window_sample: list[int],
    window_offsets: list[list[tuple[int, int] | None]],
    start_logits: Any,
    end_logits: Any,
    n_best: int = 20,
    max_answer_length: int = 30,
    allow_null: bool = False,
    null_threshold: float = 0.0,
) -> list[dict[str, Any]]:
    """The best answer per example over all of its windows: {text, start, end, score, null_score, probability}.

    score is start + end logit; probability is the softmax of the chosen candidate among the n-best spans and
    the null answer, a rough confidence in [0, 1].
    """
    import numpy as np

    per_sample: dict[int, list[int]] = {}
    for w, sample in enumerate(window_sample):
        per_sample.setdefault(sample, []).append(w)
    results = []
    for sample, context in enumerate(contexts):
        candidates: list[tuple[float, int, int]] = []
        null_score = math.inf
        for w in per_sample.get(sample, []):
            s_log, e_log, offsets = np.asarray(start_logits[w]), np.asarray(end_logits[w]), window_offsets[w]
            null_score = min(null_score, float(s_log[0] + e_log[0]))
            n = min(len(offsets), len(s_log))
            top_s = np.argsort(s_log[:n])[::-1][:n_best]
            top_e = np.argsort(e_log[:n])[::-1][:n_best]
            for s in top_s:
                if offsets[s] is None:
                    continue
                for e in top_e:
                    if offsets[e] is None or e < s or e - s + 1 > max_answer_length:
                        continue
                    candidates.append((float(s_log[s] + e_log[e]), offsets[s][0], offsets[e][1]))
        candidates.sort(key=lambda c: -c[0])
        if null_score == math.inf:
            null_score = -math.inf
        pool = [c[0] for c in candidates[:n_best]] + ([null_score] if allow_null and null_score > -math.inf else [])
        top = max(pool) if pool else 0.0
        denom = sum(math.exp(x - top) for x in pool) or 1.0
        if candidates and not (allow_null and null_score - candidates[0][0] > null_threshold):
            score, start, end = candidates[0]
            results.append(
                {
                    "text": context[start:end],
                    "start": start,
                    "end": end,
                    "score": score,
                    "null_score": null_score,
                    "probability": math.exp(score - top) / denom,
                }
            )
        else:
            results.append(
                {
                    "text": "",
                    "start": None,
                    "end": None,
                    "score": null_score,
                    "null_score": null_score,
                    "probability": math.exp(null_score - top) / denom if allow_null and pool else 0.0,
                }
            )
    return results


def compute_metrics_fn(eval_rows: list[Numbered], enc: Any, opts: Any, allow_null: bool, keep: dict[str, Any]) -> Any:
    from ftbench.train.encoders import scalar_metrics
    from ftbench.train.metrics import squad_metrics

    contexts = [r.row["context"] for r in eval_rows]
    offsets = context_offsets(enc)
    samples = list(enc["overflow_to_sample_mapping"])

    def compute(pred: Any) -> dict[str, float]:
        start_logits, end_logits = pred.predictions[:2]
        answers = best_answers(
            contexts,
            samples,
            offsets,
            start_logits,
            end_logits,
            opts.n_best,
            opts.max_answer_length,
            allow_null,
            opts.null_score_diff_threshold,
        )
        predictions = {row_id(r): a["text"] for r, a in zip(eval_rows, answers, strict=True)}
        references = {row_id(r): list(r.row["answers"]["text"]) for r in eval_rows}
        full = squad_metrics(predictions, references)
        keep["last"] = full
        keep["predictions"] = predictions
        return scalar_metrics(full)

    return compute


# ---------------------------------------------------------------------------------------------------------
# training


def preflight(recipe: Recipe, session: Session) -> None:
    """Method, model kind (an encoder) and every answer against its context, before the model loads."""
    from ftbench.train import encoders

    train_rows, eval_rows = encoders.load_task_rows(recipe, "squad")  # the data first: no transformers needed
    counts = check_rows(train_rows)
    eval_counts = check_rows(eval_rows) if eval_rows else (0, 0)
    config = encoders.load_config(recipe.model.path, recipe.model.trust_remote_code)
    encoders.require_encoder(config, "qa", recipe.model.path)
    session.state.update(
        config=config, train_rows=train_rows, eval_rows=eval_rows, counts=counts, eval_counts=eval_counts
    )


def train(recipe: Recipe, ctx: JobContext, session: Session) -> dict[str, Any]:
    """Fine-tune the recipe's encoder for extractive QA; returns the final metrics (also in metrics.json)."""
    from ftbench.core.atomic import atomic_write_json
    from ftbench.train import encoders

    if "counts" not in session.state:
        preflight(recipe, session)
    st = session.state
    config, train_rows, eval_rows = st["config"], st["train_rows"], st["eval_rows"]
    unanswerable = st["counts"][1]
    allow_null = unanswerable > 0 or st["eval_counts"][1] > 0
    opts = recipe.qa
    tokenizer = encoders.load_tokenizer(recipe.model.path, recipe.model.trust_remote_code, need_fast=True)
    max_length = encoders.effective_max_length(recipe, config, tokenizer)
    stride = stride_for(max_length, opts.doc_stride)
    ctx.log(
        f"QA: {len(train_rows)} train questions ({unanswerable} unanswerable) / {len(eval_rows)} eval, "
        f"windows of {max_length} tokens sharing {stride}."
    )
    session.info.update(data_format="squad", train_rows=len(train_rows), eval_rows=len(eval_rows))

    import datasets
    from transformers import AutoModelForQuestionAnswering, DataCollatorWithPadding

    def windows(rows: list[Numbered]) -> tuple[Any, Any]:
        enc = tokenize_windows(
            tokenizer, [r.row["question"].lstrip() for r in rows], [r.row["context"] for r in rows], max_length, stride
        )
        starts, ends = label_windows(enc, [r.row["answers"] for r in rows])
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
        ds = datasets.Dataset.from_dict({**{k: enc[k] for k in keys}, "start_positions": starts, "end_positions": ends})
        return enc, ds

    _, train_ds = windows(train_rows)
    eval_enc, eval_ds = windows(eval_rows) if eval_rows else (None, None)
    ctx.log(f"{len(train_ds)} training windows from {len(train_rows)} questions.")

    model = encoders.load_head_model(recipe, ctx, session, AutoModelForQuestionAnswering)
    info = {
        "task": "qa",
        "max_length": max_length,
        "doc_stride": stride,
        "n_best": opts.n_best,
        "max_answer_length": opts.max_answer_length,
        "allow_unanswerable": allow_null,
        "null_score_diff_threshold": opts.null_score_diff_threshold,
        "base_model": recipe.model.path,
        "trust_remote_code": recipe.model.trust_remote_code,
    }
    keep: dict[str, Any] = {}
    compute = compute_metrics_fn(eval_rows, eval_enc, opts, allow_null, keep) if eval_rows else None
    result = encoders.fit(
        recipe,
        ctx,
        session,
        model=model,
        tokenizer=tokenizer,
        train_ds=train_ds,
        eval_ds=eval_ds,
        collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute,
        keep=keep,
        info=info,
        report={
            "train_rows": len(train_rows),
            "eval_rows": len(eval_rows),
            "unanswerable_train_rows": unanswerable,
            "train_windows": len(train_ds),
        },
    )
    if "predictions" in keep and not ctx.stop_requested:
        atomic_write_json(session.run_dir / "eval_predictions.json", keep["predictions"])
    return result
