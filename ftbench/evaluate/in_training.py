"""The recipe's `eval:` section: generate answers to held-out prompts during SFT and score them as `ftbench eval` does.

Eval loss says how surprised the model is by the references; it does not say whether its answers are right.
Every `eval.every_steps` steps and/or at the end, the model being trained answers up to `eval.max_prompts`
prompts (greedy, batched with the eval job's `generate_batch`), and the scores go out as `eval` events with a
`gen_` prefix (next to eval_loss, so the run monitor and the Runs table read them like any eval metric) and into
the run's result under `generation`. Runs only on the main process of a distributed run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from ftbench.chat.hf import END_OF_TURN
from ftbench.core.recipe import EvalSection, resolve_path
from ftbench.evaluate.evalset import EvalItem, items_from_rows, load_eval_file
from ftbench.evaluate.hf_runner import GenConfig, generate_batch
from ftbench.evaluate.metrics import GENERATION_METRICS, ScoreOptions, aggregate, score_example


def eval_items(section: EvalSection, eval_rows: list[dict[str, Any]], workspace_root: Path | None) -> list[EvalItem]:
    if section.prompts:
        items = load_eval_file(Path(resolve_path(section.prompts, workspace_root)))
    elif eval_rows:
        items = items_from_rows(eval_rows, "the run's eval rows")
    else:
        return []
    return [i for i in items if i.references][: section.max_prompts]


class GenerationEvalCallback(TrainerCallback):
    def __init__(
        self, section: EvalSection, ctx: Any, tokenizer: Any, items: list[EvalItem], rank0: bool = True
    ) -> None:
        self.section = section
        self.ctx = ctx
        self.tokenizer = tokenizer
        self.items = items
        self.rank0 = rank0
        self.options = ScoreOptions(
            metrics=tuple(section.metrics or GENERATION_METRICS), label_pattern=section.label_pattern
        )
        self.last_step: int | None = None
        self.latest: dict[str, Any] | None = None

    def score(self, model: Any, step: int) -> dict[str, Any]:
        tok = self.tokenizer
        vocab = tok.get_vocab()
        stop_ids = sorted({tok.eos_token_id, *(vocab[t] for t in END_OF_TURN if t in vocab)} - {None})
        config = GenConfig(max_new_tokens=self.section.max_new_tokens)
        was_training = model.training
        model.eval()
        rows = []
        try:
            for start in range(0, len(self.items), self.section.batch_size):
                batch = self.items[start : start + self.section.batch_size]
                prompts = [
                    tok(
                        tok.apply_chat_template(i.messages, tokenize=False, add_generation_prompt=True),
                        add_special_tokens=False,
                    )["input_ids"]
                    for i in batch
                ]
                for item, answer in zip(batch, generate_batch(model, tok, stop_ids, prompts, config), strict=True):
                    scores = score_example(answer["prediction"], item.references, self.options)
                    rows.append({**answer, "references": item.references, "scores": scores})
        finally:
            if was_training:
                model.train()
        metrics = aggregate(rows, self.options)
        self.ctx.emit(
            "eval",
            step=step,
            **{f"gen_{k}": v for k, v in metrics.items() if isinstance(v, (int, float)) and k != "examples"},
        )
        self.last_step, self.latest = step, {"step": step, **metrics}
        return metrics

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        every = self.section.every_steps
        if self.rank0 and every and state.global_step % every == 0 and model is not None:
            self.score(model, state.global_step)

    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if self.rank0 and self.section.at_end and self.last_step != state.global_step and model is not None:
            self.score(model, state.global_step)


def generation_callbacks(
    recipe: Any, ctx: Any, tokenizer: Any, eval_rows: list[dict[str, Any]], rank0: bool
) -> list[Any]:
    """The callback when the recipe asks for generation eval and there are prompts with references, else none."""
    if not recipe.eval.generate:
        return []
    items = eval_items(recipe.eval, eval_rows, ctx.workspace.root)
    if not items:
        ctx.log(
            "eval.generate is on but there are no prompts with references (eval.prompts or data.eval); skipping it."
        )
        return []
    ctx.log(
        f"Generation eval on {len(items)} prompts"
        + (f" every {recipe.eval.every_steps} steps" if recipe.eval.every_steps else "")
        + (" and at the end." if recipe.eval.at_end else ".")
    )
    return [GenerationEvalCallback(recipe.eval, ctx, tokenizer, items, rank0)]
