"""Experiment trackers (`training.report_to`): transformers' own callbacks, each writing into the run folder.

ftbench's events.jsonl stays what the app reads; these are for the tools users already use. Every tracker
is an optional package (the `tracking` extra), refused in one sentence naming the extra when missing.
  tensorboard  RUN/tensorboard (event files)
  mlflow       RUN/mlflow, a local file store (`MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri
               RUN/mlflow`); MLFLOW_TRACKING_URI set by the user wins
  wandb        RUN/wandb, offline (WANDB_MODE=offline unless the user set WANDB_MODE; `wandb sync` uploads)
The callbacks read their settings from the environment in `setup`; the variables are set only around that
call where the tracker reads them nowhere else (MLflow's store is the exception, see `_mlflow`).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ftbench.core.errors import FtbenchError
from ftbench.core.layout import JobLayout

TRACKER_PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}


def tracker_callbacks(report_to: list[str], run_dir: Path, run_name: str) -> list[Any]:
    """One callback per tracker, in the order listed."""
    for name in report_to:
        if importlib.util.find_spec(TRACKER_PACKAGES[name]) is None:
            raise FtbenchError(
                f"training.report_to lists {name}, but the {name} package (the `tracking` extra) is not installed here.",
                f"Run `pip install 'ftbench[tracking]'`, or drop {name} from training.report_to.",
            )
    return [BUILDERS[name](run_dir, run_name) for name in report_to]


@contextmanager
def _env(**values: str) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _tensorboard(run_dir: Path, run_name: str) -> Any:
    """Aimed at RUN/tensorboard instead of its default under checkpoints/ (which rotation does not expect)."""
    from transformers.integrations import TensorBoardCallback

    callback = TensorBoardCallback()
    callback.logging_dir = str(run_dir / JobLayout.TENSORBOARD)
    return callback


def _mlflow(run_dir: Path, run_name: str) -> Any:
    """MLflow's client reads its store from process-wide state on every call (not only in `setup`), so the
    job process - which belongs to this run alone - gets the store as its tracking URI for good."""
    from transformers.integrations import MLflowCallback

    store = (run_dir / "mlflow").resolve()
    uri = os.environ.get("MLFLOW_TRACKING_URI") or store.as_uri()
    # MLflow 3 keeps the file store working but asks for this opt-in; a folder needs no database server
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME") or "ftbench"

    class RunFolderMLflow(MLflowCallback):
        def setup(self, args: Any, state: Any, model: Any) -> None:
            self._ml_flow.set_tracking_uri(uri)
            with _env(MLFLOW_EXPERIMENT_NAME=experiment):
                super().setup(args, state, model)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            """Keep the run open: the final evaluation logs after training ends, and an ended run would make
            MLflow start a second one for it. MLflow ends the active run when the job process exits."""

    return RunFolderMLflow()


def _wandb(run_dir: Path, run_name: str) -> Any:
    from transformers.integrations import WandbCallback

    folder = run_dir / "wandb"
    folder.mkdir(parents=True, exist_ok=True)
    settings = {
        "WANDB_MODE": os.environ.get("WANDB_MODE") or "offline",
        "WANDB_DIR": str(run_dir),
        "WANDB_PROJECT": os.environ.get("WANDB_PROJECT") or "ftbench",
        "WANDB_NAME": run_name,
        "WANDB_SILENT": "true",
    }

    class RunFolderWandb(WandbCallback):
        def setup(self, args: Any, state: Any, model: Any, **kwargs: Any) -> None:
            with _env(**settings):
                super().setup(args, state, model, **kwargs)

    return RunFolderWandb()


BUILDERS = {"tensorboard": _tensorboard, "mlflow": _mlflow, "wandb": _wandb}
