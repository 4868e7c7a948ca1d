"""What every task shares inside one training job: the run folder, TrainingArguments from the recipe,
callbacks, resume from the last checkpoint, stop handling, and the outputs (weights, tokenizer, recipe,
metrics, model card).

Run folder layout (DESIGN.md "Process model"):
    recipe.yaml        the frozen, resolved recipe
    checkpoints/       Trainer checkpoints (optimizer, scheduler, RNG, step); `save_total_limit` kept
    adapter/ | model/  PEFT adapter (lora, qlora, prompt_tuning) or full weights, each with the tokenizer
    metrics.json       final metrics; README.md the model card
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftbench.core.atomic import atomic_write_json, atomic_write_text
from ftbench.core.checkpoint_trust import TRUST_ENV, check_resume
from ftbench.core.errors import FtbenchError
from ftbench.core.layout import JobLayout
from ftbench.core.recipe import Recipe
from ftbench.core.specs import method_spec

if TYPE_CHECKING:
    from ftbench.core.job_context import JobContext


@dataclass
class Session:
    recipe: Recipe
    ctx: JobContext
    run_dir: Path
    precision: str = "fp32"
    rank0: bool = True
    state: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def rows_and_model(self, task: str) -> tuple[Any, Any]:
        """The checked rows (kept by preflight when it ran) and the loaded model, both noted in the run's info."""
        from transformers import set_seed

        from ftbench.train.data import load_rows
        from ftbench.train.model import load_model

        rows = self.state.get("rows") or load_rows(self.recipe.data, task)
        self.ctx.progress("loading model", 0, 1)
        set_seed(self.recipe.training.seed)  # new weights (a LoRA's A, a new head) are drawn as the model loads
        lm = load_model(self.recipe, self.precision)
        self.ctx.progress("loading model", 1, 1)
        report = rows.report
        self.info.update(lm.info, data_format=report.format, train_rows=report.train_rows, eval_rows=report.eval_rows)
        return rows, lm

    @property
    def layout(self) -> JobLayout:
        return JobLayout(self.run_dir)

    @property
    def checkpoint_dir(self) -> Path:
        return self.layout.checkpoints_dir

    def last_checkpoint(self) -> Path | None:
        """The checkpoint to resume from: the newest complete one that ftbench signed, falling back past saves
        that were cut short (deleted: they can never be resumed) and past a complete but unsigned newest one
        (killed between the Trainer's save and the signature), which would otherwise need --trust-checkpoint."""
        from ftbench.core.checkpoint_trust import is_ours

        complete = [c for c in self.layout.checkpoints() if c.complete]
        for cp in self.layout.checkpoints():
            if not cp.complete and self.rank0:
                self.ctx.log(f"Removing {cp.name}: its save was cut short, so it cannot be resumed.")
                shutil.rmtree(cp.path, ignore_errors=True)
        signed = [c for c in complete if is_ours(self.run_dir, c.path)]
        chosen = signed[-1] if signed else (complete[-1] if complete else None)
        for cp in complete:
            if chosen is not None and cp.step > chosen.step:
                self.ctx.log(f"Skipping {cp.name}: written but not signed (the save was cut short).")
        return chosen.path if chosen else None

    def training_args(self, has_eval: bool, args_class: Any = None, **overrides: Any) -> Any:
        """TrainingArguments from recipe.training; tasks pass task-specific extras in `overrides`, and a TRL
        config class (a TrainingArguments subclass, e.g. ORPOConfig) in `args_class` with its own fields."""
        import torch
        from transformers import TrainingArguments

        t = self.recipe.training
        eval_strategy = "no"
        if has_eval:
            eval_strategy = "steps" if t.eval_steps else "epoch"
        save_strategy = "steps" if t.save_steps else "epoch"
        early = t.early_stopping_patience is not None and has_eval
        if early and (
            eval_strategy != save_strategy or (t.eval_steps and t.save_steps and t.save_steps % t.eval_steps)
        ):
            raise FtbenchError(
                "training.early_stopping_patience needs checkpoints saved where evaluation runs (save_steps a multiple of eval_steps, or both per epoch).",
                "Set training.save_steps equal to training.eval_steps.",
            )
        kwargs: dict[str, Any] = dict(
            output_dir=str(self.checkpoint_dir),
            num_train_epochs=t.epochs,
            max_steps=t.max_steps,
            per_device_train_batch_size=t.batch_size,
            per_device_eval_batch_size=t.batch_size,
            gradient_accumulation_steps=t.gradient_accumulation,
            learning_rate=self.recipe.learning_rate(),
            lr_scheduler_type=t.scheduler,
            warmup_steps=t.warmup_steps if t.warmup_steps else t.warmup_ratio,
            weight_decay=t.weight_decay,
            max_grad_norm=t.max_grad_norm,
            optim=t.optimizer,
            logging_steps=t.logging_steps,
            logging_first_step=True,
            eval_strategy=eval_strategy,
            eval_steps=t.eval_steps,
            save_strategy=save_strategy,
            save_steps=t.save_steps or 500,
            save_total_limit=t.save_total_limit,
            seed=t.seed,
            data_seed=t.seed,
            bf16=self.precision == "bf16",
            fp16=self.precision == "fp16",
            use_cpu=not torch.cuda.is_available(),
            report_to="none",  # trackers come in as callbacks (see callbacks()), writing into the run folder
            remove_unused_columns=False,
            dataloader_num_workers=0,
            disable_tqdm=True,
            load_best_model_at_end=early,
            metric_for_best_model="eval_loss" if early else None,
            greater_is_better=False if early else None,
            gradient_checkpointing=False,  # applied at load time (works with PEFT and k-bit)
        )
        if t.optimizer in ("paged_adamw_8bit", "paged_adamw_32bit", "adamw_bnb_8bit") and not torch.cuda.is_available():
            raise FtbenchError(
                f"training.optimizer {t.optimizer} needs a GPU.", "Use optimizer: adamw_torch on the CPU."
            )
        kwargs.update(overrides)
        return (args_class or TrainingArguments)(**kwargs)

    def callbacks(self, token_counter: Any = None) -> list[Any]:
        from transformers import EarlyStoppingCallback

        from ftbench.train.callbacks import ControlCallback, EventsCallback

        cbs: list[Any] = [
            EventsCallback(self.ctx.emit, token_counter, rank0=self.rank0, progress=self.ctx.progress),
            ControlCallback(self.ctx),
        ]
        if self.recipe.training.report_to and self.rank0:
            from ftbench.train.tracking import tracker_callbacks

            cbs += tracker_callbacks(self.recipe.training.report_to, self.layout.dir, self.run_dir.name)
        if self.recipe.training.early_stopping_patience is not None:
            cbs.append(EarlyStoppingCallback(early_stopping_patience=self.recipe.training.early_stopping_patience))
        return cbs

    def run_trainer(self, trainer: Any) -> Any:
        """trainer.train(), resuming from the last checkpoint on a later attempt; samples GPUs meanwhile."""
        from ftbench.train.callbacks import GpuSampler

        resume = self.last_checkpoint() if self.ctx.attempt > 1 else None
        if resume is not None:
            check_resume(self.run_dir, resume, trusted=os.environ.get(TRUST_ENV) == "1")
            self.ctx.log(f"Resuming from {resume.name} (attempt {self.ctx.attempt}).")
        elif self.ctx.attempt > 1:
            self.ctx.log("No checkpoint to resume from; starting again from step 0.")
        sampler = GpuSampler(self.ctx.emit)
        if self.rank0:
            sampler.start()
        try:
            return trainer.train(resume_from_checkpoint=str(resume) if resume else None)
        except Exception as exc:
            raise explain_training_error(exc, self.recipe) from exc
        finally:
            sampler.stop()

    def stopped_early(self, trainer: Any) -> bool:
        """A stop cut the run short. A stop that arrived after the last step did not: that run is finished and
        saves its outputs like any other (in a multi-process run the ranks may see the stop only then)."""
        return self.ctx.stop_requested and trainer.state.global_step < trainer.state.max_steps

    def save_outputs(
        self, model: Any, tokenizer: Any, metrics: dict[str, Any], task_info: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Weights (adapter/ or model/, with `task_info` as its ftbench_task.json), tokenizer with chat
        template, metrics.json and README.md."""
        if not self.rank0:
            return {}
        is_peft = hasattr(model, "peft_config")
        out = self.layout.adapter if is_peft else self.layout.model
        partial = out.with_name(out.name + JobLayout.PARTIAL_SUFFIX)  # renamed once whole: never half an adapter/
        shutil.rmtree(partial, ignore_errors=True)
        self.ctx.progress("saving", 0, 1)
        model.save_pretrained(str(partial))
        tokenizer.save_pretrained(str(partial))
        if task_info is not None:
            atomic_write_json(partial / JobLayout.TASK_FILE, {**task_info, "weights": out.name})
        if out.exists():
            shutil.rmtree(out)
        os.replace(partial, out)
        self.ctx.progress("saving", 1, 1)
        outputs = {out.name: str(out)}
        clean = {k: _clean(v) for k, v in metrics.items()}
        atomic_write_json(self.layout.metrics, {**clean, "info": self.info})
        atomic_write_text(self.layout.readme, model_card(self.recipe, clean, self.info, out.name))
        if not self.layout.recipe.exists():
            atomic_write_text(self.layout.recipe, self.recipe.to_yaml())
        return outputs


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    return value


def explain_training_error(exc: BaseException, recipe: Recipe) -> BaseException:
    """Out of memory becomes a FtbenchError with what to try; anything else passes through unchanged."""
    text = f"{type(exc).__name__}: {exc}"
    if "out of memory" in text.lower() or type(exc).__name__ == "OutOfMemoryError":
        t = recipe.training
        tips = [f"lower training.batch_size (now {t.batch_size}) and raise gradient_accumulation"]
        if not t.gradient_checkpointing:
            tips.append("set training.gradient_checkpointing: true")
        if recipe.method.name in ("full", "lora"):
            tips.append("use method: qlora")
        tips.append(f"lower data.max_length (now {recipe.data.max_length})")
        return FtbenchError(f"Training ran out of memory: {str(exc).splitlines()[0][:200]}", "; ".join(tips) + ".")
    return exc


def model_card(recipe: Recipe, metrics: dict[str, Any], info: dict[str, Any], weights: str) -> str:
    """A Hugging Face style README.md: what was trained from what, how, and how well."""
    t, m = recipe.training, recipe.method
    hyper = {
        "method": m.name,
        "epochs": t.epochs,
        "max_steps": t.max_steps,
        "batch_size": t.batch_size,
        "gradient_accumulation": t.gradient_accumulation,
        "learning_rate": recipe.learning_rate(),
        "scheduler": t.scheduler,
        "warmup": t.warmup_steps or t.warmup_ratio,
        "optimizer": t.optimizer,
        "max_length": recipe.data.max_length,
        "packing": recipe.data.packing,
        "padding_free": recipe.data.padding_free,
        "seed": t.seed,
    }
    for key in method_spec(m.name).fields:  # the method's own settings; target_modules as resolved
        hyper[key] = info.get(key) if key == "target_modules" else getattr(m, key)
    rows = "\n".join(f"| {k} | {v} |" for k, v in hyper.items())
    mrows = "\n".join(f"| {k} | {v} |" for k, v in metrics.items() if not isinstance(v, (dict, list))) or "| (none) | |"
    base = recipe.model.path
    tags = ["ftbench", recipe.task, m.name] + (["peft"] if weights == JobLayout.ADAPTER else [])
    return f"""---
base_model: {json.dumps(base)}
library_name: {"peft" if weights == JobLayout.ADAPTER else "transformers"}
tags: {json.dumps(tags)}
---

# {recipe.name or "ftbench run"}

Fine-tuned with ftbench ({recipe.task}, {m.name}) on {time.strftime("%Y-%m-%d")}.

- Base model: `{base}`
- Training data: `{recipe.data.train}` (format: {info.get("data_format", recipe.data.format)}, {info.get("train_rows", "?")} rows)
- Eval data: {f"`{recipe.data.eval}`" if recipe.data.eval else (f"{recipe.data.eval_split:.0%} of the training rows" if recipe.data.eval_split else "none")}
- Weights: `{weights}/`{" (a PEFT adapter; load it on top of the base model)" if weights == JobLayout.ADAPTER else ""}

## Hyperparameters

| setting | value |
|---|---|
{rows}

## Final metrics

| metric | value |
|---|---|
{mrows}
"""
