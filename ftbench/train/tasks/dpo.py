"""Task `dpo`: direct preference optimisation on prompt/chosen/rejected rows.

The loss is computed in a small transformers Trainer subclass (sigmoid, IPO or hinge, as in the DPO and IPO
papers). IPO's log-ratios are averaged per answer token, as TRL does and as the IPO authors confirmed their
reported results use (docs/objectives.md "IPO"); sigmoid and hinge use the summed log-probabilities. Why not TRL's DPOTrainer: its dataset and config handling changes between releases, while this is
~40 lines that share the SFT path's tokenization, chat templates, callbacks, stop/resume and outputs. The
reference model costs no memory with an adapter: it is the same weights with the adapter disabled. With
method full, a frozen copy of the starting model is the reference.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from ftbench.core.recipe import Recipe
from ftbench.train.data import PreferenceCollator, ensure_chat_template, load_rows, mark_eval, tokenize_preference
from ftbench.train.session import Session

if TYPE_CHECKING:
    from ftbench.core.job_context import JobContext


def preflight(recipe: Recipe, session: Session) -> None:
    session.state["rows"] = load_rows(recipe.data, "dpo")


def answer_lengths(batch: dict[str, Any]) -> Any:
    """The number of label (answer) tokens of each row: what IPO divides the summed log-probabilities by."""
    return (batch["labels"][:, 1:] != -100).sum(-1).clamp(min=1)


def sequence_logps(model: Any, batch: dict[str, Any]) -> Any:
    """Sum of log-probabilities of the label tokens of each row."""
    import torch

    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1].float()
    labels = batch["labels"][:, 1:]
    mask = labels != -100
    picked = torch.gather(logits.log_softmax(-1), 2, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * mask).sum(-1)


def dpo_loss(
    pc: Any, pr: Any, rc: Any, rr: Any, beta: float, loss_type: str, lengths: tuple[Any, Any] | None = None
) -> tuple[Any, Any]:
    """(mean loss, per-pair logits) from policy/reference summed log-probs of chosen and rejected answers.
    IPO with `lengths` (chosen, rejected answer tokens) uses per-token log-ratios (TRL's form, see above)."""
    import torch.nn.functional as F

    margin = (pc - rc) - (pr - rr)
    logits = beta * margin
    if loss_type == "ipo":
        if lengths is not None:
            margin = (pc - rc) / lengths[0] - (pr - rr) / lengths[1]
        loss = (margin - 1 / (2 * beta)) ** 2
    elif loss_type == "hinge":
        loss = F.relu(1 - logits)
    else:
        loss = -F.logsigmoid(logits)
    return loss.mean(), logits


def _trainer_class() -> type:
    from transformers import Trainer

    class DpoTrainer(Trainer):
        """Trainer with the DPO loss; reward statistics are averaged into each train/eval log."""

        def __init__(self, *args: Any, beta: float, loss_type: str, ref_model: Any = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.beta, self.loss_type, self.ref_model = beta, loss_type, ref_model
            self._stats: dict[str, dict[str, list[float]]] = {"train": defaultdict(list), "eval": defaultdict(list)}

        def compute_loss(
            self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
        ) -> Any:
            import torch

            n = inputs["input_ids"].shape[0] // 2
            policy = sequence_logps(model, inputs)
            with torch.no_grad():
                if self.ref_model is not None:
                    ref = sequence_logps(self.ref_model, inputs)
                else:
                    with self.accelerator.unwrap_model(model).disable_adapter():
                        ref = sequence_logps(model, inputs)
            lengths = answer_lengths(inputs)
            loss, logits = dpo_loss(
                policy[:n], policy[n:], ref[:n], ref[n:], self.beta, self.loss_type, (lengths[:n], lengths[n:])
            )
            stats = self._stats["train" if model.training else "eval"]
            stats["rewards/chosen"].append(float(self.beta * (policy[:n] - ref[:n]).detach().mean()))
            stats["rewards/rejected"].append(float(self.beta * (policy[n:] - ref[n:]).detach().mean()))
            stats["rewards/accuracy"].append(float((logits.detach() > 0).float().mean()))
            stats["rewards/margin"].append(float(logits.detach().mean()))
            return (loss, {"loss": loss}) if return_outputs else loss

        def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
            split = "eval" if "eval_loss" in logs else "train" if "loss" in logs else None
            if split:
                prefix = "eval_" if split == "eval" else ""
                for key, values in self._stats[split].items():
                    if values:
                        logs[prefix + key] = sum(values) / len(values)
                self._stats[split] = defaultdict(list)
            super().log(logs, *args, **kwargs)

    return DpoTrainer


def train(recipe: Recipe, ctx: JobContext, session: Session) -> dict[str, Any]:
    rows, lm = session.rows_and_model("dpo")
    report = rows.report
    model, tokenizer = lm.model, lm.tokenizer
    ensure_chat_template(tokenizer, recipe.data)
    cfg = recipe.dpo
    train_ex = tokenize_preference(rows.train, tokenizer, recipe.data.max_length, cfg.max_prompt_length, report)
    eval_ex = mark_eval(
        tokenize_preference(rows.eval, tokenizer, recipe.data.max_length, cfg.max_prompt_length, report)
    )
    ctx.log(
        f"Data: {len(train_ex)} train / {len(eval_ex)} eval preference pairs; {report.truncated} truncated to {recipe.data.max_length} tokens."
    )
    ref_model = None
    if not hasattr(model, "peft_config"):
        ref_model = copy.deepcopy(model).eval()
        for p in ref_model.parameters():
            p.requires_grad_(False)
    collator = PreferenceCollator(tokenizer.pad_token_id)
    args = session.training_args(has_eval=bool(eval_ex), prediction_loss_only=True)
    trainer = _trainer_class()(
        model=model,
        args=args,
        train_dataset=train_ex,
        eval_dataset=eval_ex or None,
        data_collator=collator,
        callbacks=session.callbacks(collator),
        beta=cfg.beta,
        loss_type=cfg.loss_type,
        ref_model=ref_model,
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
        ev = trainer.evaluate()
        metrics.update(
            {
                k.removeprefix("eval_"): v
                for k, v in ev.items()
                if k.startswith("eval_") and ("loss" in k or "rewards" in k)
            }
        )
        metrics["eval_loss"] = metrics.pop("loss")
    metrics["truncated_rows"] = report.truncated
    metrics.update(session.save_outputs(trainer.model, tokenizer, metrics))
    return metrics
