"""Task `grpo`: group relative policy optimisation through TRL's GRPOTrainer (Shao et al. 2024).

For every prompt the model samples `grpo.num_generations` answers; each answer is scored by the recipe's
rewards (train/rewards.py: built-in rules, or the user's functions), and the policy moves towards the answers
that scored above their group's mean. Rows are in the `prompts` format (`prompt`, optional `answer`, the
reference the `answer` rule compares with). `training.batch_size` counts sampled answers, so
batch_size x gradient_accumulation must be a multiple of num_generations (the recipe checks it).

With `grpo.beta` 0 (the default, as in TRL and DAPO) no reference model is kept; with beta > 0 and LoRA the
reference is the adapter switched off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ftbench.core.recipe import Recipe
from ftbench.train.data import ensure_chat_template, load_rows
from ftbench.train.rewards import reward_functions
from ftbench.train.session import Session
from ftbench.train.trl_objectives import callbacks, finish, prompt_text

if TYPE_CHECKING:
    from ftbench.core.job_context import JobContext


def preflight(recipe: Recipe, session: Session) -> None:
    session.state["rows"] = load_rows(recipe.data, "grpo")
    reward_functions(recipe.grpo)  # a missing permission, file or function fails before the model loads


def trl_rows(rows: list[dict[str, Any]], tokenizer: Any) -> list[dict[str, Any]]:
    """The rendered prompt and the reference answer ("" for none: the answer rule then has no opinion)."""
    return [{"prompt": prompt_text(r["prompt"], tokenizer), "answer": r.get("answer")} for r in rows]


def train(recipe: Recipe, ctx: JobContext, session: Session) -> dict[str, Any]:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    rows, lm = session.rows_and_model("grpo")
    model, tokenizer = lm.model, lm.tokenizer
    ensure_chat_template(tokenizer, recipe.data)
    funcs, weights = reward_functions(recipe.grpo)
    train_rows, eval_rows = trl_rows(rows.train, tokenizer), trl_rows(rows.eval, tokenizer)
    cfg = recipe.grpo
    ctx.log(
        f"Data: {len(train_rows)} train / {len(eval_rows)} eval prompts; {cfg.num_generations} answers per prompt, "
        f"rewards: {', '.join(f.__name__ for f in funcs)}."
    )
    args = session.training_args(
        has_eval=bool(eval_rows),
        args_class=GRPOConfig,
        num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature,
        beta=cfg.beta,
        reward_weights=weights,
        log_completions=False,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=funcs,
        args=args,
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
        processing_class=tokenizer,
        callbacks=callbacks(session),
    )
    return finish(session, ctx, trainer, tokenizer, has_eval=bool(eval_rows))
