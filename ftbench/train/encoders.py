"""Shared plumbing for the encoder tasks (classification, ner, qa): which models qualify, how rows are read
with their row numbers, and how a run's model and task facts are saved for `predict` (where LoRA goes on an
encoder is train/methods.py).

Why one module: the three tasks differ in preprocessing and metrics only; model checks, PEFT wrapping, the
training loop (through the shared `Session`: events, stop/resume, checkpoints) and the saved layout must be
identical so `ftbench predict` can load any of them the same way. Runs only inside a job process (or a
test): torch/transformers are imported lazily.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, NamedTuple

from ftbench.core.errors import FtbenchError
from ftbench.train.methods import LORA_TARGETS

if TYPE_CHECKING:
    from ftbench.core.job_context import JobContext
    from ftbench.core.recipe import Recipe
    from ftbench.train.session import Session


# ---------------------------------------------------------------------------------------------------------
# model checks


def load_config(model_path: str, trust_remote_code: bool = False) -> Any:
    """The model's config, or a FtbenchError naming the folder when it is not a Hugging Face model."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(model_path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise FtbenchError(
            f"model.path {model_path} is not a Hugging Face model folder with a config.json ({str(exc).splitlines()[0]}).",
            "Point model.path at a folder from `ftbench models`, e.g. models/all-minilm-l6-v2.",
        ) from None


def is_encoder(model_type: str) -> bool:
    """An encoder has a masked-LM (bidirectional) form; decoder-only models (llama, gpt2...) do not."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    return model_type in LORA_TARGETS or model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def require_encoder(config: Any, task: str, model_path: str) -> None:
    """Reject a causal-LM-only model for NER or QA before any data is tokenised.

    transformers does offer LlamaForTokenClassification and friends, but a left-to-right model sees no right
    context for a token or an answer span and these heads start untrained, so the result is poor and surprising.
    Classification accepts both (a decoder's last-token head is a reasonable classifier).
    """
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES,
        MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES,
        MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES,
    )

    model_type = getattr(config, "model_type", "?")
    if task in ("ner", "qa") and not is_encoder(model_type):
        raise FtbenchError(
            f"model.path {model_path} is a {model_type} causal language model; task {task} needs an encoder model (BERT, DistilBERT, RoBERTa, DeBERTa-v2, ModernBERT).",
            "Use an encoder such as models/all-minilm-l6-v2, or train the causal model with task: sft instead.",
        )
    heads = {
        "classification": MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES,
        "ner": MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES,
        "qa": MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES,
    }[task]
    if model_type not in heads:
        raise FtbenchError(
            f"model.path {model_path} ({model_type}) has no {task} head in transformers.",
            "Pick a BERT-family encoder (bert, distilbert, roberta, deberta-v2, modernbert).",
        )


# ---------------------------------------------------------------------------------------------------------
# data


class Numbered(NamedTuple):
    """A row with where it came from, so every data error can name the file and the row."""

    source: str
    number: int  # 1-based row number, as the Datasets screen shows it (for JSON Lines, the line number)
    row: dict[str, Any]


def load_task_rows(
    recipe: Recipe, fmt: str, aliases: dict[str, tuple[str, ...]] | None = None
) -> tuple[list[Numbered], list[Numbered]]:
    """Train and eval rows in format `fmt` (columns mapped), each checked against the format with its row number.

    `aliases` names common alternative columns for a field (e.g. `labels` for `label`), used when the recipe
    maps nothing for that field and the first row lacks it.

    Eval rows: data.eval if given, else a seeded data.eval_split hold-out, else 10% when there are >= 10 rows.
    Why hold out by default: these tasks are judged by their metrics, and a run without eval reports none.
    """
    data = recipe.data  # validated: data.format is auto or the task's format (core/specs.py)
    columns = dict(data.columns)

    def checked(path: str) -> list[Numbered]:
        return read_task_file(path, fmt, columns, aliases, data.skip_bad_rows, data.max_rows)

    rows = checked(data.train)
    if data.eval:
        return rows, checked(data.eval)
    fraction = data.eval_split or (0.1 if len(rows) >= 10 else 0.0)
    if fraction <= 0:
        return rows, []
    order = list(range(len(rows)))
    random.Random(recipe.training.seed).shuffle(order)
    n_eval = max(1, int(round(len(rows) * fraction)))
    if n_eval >= len(rows):
        raise FtbenchError(
            f"data.eval_split {fraction} leaves no training rows out of {len(rows)}.",
            "Use a smaller eval_split or more data.",
        )
    held = set(order[:n_eval])
    return [r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held]


def read_task_file(
    path: str,
    fmt: str,
    columns: dict[str, str],
    aliases: dict[str, tuple[str, ...]] | None = None,
    skip_bad_rows: bool = False,
    max_rows: int | None = None,
    hint: str = "Fix the row, map columns with data.columns, or set data.skip_bad_rows: true.",
) -> list[Numbered]:
    """The rows of one file in format `fmt`, each checked with its row number (the line number for JSON Lines).

    `columns` gains the alias found for a field the first row lacks, so a run's eval file maps like its train
    file. Shared by training and by `ftbench eval` of encoder runs, which refuses the same rows the same way.
    """
    from ftbench.catalog.formats import row_problem
    from ftbench.train.io import read_rows

    loaded = read_rows(path, skip_bad_rows, max_rows, columns)
    if not loaded.rows:
        raise FtbenchError(f"Dataset {path} has no rows.", "Point the recipe at a file with at least one example.")
    for field, names in (aliases or {}).items():
        first = loaded.rows[0]
        if field not in columns and field not in first:
            found = next((n for n in names if n in first), None)
            if found:
                columns[field] = found
    out = []
    for i, row in zip(loaded.numbers, loaded.rows, strict=True):  # row numbers as the Datasets screen shows them
        problem = row_problem(fmt, row, columns)
        if problem is None:
            out.append(Numbered(str(path), i, mapped(row, columns)))
        elif not skip_bad_rows:
            raise FtbenchError(f"{path}: row {i}: {problem}.", hint)
    if not out:
        raise FtbenchError(f"{path}: no row fits the {fmt} format.", "Check data.format and data.columns.")
    return out


def mapped(row: dict[str, Any], columns: dict[str, str]) -> dict[str, Any]:
    from ftbench.catalog.formats import mapped as format_mapped

    return format_mapped(row, columns)


# ---------------------------------------------------------------------------------------------------------
# training


def scalar_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Flatten metrics to numbers for events: nested per-class dicts become `per_class/<name>/<key>`."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(scalar_metrics(value, f"{name}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
    return out


def final_evaluation(trainer: Any, keep: dict[str, Any]) -> dict[str, Any]:
    """eval_loss and the full task metrics at the end of training, without evaluating twice when the
    Trainer's last scheduled evaluation already ran at the final step."""
    step = trainer.state.global_step
    last = next((h for h in reversed(trainer.state.log_history) if "eval_loss" in h), None)
    if last is None or last.get("step") != step or "last" not in keep:
        last = trainer.evaluate()
    return {"eval_loss": last.get("eval_loss"), **keep.get("last", {})}


def load_head_model(
    recipe: Recipe,
    ctx: JobContext,
    session: Session,
    auto_class: Any,
    labels: list[str] | None = None,
    pad_token_id: int | None = None,
    **head_options: Any,
) -> Any:
    """The base model with the task's head (`auto_class`, e.g. AutoModelForTokenClassification), seeded and
    wrapped by the recipe's method, with "loading model" progress around it.

    Shared so the three tasks seed, name their labels and apply LoRA the same way (predict relies on it).
    `labels` become num_labels/id2label/label2id; `pad_token_id` fills a config that has none (a sequence
    classifier needs it to find each row's last token).
    """
    import torch

    from ftbench.train.methods import apply_method

    if labels is not None:
        head_options.update(
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={name: i for i, name in enumerate(labels)},
        )
    ctx.progress("loading model", 0, 1)
    torch.manual_seed(recipe.training.seed)
    model = auto_class.from_pretrained(
        recipe.model.path, trust_remote_code=recipe.model.trust_remote_code, **head_options
    )
    if pad_token_id is not None and model.config.pad_token_id is None:
        model.config.pad_token_id = pad_token_id
    model = apply_method(model, recipe, session.info)
    ctx.progress("loading model", 1, 1)
    return model


def fit(
    recipe: Recipe,
    ctx: JobContext,
    session: Session,
    *,
    model: Any,
    tokenizer: Any,
    train_ds: Any,
    eval_ds: Any,
    collator: Any,
    compute_metrics: Any,
    keep: dict[str, Any],
    info: dict[str, Any],
    report: dict[str, Any],
) -> dict[str, Any]:
    """Train through the shared Session (events, stop/resume, checkpoints), evaluate, and save the weights,
    metrics.json, the model card and ftbench_task.json (what `ftbench predict` needs).

    Returns the final metrics plus the output folder, which the worker stores as the job's result.
    """
    from transformers import Trainer

    args = session.training_args(
        has_eval=eval_ds is not None, per_device_eval_batch_size=max(recipe.training.batch_size, 8)
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        data_collator=collator,
        compute_metrics=compute_metrics if eval_ds is not None else None,
        callbacks=session.callbacks(),
    )
    result = session.run_trainer(trainer)
    metrics: dict[str, Any] = {"train_loss": result.training_loss, "steps": trainer.state.global_step}
    if session.stopped_early(trainer):
        return metrics
    if eval_ds is not None:
        ctx.progress("evaluating", 0, 1)
        metrics.update(final_evaluation(trainer, keep))
        ctx.progress("evaluating", 1, 1)
    metrics.update(report)
    outputs = session.save_outputs(trainer.model, tokenizer, metrics, task_info={**info, "method": recipe.method.name})
    headline = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))
    ctx.log(f"Final: {headline}")
    return {**metrics, **outputs}


def load_tokenizer(model_path: str, trust_remote_code: bool = False, need_fast: bool = False) -> Any:
    """The model's tokenizer; NER and QA need a fast one (word ids and character offsets)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust_remote_code)
    if need_fast and not getattr(tokenizer, "is_fast", False):
        raise FtbenchError(
            f"The tokenizer of {model_path} is a slow (Python) tokenizer; this task needs a fast tokenizer for word ids and character offsets.",
            "Add a tokenizer.json to the model folder (save it with a fast tokenizer) or pick another model.",
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def effective_max_length(recipe: Recipe, config: Any, tokenizer: Any) -> int:
    """data.max_length capped by the model's position limit (BERT-family models stop at 512)."""
    limits = [recipe.data.max_length]
    positions = getattr(config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        # RoBERTa-family configs count two extra padding positions
        limits.append(
            positions - 2 if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert") else positions
        )
    model_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(model_max, int) and 0 < model_max < 1_000_000:
        limits.append(model_max)
    return min(limits)
