"""Task `sft`: causal-LM instruction tuning on alpaca, messages, sharegpt or text rows.

We drive transformers' Trainer with our own tokenization and collator rather than TRL's SFTTrainer: the
prompt masking has to follow each row's format (every assistant turn trainable, see ftbench.train.data) and
the collator counts real tokens for the live tokens/s, and both stay stable across TRL releases.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ftbench.core.recipe import Recipe
from ftbench.train.data import SftCollator, ensure_chat_template, load_rows, mark_eval, pack
from ftbench.train.levers import check_liger, trainer_overrides, use_sparse_logits
from ftbench.train.session import Session
from ftbench.train.sft_tokens import tokenize_sft
from ftbench.train.sparse_logits import causal_loss
from ftbench.train.token_cache import cached_tokenize, fingerprint

if TYPE_CHECKING:
    from ftbench.core.job_context import JobContext


def preflight(recipe: Recipe, session: Session) -> None:
    check_liger(recipe)
    session.state["rows"] = load_rows(recipe.data, "sft")


def train(recipe: Recipe, ctx: JobContext, session: Session) -> dict[str, Any]:
    from transformers import Trainer

    rows, lm = session.rows_and_model("sft")
    report = rows.report
    model, tokenizer = lm.model, lm.tokenizer
    if lm.info.get("target_modules"):
        ctx.log(f"LoRA on: {', '.join(lm.info['target_modules'])}")
    note = ensure_chat_template(tokenizer, recipe.data)
    if note:
        ctx.log(note)

    def progress(phase: str, done: int, total: int) -> None:
        ctx.progress(phase, done, total)

    def build() -> tuple[list[Any], list[Any]]:
        train = tokenize_sft(rows.train, report.format, tokenizer, recipe.data, report, progress)
        return train, tokenize_sft(rows.eval, report.format, tokenizer, recipe.data, report) if rows.eval else []

    key = fingerprint(recipe.data, report.format, tokenizer)
    tokenized = cached_tokenize(ctx.workspace.root, key, report, build)
    train_ex, eval_ex = tokenized.train, tokenized.eval
    if tokenized.from_cache:
        ctx.log(f"Tokenized examples read from the workspace cache ({key[:12]}).")
    ctx.log(
        f"Data: {report.format}, {len(train_ex)} train / {len(eval_ex)} eval examples; "
        f"{report.truncated} truncated to {recipe.data.max_length} tokens; {report.dropped_empty} dropped (nothing to learn after truncation); "
        f"{report.bad_lines} bad lines and {report.bad_rows} bad rows skipped."
    )
    if not train_ex:
        from ftbench.core.errors import FtbenchError

        raise FtbenchError(
            "No training example is left after tokenization.", "Raise data.max_length or check the data's responses."
        )
    train_ex, eval_ex, collator = batch_layout(
        recipe, ctx.log, train_ex, eval_ex, tokenizer.pad_token_id, use_sparse_logits(recipe, model)
    )
    # prediction_loss_only: evaluation needs the loss alone, not every eval batch's logits kept in memory
    args = session.training_args(has_eval=bool(eval_ex), prediction_loss_only=True, **trainer_overrides(recipe))
    from ftbench.evaluate.in_training import generation_callbacks

    generation = generation_callbacks(recipe, ctx, tokenizer, rows.eval, session.rank0)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_ex,
        eval_dataset=eval_ex or None,
        data_collator=collator,
        callbacks=session.callbacks(collator) + generation,
        compute_loss_func=causal_loss if collator.sparse_logits else None,
    )
    result = session.run_trainer(trainer)
    metrics: dict[str, Any] = {
        "train_loss": result.training_loss,
        "steps": trainer.state.global_step,
        "tokens": collator.tokens,
    }
    if session.stopped_early(trainer):
        return metrics
    if eval_ex:
        ctx.progress("evaluating", 0, 1)
        ev = trainer.evaluate()
        metrics["eval_loss"] = ev["eval_loss"]
        metrics["perplexity"] = math.exp(min(ev["eval_loss"], 50.0))
    if generation and generation[0].latest:
        metrics["generation"] = generation[0].latest
    metrics.update(truncated_rows=report.truncated, skipped_rows=report.bad_rows + report.bad_lines)
    metrics.update(session.save_outputs(trainer.model, tokenizer, metrics))
    return metrics


def batch_layout(
    recipe: Recipe, log: Callable[[str], None], train_ex: list[Any], eval_ex: list[Any], pad_id: int, sparse: bool
) -> tuple[list[Any], list[Any], SftCollator]:
    """Packing and padding-free rows as the recipe asks (train/data.py), both off for prompt tuning, whose soft
    prompt is prepended to every row; and the collator that lays out each batch."""
    tuning = recipe.method.name == "prompt_tuning"
    packing, padding_free = recipe.data.packing and not tuning, recipe.data.padding_free and not tuning
    if tuning and (recipe.data.packing or recipe.data.padding_free):
        log("Packing and padding-free rows are off for prompt tuning (the soft prompt is prepended to every row).")
    if packing:
        n_before = len(train_ex)
        train_ex = pack(train_ex, recipe.data.max_length)
        eval_ex = pack(eval_ex, recipe.data.max_length) if eval_ex else []
        log(f"Packed {n_before} examples into {len(train_ex)} rows of at most {recipe.data.max_length} tokens.")
    # flash-attention's varlen kernel treats each example as its own sequence, so one long row costs nothing;
    # other kernels attend over the whole row (masked), so rows stay within max_length
    varlen = recipe.model.attn_implementation == "flash_attention_2"
    collator = SftCollator(
        pad_id,
        packed=packing,
        padding_free=padding_free,
        row_limit=None if varlen else recipe.data.max_length,
        sparse_logits=sparse,
    )
    return train_ex, mark_eval(eval_ex), collator
