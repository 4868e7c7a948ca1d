"""Named-entity recognition as token classification (CoNLL style: `tokens` + `ner_tags` per row).

Tags may be strings (`B-PER`) or integer ids named by `ner.labels`. Sub-word tokenizers split words, so each
word's label goes on its first sub-token and the rest get -100 (ignored by the loss and the metrics), unless
`ner.label_all_tokens` is set. Metrics are entity-level (seqeval semantics) on word-level tags, so they do
not depend on the tokenizer. A causal-LM-only model is refused before anything is tokenised.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ftbench.core.errors import FtbenchError
from ftbench.train.encoders import Numbered

if TYPE_CHECKING:
    from ftbench.core.job_context import JobContext
    from ftbench.core.recipe import Recipe
    from ftbench.train.session import Session

IGNORE = -100
_PREFIX_ORDER = {"B": 0, "I": 1, "E": 2, "S": 3}

# ---------------------------------------------------------------------------------------------------------
# labels and alignment (pure python)


def _tag_sort_key(tag: str) -> tuple[int, str, int]:
    if tag == "O":
        return (0, "", 0)
    prefix, _, type_ = tag.partition("-")
    if not type_:
        return (1, tag, 9)
    return (1, type_, _PREFIX_ORDER.get(prefix, 9))


def discover_tags(rows: list[Numbered], given: list[str] | None = None) -> list[str]:
    """Tag names in id order: `ner.labels` when given; else string tags sorted as O, then B-/I- per type.

    Integer tags need names (they carry no entity types), so they require `ner.labels`. Mixed kinds and tags
    outside the given list fail with the row number.
    """
    kinds: dict[str, Numbered] = {}
    seen: set[str] = set()
    for item in rows:
        tokens, tags = item.row["tokens"], item.row["ner_tags"]
        if len(tokens) != len(tags):
            raise FtbenchError(
                f"{item.source}: row {item.number} has {len(tokens)} tokens but {len(tags)} ner_tags.",
                "Every token needs exactly one tag; fix or remove the row.",
            )
        for token in tokens:
            if not isinstance(token, str):
                raise FtbenchError(
                    f"{item.source}: row {item.number} has a token {token!r} that is not a string.",
                    "tokens must be a list of words (strings).",
                )
        for tag in tags:
            kind = (
                "int"
                if isinstance(tag, int) and not isinstance(tag, bool)
                else "str"
                if isinstance(tag, str)
                else type(tag).__name__
            )
            if kind not in ("int", "str"):
                raise FtbenchError(
                    f"{item.source}: row {item.number} has tag {tag!r}; tags must be names like B-PER or integer ids.",
                    "Fix the row.",
                )
            kinds.setdefault(kind, item)
            if kind == "str":
                seen.add(tag)
            elif given and not 0 <= tag < len(given):
                raise FtbenchError(
                    f"{item.source}: row {item.number} has tag id {tag}, outside 0..{len(given) - 1} of ner.labels.",
                    "List every tag name in ner.labels, in id order.",
                )
            elif tag < 0:
                raise FtbenchError(
                    f"{item.source}: row {item.number} has a negative tag id {tag}.", "Tag ids start at 0."
                )
    if len(kinds) > 1:
        a, b = kinds["int"], kinds["str"]
        raise FtbenchError(
            f"Tags are inconsistent: row {a.number} of {a.source} uses integer ids but row {b.number} of {b.source} uses names.",
            "Use tag names everywhere, or ids everywhere with ner.labels naming them.",
        )
    if given:
        if len(set(given)) != len(given):
            raise FtbenchError(f"ner.labels lists a tag twice: {given}.", "List each tag once, in id order.")
        unknown = sorted(seen - set(given))
        if unknown:
            item = next(r for r in rows if any(t in unknown for t in r.row["ner_tags"]))
            raise FtbenchError(
                f"{item.source}: row {item.number} has tag {unknown[0]!r}, which is not in ner.labels ({', '.join(given)}).",
                "Add the tag to ner.labels or fix the row.",
            )
        return list(given)
    if "int" in kinds:
        item = kinds["int"]
        raise FtbenchError(
            f"{item.source} has integer ner_tags (row {item.number}) but the recipe does not name them.",
            "Add ner.labels: [O, B-PER, I-PER, ...] in the order of the ids.",
        )
    for tag in seen:
        if tag != "O" and (len(tag) < 3 or tag[1] != "-" or tag[0] not in _PREFIX_ORDER):
            item = next(r for r in rows if tag in r.row["ner_tags"])
            raise FtbenchError(
                f"{item.source}: row {item.number} has tag {tag!r}, which is not O or a B-/I-/E-/S- prefixed type.",
                "Use BIO (IOB2) tags such as B-PER, I-PER, O.",
            )
    return sorted(seen | {"O"}, key=_tag_sort_key)


def tag_ids(tags: list[Any], labels: list[str]) -> list[int]:
    return [t if isinstance(t, int) else labels.index(t) for t in tags]


def align_labels(
    word_ids: list[int | None], word_labels: list[int], labels: list[str] | None = None, label_all_tokens: bool = False
) -> list[int]:
    """Token labels from word labels: the first sub-token of each word gets the word's label, special tokens
    and later sub-tokens get -100 (or, with label_all_tokens, the word's label with B- turned into I-)."""
    out: list[int] = []
    previous: int | None = None
    for word in word_ids:
        if word is None:
            out.append(IGNORE)
        elif word != previous:
            out.append(word_labels[word])
        elif label_all_tokens:
            label = word_labels[word]
            if labels is not None and labels[label].startswith("B-"):
                inside = "I-" + labels[label][2:]
                label = labels.index(inside) if inside in labels else label
            out.append(label)
        else:
            out.append(IGNORE)
        previous = word
    return out


def word_tags_from_tokens(pred_ids: list[int], gold_ids: list[int], labels: list[str]) -> tuple[list[str], list[str]]:
    """Predicted and gold tag names at the positions that carry a label (first sub-tokens)."""
    pred, gold = [], []
    for p, g in zip(pred_ids, gold_ids, strict=True):
        if g != IGNORE:
            pred.append(labels[p])
            gold.append(labels[g])
    return pred, gold


def compute_metrics_fn(labels: list[str], keep: dict[str, Any]) -> Any:
    from ftbench.train.encoders import scalar_metrics
    from ftbench.train.metrics import entity_metrics

    def compute(pred: Any) -> dict[str, float]:
        logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
        ids = logits.argmax(-1)
        golds, preds = [], []
        for p_row, g_row in zip(ids.tolist(), pred.label_ids.tolist(), strict=True):
            p, g = word_tags_from_tokens(p_row, g_row, labels)
            preds.append(p)
            golds.append(g)
        full = entity_metrics(golds, preds)
        keep["last"] = full
        return scalar_metrics(full)

    return compute


# ---------------------------------------------------------------------------------------------------------
# training


def preflight(recipe: Recipe, session: Session) -> None:
    """Method, model kind (an encoder), every row's tokens/tags and the tag set, before the model loads."""
    from ftbench.train import encoders

    config = encoders.load_config(recipe.model.path, recipe.model.trust_remote_code)
    encoders.require_encoder(config, "ner", recipe.model.path)
    train_rows, eval_rows = encoders.load_task_rows(recipe, "ner")
    labels = discover_tags(train_rows, recipe.ner.labels)
    if eval_rows:
        discover_tags(eval_rows, labels)
    session.state.update(config=config, train_rows=train_rows, eval_rows=eval_rows, labels=labels)


def train(recipe: Recipe, ctx: JobContext, session: Session) -> dict[str, Any]:
    """Fine-tune the recipe's encoder for NER; returns the final metrics (also in metrics.json)."""
    from ftbench.train import encoders

    if "labels" not in session.state:
        preflight(recipe, session)
    st = session.state
    config, train_rows, eval_rows, labels = st["config"], st["train_rows"], st["eval_rows"], st["labels"]
    opts = recipe.ner
    types = sorted({t[2:] for t in labels if t != "O"})
    ctx.log(f"NER with {len(labels)} tags ({', '.join(types)}), {len(train_rows)} train / {len(eval_rows)} eval rows.")
    session.info.update(data_format="ner", train_rows=len(train_rows), eval_rows=len(eval_rows), labels=labels)

    tokenizer = encoders.load_tokenizer(recipe.model.path, recipe.model.trust_remote_code, need_fast=True)
    max_length = encoders.effective_max_length(recipe, config, tokenizer)

    import datasets
    from transformers import AutoModelForTokenClassification, DataCollatorForTokenClassification

    truncated = 0

    def tokenized(rows: list[Numbered]) -> Any:
        nonlocal truncated
        enc = tokenizer(
            [r.row["tokens"] for r in rows], is_split_into_words=True, truncation=True, max_length=max_length
        )
        all_labels = []
        for i, item in enumerate(rows):
            word_ids = enc.word_ids(i)
            if len({w for w in word_ids if w is not None}) < len(item.row["tokens"]):
                truncated += 1
            all_labels.append(
                align_labels(word_ids, tag_ids(item.row["ner_tags"], labels), labels, opts.label_all_tokens)
            )
        return datasets.Dataset.from_dict({**enc, "labels": all_labels})

    train_ds = tokenized(train_rows)
    eval_ds = tokenized(eval_rows) if eval_rows else None
    if truncated:
        ctx.log(
            f"{truncated} row(s) are longer than {max_length} tokens; their last words are not trained or scored.",
            level="warning",
        )

    model = encoders.load_head_model(recipe, ctx, session, AutoModelForTokenClassification, labels)
    info = {
        "task": "ner",
        "labels": labels,
        "max_length": max_length,
        "label_all_tokens": opts.label_all_tokens,
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
        collator=DataCollatorForTokenClassification(tokenizer),
        compute_metrics=compute_metrics_fn(labels, keep),
        keep=keep,
        info=info,
        report={
            "train_rows": len(train_rows),
            "eval_rows": len(eval_rows),
            "truncated_rows": truncated,
            "entity_types": types,
        },
    )
