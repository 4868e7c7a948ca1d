"""Task dispatch: the worker validates the recipe, then hands the run to the task's module (TaskSpec.trainer).

The interface every task module implements (sft, dpo here; classification, ner, qa by the encoder tasks):

    def preflight(recipe: Recipe, session: Session) -> None
        Optional. Fast checks before any model loads (read and check the data, detect the format); raise
        FtbenchError for anything the user can fix. May stash what it read on `session.state`.

    def train(recipe: Recipe, ctx: JobContext, session: Session) -> dict[str, Any]
        Owns data preparation, the model class, the Trainer and the metrics. Build TrainingArguments with
        `session.training_args(...)`, add `session.callbacks(token_counter)` to the Trainer, run it with
        `session.run_trainer(trainer)` (resume, stop, GPU sampling), then `session.save_outputs(...)`.
        Returns the final metrics (they land in status.json `result`, the registry and the model card).

`ftbench.train.session.Session` carries the run folder, precision, resume checkpoint and helpers; see there.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ftbench.core.errors import FtbenchError
from ftbench.core.specs import task_spec


def task_module(task: str) -> ModuleType:
    """The module that trains `task` (its TaskSpec's `trainer`), with a clear error when it is missing."""
    name = task_spec(task).trainer
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        raise FtbenchError(
            f"Task '{task}' is not available in this ftbench install ({name} is missing).", "Update ftbench."
        ) from exc
