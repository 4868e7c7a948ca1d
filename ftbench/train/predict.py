"""Predictions from a finished classification, NER or QA run: labels with probabilities, entity spans with
types, answer spans with scores.

A run's weights folder (`model/` for full fine-tuning, `adapter/` for LoRA / prompt tuning) carries
ftbench_task.json, written at the end of training by train/encoders.py (`fit`), beside this module: the
task, the label names, lengths and the base model an adapter goes on. That file is all this module needs, so a run folder copied to another machine still
predicts. Inputs are plain strings (QA: "question ||| context") or JSONL-style dicts
(text / tokens / question+context). torch and transformers are imported only when a run is loaded.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftbench.core import artifacts
from ftbench.core.errors import FtbenchError
from ftbench.core.layout import JobLayout
from ftbench.core.specs import TASK_SPECS

TASK_FILE = JobLayout.TASK_FILE

# The tasks `ftbench predict` serves: those whose TaskSpec says what a prediction is.
PREDICT_TASKS = tuple(name for name, spec in TASK_SPECS.items() if spec.predicts)
QA_SEPARATOR = "|||"
_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


@dataclass
class Predictor:
    """A loaded run: the model in eval mode, its tokenizer and the task facts from training."""

    task: str
    info: dict[str, Any]
    model: Any
    tokenizer: Any
    weights: Path


def weights_folder(run_dir: Path) -> Path:
    """The run's `model/` or `adapter/` folder with ftbench_task.json, or a FtbenchError saying why not."""
    layout = JobLayout(run_dir)
    for folder in (layout.model, layout.adapter):
        if (folder / TASK_FILE).is_file():
            return folder
    if (run_dir / TASK_FILE).is_file():  # a weights folder given directly
        return run_dir
    if run_dir.parent.name == JobLayout.CHECKPOINTS:
        ref = f"{run_dir.parent.parent.name}@{run_dir.name}"
        raise FtbenchError(
            f"{run_dir} is a checkpoint; predict needs a finished run's weights ({TASK_FILE} is written at the end).",
            f"Predict with the run once it has finished; `ftbench export {ref}` works now.",
        )
    task = recipe_task(run_dir)
    if task in TASK_SPECS and task not in PREDICT_TASKS:
        raise FtbenchError(
            f"Run {run_dir.name} is a {task} run; `ftbench predict` serves {', '.join(PREDICT_TASKS)} runs.",
            f"Talk to it with `ftbench chat {run_dir.name}`.",
        )
    raise FtbenchError(
        f"Run {run_dir.name} has no trained weights with {TASK_FILE} (model/ or adapter/) yet.",
        "Wait until the run has succeeded (`ftbench show RUN`), or pick another run with `ftbench runs`.",
    )


def recipe_task(run_dir: Path) -> str | None:
    """The task a run's frozen recipe.yaml names (None when it has none): what a run is before its weights exist."""
    recipe = JobLayout(run_dir).recipe
    if not recipe.is_file():
        return None
    import yaml

    try:
        data = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return None
    return data.get("task") if isinstance(data, dict) else None


def load_predictor(run_dir: str | Path, device: str | None = None, trust_remote_code: bool = False) -> Predictor:
    """Load a run's weights for inference (an adapter is applied to its base model).

    `trust_remote_code` comes from the live command line only: the run folder's task file records what the run
    was trained with, but a copied or shared run folder must not be able to switch on its own Python."""
    folder = weights_folder(Path(run_dir))
    info = json.loads((folder / TASK_FILE).read_text(encoding="utf-8"))
    task = info.get("task")
    if task not in PREDICT_TASKS:
        raise FtbenchError(
            f"{folder / TASK_FILE} names task {task!r}, which predict does not know.",
            "Retrain the run with this ftbench version.",
        )
    import torch
    import transformers
    from transformers import AutoTokenizer

    _quiet_transformers()
    auto = getattr(transformers, TASK_SPECS[task].heads[0])
    remote = trust_remote_code
    tokenizer = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=remote)
    if artifacts.classify(folder) == "adapter":
        base = info.get("base_model")
        if not base or not (Path(base).exists() or base.count("/") == 1):
            raise FtbenchError(
                f"The base model of this adapter ({base}) is not available.",
                f"Put the base model back at {base}, or retrain with method: full to get standalone weights.",
            )
        from peft import PeftModel

        kwargs: dict[str, Any] = {}
        if task != "qa":
            labels = info["labels"]
            kwargs = {
                "num_labels": len(labels),
                "id2label": dict(enumerate(labels)),
                "label2id": {n: i for i, n in enumerate(labels)},
            }
            if task == "classification":
                kwargs["problem_type"] = (
                    "multi_label_classification" if info.get("multi_label") else "single_label_classification"
                )
        base_model = auto.from_pretrained(base, trust_remote_code=remote, **kwargs)
        if base_model.config.pad_token_id is None:
            base_model.config.pad_token_id = tokenizer.pad_token_id
        model = PeftModel.from_pretrained(base_model, str(folder))
    else:
        model = auto.from_pretrained(str(folder), trust_remote_code=remote)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    return Predictor(task=task, info=info, model=model, tokenizer=tokenizer, weights=folder)


def _quiet_transformers() -> None:
    """No load reports or progress bars: an adapter's base model always reports its fresh head as missing,
    which is expected here and would only bury the predictions."""
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")


def predict(predictor: Predictor, inputs: list[str | dict[str, Any]], batch_size: int = 16) -> list[dict[str, Any]]:
    """One result per input, in order; see the task functions for the shape of each."""
    fn = {"classification": classify, "ner": tag_entities, "qa": answer}[predictor.task]
    out: list[dict[str, Any]] = []
    for i in range(0, len(inputs), batch_size):
        out.extend(fn(predictor, inputs[i : i + batch_size]))
    return out


def _device(predictor: Predictor) -> Any:
    return next(predictor.model.parameters()).device


def _text_of(item: str | dict[str, Any], index: int) -> str:
    if isinstance(item, str):
        return item
    for key in ("text", "sentence", "content"):
        if isinstance(item.get(key), str):
            return item[key]
    if isinstance(item.get("tokens"), list):
        return " ".join(map(str, item["tokens"]))
    raise FtbenchError(
        f"Input {index + 1} has no 'text' field ({', '.join(map(str, item)) or 'no fields'}).",
        'Give each JSONL row a "text" string.',
    )


# ---------------------------------------------------------------------------------------------------------
# classification


def classify(predictor: Predictor, inputs: list[str | dict[str, Any]]) -> list[dict[str, Any]]:
    """{text, label, labels: [{label, score}] best first}; multi-label: `label` is the list at >= threshold."""
    import torch

    texts = [_text_of(x, i) for i, x in enumerate(inputs)]
    enc = predictor.tokenizer(
        texts, truncation=True, max_length=predictor.info.get("max_length", 512), padding=True, return_tensors="pt"
    ).to(_device(predictor))
    with torch.no_grad():
        logits = predictor.model(**enc).logits.float()
    labels = predictor.info["labels"]
    multi = bool(predictor.info.get("multi_label"))
    probs = torch.sigmoid(logits) if multi else torch.softmax(logits, dim=-1)
    results = []
    for text, row in zip(texts, probs.tolist(), strict=True):
        ranked = sorted(({"label": labels[i], "score": p} for i, p in enumerate(row)), key=lambda d: -d["score"])
        if multi:
            chosen: Any = [d["label"] for d in ranked if d["score"] >= predictor.info.get("threshold", 0.5)]
        else:
            chosen = ranked[0]["label"]
        results.append({"text": text, "label": chosen, "labels": ranked})
    return results


# ---------------------------------------------------------------------------------------------------------
# NER


def split_words(text: str) -> list[tuple[str, int, int]]:
    """Words and punctuation with their character spans, CoNLL-style (punctuation is its own token)."""
    return [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


def tag_entities(predictor: Predictor, inputs: list[str | dict[str, Any]]) -> list[dict[str, Any]]:
    """{text, tokens, tags, entities: [{type, text, start, end, score}]}; start/end are character offsets
    into `text` (for pre-tokenised input, `text` is the tokens joined by spaces)."""
    import torch

    from ftbench.train.metrics import get_entities

    words_per_input: list[list[tuple[str, int, int]]] = []
    texts: list[str] = []
    for i, item in enumerate(inputs):
        if isinstance(item, dict) and isinstance(item.get("tokens"), list):
            tokens = [str(t) for t in item["tokens"]]
            spans, pos = [], 0
            for t in tokens:
                spans.append((t, pos, pos + len(t)))
                pos += len(t) + 1
            texts.append(" ".join(tokens))
            words_per_input.append(spans)
        else:
            text = _text_of(item, i)
            texts.append(text)
            words_per_input.append(split_words(text))
    labels = predictor.info["labels"]
    results = []
    for text, words in zip(texts, words_per_input, strict=True):
        if not words:
            results.append({"text": text, "tokens": [], "tags": [], "entities": []})
            continue
        enc = predictor.tokenizer(
            [w for w, _, _ in words],
            is_split_into_words=True,
            truncation=True,
            max_length=predictor.info.get("max_length", 512),
            return_tensors="pt",
        )
        word_ids = enc.word_ids(0)
        with torch.no_grad():
            probs = torch.softmax(predictor.model(**enc.to(_device(predictor))).logits.float()[0], dim=-1)
        tags = ["O"] * len(words)
        confidence = [0.0] * len(words)
        seen: set[int] = set()
        for pos, word in enumerate(word_ids):
            if word is None or word in seen:
                continue
            seen.add(word)
            p, idx = probs[pos].max(dim=-1)
            tags[word], confidence[word] = labels[int(idx)], float(p)
        entities = []
        for type_, first, last in get_entities(tags):
            start, end = words[first][1], words[last][2]
            entities.append(
                {
                    "type": type_,
                    "text": text[start:end],
                    "start": start,
                    "end": end,
                    "score": sum(confidence[first : last + 1]) / (last - first + 1),
                }
            )
        results.append({"text": text, "tokens": [w for w, _, _ in words], "tags": tags, "entities": entities})
    return results


# ---------------------------------------------------------------------------------------------------------
# QA


def parse_qa(item: str | dict[str, Any], index: int) -> tuple[str, str]:
    if isinstance(item, dict):
        q, c = item.get("question"), item.get("context")
        if isinstance(q, str) and isinstance(c, str):
            return q, c
        raise FtbenchError(
            f"Input {index + 1} needs 'question' and 'context' strings.",
            'Give each JSONL row {"question": ..., "context": ...}.',
        )
    question, sep, context = item.partition(QA_SEPARATOR)
    if not sep or not question.strip() or not context.strip():
        raise FtbenchError(
            f"Input {index + 1} is not of the form 'question {QA_SEPARATOR} context': {item[:60]!r}.",
            f'Example: ftbench predict RUN "Where does Alice live? {QA_SEPARATOR} Alice lives in Paris."',
        )
    return question.strip(), context.strip()


def answer(predictor: Predictor, inputs: list[str | dict[str, Any]]) -> list[dict[str, Any]]:
    """{question, context, answer, start, end, score, probability}; answer "" when the model abstains."""
    import numpy as np
    import torch

    from ftbench.train.tasks.qa import best_answers, context_offsets, tokenize_windows

    pairs = [parse_qa(x, i) for i, x in enumerate(inputs)]
    info = predictor.info
    enc = tokenize_windows(
        predictor.tokenizer,
        [q for q, _ in pairs],
        [c for _, c in pairs],
        info["max_length"],
        info.get("doc_stride", 0),
        padding=True,
    )
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
    batch = {k: torch.tensor(enc[k], device=_device(predictor)) for k in keys}
    with torch.no_grad():
        out = predictor.model(**batch)
    best = best_answers(
        [c for _, c in pairs],
        list(enc["overflow_to_sample_mapping"]),
        context_offsets(enc),
        np.asarray(out.start_logits.float().cpu()),
        np.asarray(out.end_logits.float().cpu()),
        info.get("n_best", 20),
        info.get("max_answer_length", 30),
        bool(info.get("allow_unanswerable")),
        info.get("null_score_diff_threshold", 0.0),
    )
    return [
        {
            "question": q,
            "context": c,
            "answer": b["text"],
            "start": b["start"],
            "end": b["end"],
            "score": b["score"],
            "probability": b["probability"],
        }
        for (q, c), b in zip(pairs, best, strict=True)
    ]


# ---------------------------------------------------------------------------------------------------------
# human-readable output


def format_result(task: str, result: dict[str, Any]) -> str:
    """One or a few lines per result for the terminal."""
    if task == "classification":
        top = "  ".join(f"{d['label']} {d['score']:.3f}" for d in result["labels"][:5])
        chosen = result["label"] if isinstance(result["label"], str) else "[" + ", ".join(result["label"]) + "]"
        return f"{chosen}\t({top})\t{_short(result['text'])}"
    if task == "ner":
        if not result["entities"]:
            return f"(no entities)\t{_short(result['text'])}"
        spans = "  ".join(
            f"{e['type']}: {e['text']!r} [{e['start']}:{e['end']}] {e['score']:.2f}" for e in result["entities"]
        )
        return f"{spans}\t{_short(result['text'])}"
    if result["answer"]:
        return f"{result['answer']!r} [{result['start']}:{result['end']}] p={result['probability']:.3f} score={result['score']:.2f}\t{_short(result['question'])}"
    return f"(no answer) p={result['probability']:.3f}\t{_short(result['question'])}"


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def finite(value: Any) -> Any:
    """JSON-safe numbers: NaN/inf become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value
