"""Sequence classification: single-label (softmax + cross-entropy) or multi-label (sigmoid + BCE).

Labels are discovered from the training rows in a stable order (sorted names, or numeric order for integer
labels) unless the recipe lists them (`classification.labels`), and the names travel in the model config
(id2label / label2id) so a saved run predicts names, not ids. A row whose label column holds a list makes the
task multi-label (`problem_type="multi_label_classification"`, which makes transformers use BCE). Every label
problem (missing, mixed kinds, an eval label never seen in training) fails before the model is loaded.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from ftbench.core.errors import FtbenchError
from ftbench.train.encoders import Numbered

if TYPE_CHECKING:
    from ftbench.core.job_context import JobContext
    from ftbench.core.recipe import Recipe
    from ftbench.train.session import Session

# Column names used for the label / text when the recipe maps none (multi-label sets often say `labels`).
LABEL_ALIASES = ("labels", "target", "category", "class")
TEXT_ALIASES = ("sentence", "content", "review", "document")

# ---------------------------------------------------------------------------------------------------------
# labels (pure python, tested without torch)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (list, tuple)):
        return "list"
    return type(value).__name__


def check_labels(rows: list[Numbered], key: str = "label") -> tuple[str, bool]:
    """The label kind (`str` or `int`) and whether the rows are multi-label; raises on a missing or inconsistent label.

    Inconsistent means: some rows hold lists and others single values, or names mixed with integers.
    """
    first: tuple[str, Numbered] | None = None
    for item in rows:
        value = item.row.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise FtbenchError(
                f"{item.source}: row {item.number} has no '{key}'.",
                "Give every row a label (a name, an integer, or a list of names for multi-label), or remove the row.",
            )
        kind = _kind(value)
        if kind == "list":
            inner = {_kind(v) for v in value}
            if len(inner) > 1 or inner - {"str", "int"}:
                raise FtbenchError(
                    f"{item.source}: row {item.number} has a label list mixing {', '.join(sorted(inner))} values ({value!r}).",
                    "A multi-label row lists label names (or integer ids) only.",
                )
            kind = "list:" + (inner.pop() if inner else "")
        elif kind not in ("str", "int"):
            raise FtbenchError(
                f"{item.source}: row {item.number} has label {value!r} of type {kind}.",
                "Labels must be names (strings), integer ids, or lists of them for multi-label.",
            )
        if first is None:
            first = (kind, item)
            continue
        a, b = first[0], kind
        if a.startswith("list") != b.startswith("list"):
            raise FtbenchError(
                f"{item.source}: row {item.number} has label {value!r} but row {first[1].number} has {first[1].row.get(key)!r}: labels must be all lists (multi-label) or all single values.",
                "Make every row's label the same kind.",
            )
        sa, sb = a.removeprefix("list:"), b.removeprefix("list:")
        if sa and sb and sa != sb:
            raise FtbenchError(
                f"{item.source}: row {item.number} has a {sb} label ({value!r}) but row {first[1].number} has a {sa} label ({first[1].row.get(key)!r}).",
                "Use label names everywhere or integer ids everywhere (with classification.labels naming the ids).",
            )
        if a == "list:" and b.startswith("list:") and b != "list:":
            first = (b, item)
    assert first is not None
    kind = first[0]
    return (kind.removeprefix("list:") or "str"), kind.startswith("list")


def discover_labels(rows: list[Numbered], given: list[str] | None = None, key: str = "label") -> tuple[list[str], bool]:
    """Label names in id order and the multi-label flag.

    Stable order: the recipe's list as given, else integer labels in numeric order (names "0", "1", ...), else
    names sorted; the same data in any row order yields the same ids.
    """
    kind, multi = check_labels(rows, key)
    values: set[Any] = set()
    for item in rows:
        value = item.row[key]
        values.update(value if multi else [value])
    if given:
        if len(set(given)) != len(given):
            raise FtbenchError(
                f"classification.labels lists a name twice: {given}.", "List each label once, in id order."
            )
        for item in rows:
            for value in item.row[key] if multi else [item.row[key]]:
                _label_id(value, given, item, key)
        return list(given), multi
    if kind == "int":
        ints = sorted(values)
        if ints and (ints[0] < 0):
            raise FtbenchError(f"Label ids must be >= 0; found {ints[0]}.", "Use ids 0..N-1 or label names.")
        return [str(i) for i in range(ints[-1] + 1)] if ints else [], multi
    return sorted(str(v) for v in values), multi


def _label_id(value: Any, labels: list[str], item: Numbered, key: str = "label") -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value < len(labels):
            return value
        raise FtbenchError(
            f"{item.source}: row {item.number} has label id {value}, outside 0..{len(labels) - 1} ({len(labels)} labels: {', '.join(labels)}).",
            "Fix the row or list every label name in classification.labels.",
        )
    if value in labels:
        return labels.index(value)
    raise FtbenchError(
        f"{item.source}: row {item.number} has label {value!r}, which is not one of the {len(labels)} known labels ({', '.join(labels)}).",
        "An eval label must also occur in the training data; or list every label in classification.labels.",
    )


def encode_labels(rows: list[Numbered], labels: list[str], multi: bool, key: str = "label") -> list[Any]:
    """Class ids (single-label) or 0/1 float vectors (multi-label, for BCE)."""
    out: list[Any] = []
    for item in rows:
        value = item.row[key]
        if multi:
            vec = [0.0] * len(labels)
            for v in value:
                vec[_label_id(v, labels, item, key)] = 1.0
            out.append(vec)
        else:
            out.append(_label_id(value, labels, item, key))
    return out


def imbalance_summary(encoded: list[Any], labels: list[str], multi: bool) -> dict[str, Any]:
    """Rows per label, the most and least frequent label and their ratio (shown before training).

    A ratio above 3 is called out, because accuracy then flatters a model that predicts the majority class;
    macro F1 is the number to watch.
    """
    counts: Counter[str] = Counter()
    for value in encoded:
        if multi:
            counts.update(labels[i] for i, v in enumerate(value) if v)
        else:
            counts[labels[value]] += 1
    full = {name: counts.get(name, 0) for name in labels}
    if not full:
        return {"counts": {}, "imbalance_ratio": None}
    majority = max(full, key=lambda n: full[n])
    minority = min(full, key=lambda n: full[n])
    ratio = full[majority] / full[minority] if full[minority] else float("inf")
    total = sum(full.values()) or 1
    return {
        "counts": full,
        "majority": majority,
        "minority": minority,
        "majority_share": full[majority] / total,
        "imbalance_ratio": ratio,
        "imbalanced": ratio > 3.0,
    }


def describe_summary(summary: dict[str, Any]) -> str:
    parts = ", ".join(f"{k} {v}" for k, v in summary["counts"].items())
    text = f"Label counts: {parts}."
    if summary.get("imbalanced"):
        ratio = summary["imbalance_ratio"]
        shown = "inf" if ratio == float("inf") else f"{ratio:.1f}"
        text += f" Imbalanced: {summary['majority']} is {shown}x {summary['minority']}; watch f1_macro, not accuracy."
    return text


# ---------------------------------------------------------------------------------------------------------
# metrics


def compute_metrics_fn(labels: list[str], multi: bool, threshold: float, keep: dict[str, Any]) -> Any:
    """compute_metrics for the Trainer; the full (nested) result is kept in `keep["last"]` for metrics.json."""
    import numpy as np

    from ftbench.train.encoders import scalar_metrics
    from ftbench.train.metrics import classification_metrics, multilabel_metrics

    def compute(pred: Any) -> dict[str, float]:
        logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
        gold = pred.label_ids
        if multi:
            probs = 1.0 / (1.0 + np.exp(-logits))
            full = multilabel_metrics(gold.astype(int), (probs >= threshold).astype(int), labels)
        else:
            full = classification_metrics(gold, logits.argmax(-1), labels)
        keep["last"] = full
        return scalar_metrics(full)

    return compute


# ---------------------------------------------------------------------------------------------------------
# training


def preflight(recipe: Recipe, session: Session) -> None:
    """Everything checkable before the model loads: method, model kind, every row's label."""
    from ftbench.train import encoders

    config = encoders.load_config(recipe.model.path, recipe.model.trust_remote_code)
    encoders.require_encoder(config, "classification", recipe.model.path)
    train_rows, eval_rows = encoders.load_task_rows(
        recipe, "classification", {"label": LABEL_ALIASES, "text": TEXT_ALIASES}
    )
    opts = recipe.classification
    labels, multi = discover_labels(train_rows, opts.labels)
    if opts.multi_label is not None and opts.multi_label != multi:
        raise FtbenchError(
            f"classification.multi_label is {opts.multi_label} but the labels in {recipe.data.train} are {'lists' if multi else 'single values'}.",
            "Remove classification.multi_label (it is detected) or change the data.",
        )
    if len(labels) < 2 and not multi:
        raise FtbenchError(
            f"{recipe.data.train} has only one label ({labels[0] if labels else 'none'}); classification needs at least two.",
            "Add rows of other classes, or list every label in classification.labels.",
        )
    if eval_rows:
        check_labels(train_rows[:1] + eval_rows)
    train_y = encode_labels(train_rows, labels, multi)
    eval_y = encode_labels(eval_rows, labels, multi)
    session.state.update(
        config=config,
        train_rows=train_rows,
        eval_rows=eval_rows,
        labels=labels,
        multi=multi,
        train_y=train_y,
        eval_y=eval_y,
    )


def train(recipe: Recipe, ctx: JobContext, session: Session) -> dict[str, Any]:
    """Fine-tune the recipe's model for classification; returns the final metrics (also in metrics.json)."""
    from ftbench.train import encoders

    if "labels" not in session.state:
        preflight(recipe, session)
    st = session.state
    config, train_rows, eval_rows, labels, multi = (
        st["config"],
        st["train_rows"],
        st["eval_rows"],
        st["labels"],
        st["multi"],
    )
    summary = imbalance_summary(st["train_y"], labels, multi)
    ctx.log(
        f"{'Multi-label' if multi else 'Single-label'} classification, {len(labels)} labels, {len(train_rows)} train / {len(eval_rows)} eval rows. {describe_summary(summary)}"
    )
    ctx.emit("log", level="info", message="data summary", data_summary=summary)
    session.info.update(
        data_format="classification",
        train_rows=len(train_rows),
        eval_rows=len(eval_rows),
        labels=labels,
        multi_label=multi,
    )

    tokenizer = encoders.load_tokenizer(recipe.model.path, recipe.model.trust_remote_code)
    max_length = encoders.effective_max_length(recipe, config, tokenizer)

    import datasets
    from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding

    def tokenized(rows: list[Numbered], ys: list[Any]) -> Any:
        texts = [r.row["text"] for r in rows]
        pairs = [r.row.get("text_pair") for r in rows]
        enc = tokenizer(
            texts, pairs if all(isinstance(p, str) for p in pairs) else None, truncation=True, max_length=max_length
        )
        return datasets.Dataset.from_dict({**enc, "labels": ys})

    train_ds = tokenized(train_rows, st["train_y"])
    eval_ds = tokenized(eval_rows, st["eval_y"]) if eval_rows else None

    model = encoders.load_head_model(
        recipe,
        ctx,
        session,
        AutoModelForSequenceClassification,
        labels,
        pad_token_id=tokenizer.pad_token_id,
        problem_type="multi_label_classification" if multi else "single_label_classification",
    )
    opts = recipe.classification
    info = {
        "task": "classification",
        "labels": labels,
        "multi_label": multi,
        "threshold": opts.threshold,
        "max_length": max_length,
        "base_model": recipe.model.path,
        "trust_remote_code": recipe.model.trust_remote_code,
    }
    keep: dict[str, Any] = {}
    return encoders.fit(
        recipe,
        ctx,
        session,
        model=model,
        tokenizer=tokenizer,
        train_ds=train_ds,
        eval_ds=eval_ds,
        collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics_fn(labels, multi, opts.threshold, keep),
        keep=keep,
        info=info,
        report={"data_summary": summary, "train_rows": len(train_rows), "eval_rows": len(eval_rows)},
    )
