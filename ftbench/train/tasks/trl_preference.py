"""Tasks `orpo`, `simpo` and `kto`: preference objectives trained by TRL's own trainers.

- orpo: TRL's ORPOTrainer (Hong et al. 2024): the SFT loss on the chosen answer plus beta x the log odds ratio of
  chosen over rejected; no reference model.
- simpo: TRL's CPOTrainer with `loss_type="simpo"` and `cpo_alpha=0` (Meng et al. 2024): the average per-token
  log-probability is the reward, the loss is -log sigmoid(beta x margin - gamma); no reference model.
- kto: TRL's KTOTrainer (Ethayarajh et al. 2024) on unpaired rows (`prompt`, `completion`, `label`); the reference
  is the starting model: the adapter switched off with LoRA, a frozen copy with method full.

ftbench loads the model (and applies the method: LoRA, QLoRA, full) itself, renders prompts with the chat
template (train/trl_objectives.py) and hands TRL plain prompt and answer strings; TRL tokenizes them and adds
the end-of-sequence token. Why TRL here and not for dpo: these losses need TRL's data handling (KTO's
mismatched KL pairs, CPO's length normalisation) and TRL is where they are maintained.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from ftbench.core.recipe import Recipe
from ftbench.train.data import ensure_chat_template, load_rows
from ftbench.train.session import Session
from ftbench.train.trl_objectives import (
    TokenCounter,
    answer_text,
    callbacks,
    finish,
    prompt_text,
    silence_trl_experimental,
)

if TYPE_CHECKING:
    from ftbench.core.job_context import JobContext


def preflight(recipe: Recipe, session: Session) -> None:
    session.state["rows"] = load_rows(recipe.data, recipe.task)


def trl_rows(rows: list[dict[str, Any]], task: str, tokenizer: Any) -> list[dict[str, Any]]:
    """Rows as TRL reads them: the rendered prompt and plain answer text (TRL appends the EOS token)."""
    if task == "kto":
        return [
            {
                "prompt": prompt_text(r["prompt"], tokenizer),
                "completion": answer_text(r["completion"]),
                "label": r["label"],
            }
            for r in rows
        ]
    return [
        {
            "prompt": prompt_text(r["prompt"], tokenizer),
            "chosen": answer_text(r["chosen"]),
            "rejected": answer_text(r["rejected"]),
        }
        for r in rows
    ]


def trainer_and_config(recipe: Recipe) -> tuple[Any, Any, dict[str, Any]]:
    """(TRL trainer class, its config class, the objective's config fields) for the recipe's task."""
    length = {"max_length": recipe.data.max_length}
    silence_trl_experimental()
    if recipe.task == "orpo":
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer

        fields = {**length, "beta": recipe.orpo.beta, "max_completion_length": recipe.orpo.max_completion_length}
        return ORPOTrainer, ORPOConfig, fields
    if recipe.task == "simpo":
        from trl.experimental.cpo import CPOConfig, CPOTrainer

        s = recipe.simpo
        fields = {
            **length,
            "loss_type": "simpo",
            "cpo_alpha": 0.0,
            "beta": s.beta,
            "simpo_gamma": s.gamma,
            "max_completion_length": s.max_completion_length,
        }
        return CPOTrainer, CPOConfig, fields
    from trl import KTOConfig, KTOTrainer

    k = recipe.kto
    fields = {
        **length,
        "beta": k.beta,
        "desirable_weight": k.desirable_weight,
        "undesirable_weight": k.undesirable_weight,
    }
    return KTOTrainer, KTOConfig, fields


def train(recipe: Recipe, ctx: JobContext, session: Session) -> dict[str, Any]:
    from datasets import Dataset

    rows, lm = session.rows_and_model(recipe.task)
    model, tokenizer = lm.model, lm.tokenizer
    ensure_chat_template(tokenizer, recipe.data)
    train_rows = trl_rows(rows.train, recipe.task, tokenizer)
    eval_rows = trl_rows(rows.eval, recipe.task, tokenizer)
    ctx.log(f"Data: {len(train_rows)} train / {len(eval_rows)} eval rows for {recipe.task} (TRL).")
    trainer_class, config_class, fields = trainer_and_config(recipe)
    args = session.training_args(has_eval=bool(eval_rows), args_class=config_class, **fields)
    extra: dict[str, Any] = {}
    if recipe.task == "kto" and not hasattr(model, "peft_config"):  # LoRA: the adapter switched off is the reference
        extra["ref_model"] = copy.deepcopy(model).eval().requires_grad_(False)
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
        processing_class=tokenizer,
        callbacks=callbacks(session, counter := TokenCounter()),
        **extra,
    )
    trainer.data_collator = counter.wrap(trainer.data_collator)
    return finish(session, ctx, trainer, tokenizer, has_eval=bool(eval_rows))
