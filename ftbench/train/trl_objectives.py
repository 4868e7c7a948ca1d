"""What the objectives trained through TRL (orpo, simpo, kto, grpo) share inside a training job.

TRL's trainers subclass transformers' Trainer, so they take ftbench's callbacks unchanged (events with
step/max_steps, stop and checkpoint-now, trackers) and run through `Session.run_trainer` (resume, GPU samples)
like every other task. What this module adds: prompts rendered with the model's chat template (so a TRL run
sees the same text as `ftbench chat`), a token counter around TRL's own collator, the `objective` event with
each objective's key metric, and the common end (final eval, metrics, outputs).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

if TYPE_CHECKING:
    from ftbench.core.job_context import JobContext
    from ftbench.train.session import Session

# TRL's log keys kept in the run's metrics (the last logging step's, and the final eval's with eval_ in front)
OBJECTIVE_METRICS = ("rewards/", "logps/", "kl", "reward", "nll_loss", "log_odds")


def silence_trl_experimental() -> None:
    """ORPO and CPO live in `trl.experimental`, whose import warning says nothing our users can act on."""
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


def prompt_text(prompt: Any, tokenizer: Any) -> str:
    """The prompt as the model sees it before answering: rendered with the chat template (a string becomes one
    user turn) and ending with the assistant header."""
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def answer_text(value: Any) -> str:
    """An answer's text: a string as is, a list of messages by its last assistant turn."""
    if isinstance(value, str):
        return value
    return [m for m in value if m.get("role") == "assistant"][-1]["content"]


class TokenCounter:
    """Wraps a TRL collator and counts the real tokens of every batch (the sum of its attention masks), which
    the events callback reports as tokens and tokens/s."""

    def __init__(self) -> None:
        self.collator: Any = None
        self.tokens = 0

    def wrap(self, collator: Any) -> TokenCounter:
        self.collator = collator
        return self

    def __call__(self, features: Any) -> Any:
        batch = self.collator(features)
        if isinstance(batch, Mapping):
            self.tokens += sum(int(v.sum()) for k, v in batch.items() if k.endswith("attention_mask"))
        return batch


class ObjectiveCallback(TrainerCallback):
    """An `objective` event at each logging step with the objective's key metric (`metric`, `value`) and its
    companions, so the monitor can draw it next to the loss without knowing each objective's names."""

    def __init__(self, emit: Any, objective: str, rank0: bool = True) -> None:
        self.emit, self.objective, self.rank0 = emit, objective, rank0

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not self.rank0 or not logs or "loss" not in logs:
            return
        if "reward" in logs:
            self.emit(
                "objective",
                step=state.global_step,
                objective=self.objective,
                metric="reward",
                value=logs["reward"],
                reward=logs["reward"],
                reward_std=logs.get("reward_std"),
                kl=logs.get("kl"),
                completion_length=logs.get("completions/mean_length"),
            )
        elif "rewards/margins" in logs:
            self.emit(
                "objective",
                step=state.global_step,
                objective=self.objective,
                metric="margin",
                value=logs["rewards/margins"],
                margin=logs["rewards/margins"],
                accuracy=logs.get("rewards/accuracies"),
                chosen=logs.get("rewards/chosen"),
                rejected=logs.get("rewards/rejected"),
                kl=logs.get("kl"),
            )


def callbacks(session: Session, counter: Any = None) -> list[Any]:
    """ftbench's callbacks plus the objective event."""
    return [*session.callbacks(counter), ObjectiveCallback(session.ctx.emit, session.recipe.task, session.rank0)]


def finish(session: Session, ctx: JobContext, trainer: Any, tokenizer: Any, has_eval: bool) -> dict[str, Any]:
    """Train (resuming when asked), evaluate once more, and save weights, metrics and the model card."""
    counter = trainer.data_collator if isinstance(trainer.data_collator, TokenCounter) else None
    result = session.run_trainer(trainer)
    history = [h for h in trainer.state.log_history if "loss" in h]
    metrics: dict[str, Any] = {
        "train_loss": result.training_loss,
        "steps": trainer.state.global_step,
        # GRPO feeds its own generations to the model, past any collator; TRL counts them as num_tokens
        "tokens": counter.tokens if counter else int(history[-1].get("num_tokens", 0) if history else 0),
    }
    if history:  # the last logging step's objective metrics (reward, margins, kl, ...)
        metrics.update({k: v for k, v in history[-1].items() if k.startswith(OBJECTIVE_METRICS) and _number(v)})
    if ctx.stop_requested:
        return metrics
    if has_eval:
        ev = trainer.evaluate()
        metrics.update(
            {
                k: v
                for k, v in ev.items()
                if k.removeprefix("eval_").startswith(("loss", *OBJECTIVE_METRICS)) and _number(v)
            }
        )
    metrics.update(session.save_outputs(trainer.model, tokenizer, metrics))
    return metrics


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
