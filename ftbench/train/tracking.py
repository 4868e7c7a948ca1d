"""Experiment trackers (`training.report_to`): transformers' own callbacks, each writing into the run folder.

ftbench's events.jsonl stays what the app reads; these are for the tools users already use. Every tracker
is an optional package (the `tracking` extra), refused in one sentence naming the extra when missing.
  tensorboard  RUN/tensorboard (event files)
  mlflow       RUN/mlflow, a local file store (`MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri
               RUN/mlflow`); MLFLOW_TRACKING_URI set by the user wins
  wandb        RUN/wandb, offline (WANDB_MODE=offline unless the user set WANDB_MODE; `wandb sync` uploads)
  trackio      RUN/trackio, trackio's local SQLite store (`TRACKIO_DIR=RUN/trackio trackio show --project ftbench`);
               always local (`trackio sync` uploads)
The callbacks read their settings from the environment in `setup`; the variables are set only around that
call where the tracker reads them nowhere else; MLflow's store (read on every call) and trackio's (read at
import) are set for good, see `_mlflow` and `_trackio`.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ftbench.core.errors import FtbenchError
from ftbench.core.layout import JobLayout

TRACKER_PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb", "trackio": "trackio"}
TRACKIO_PROJECT = "ftbench"


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


@contextmanager
def _hub_offline() -> Iterator[None]:
    """huggingface_hub's offline switch, read on every request: trackio asks the Hub who the user is (for its
    run config) whenever a token is stored, and a local run has no business on the network."""
    from huggingface_hub import constants

    saved = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved


def _trackio(run_dir: Path, run_name: str) -> Any:
    """trackio fixes its store folder (TRACKIO_DIR) when first imported, so the job process - which belongs to
    this run alone - names it before transformers' callback imports trackio. Local only: the variables that
    would send the run to a Space, a server, a bucket or a dataset (read by trackio whenever it writes or
    reads, not only at start) are dropped from the job's environment; `trackio sync` uploads a finished run."""
    store = (run_dir / "trackio").resolve()
    imported = sys.modules.get("trackio.utils")
    if imported is not None and Path(imported.TRACKIO_DIR) != store:
        raise FtbenchError(
            f"trackio was already imported in this process with its store at {imported.TRACKIO_DIR}, not {store}.",
            "Run each training with report_to: [trackio] in its own process (`ftbench train` does).",
        )
    os.environ["TRACKIO_DIR"] = str(store)
    ignored = [name for name in _TRACKIO_REMOTE if os.environ.pop(name, None) is not None]
    if ignored:
        print(f"trackio logs locally only; ignoring {', '.join(ignored)}.", flush=True)
    from transformers.integrations import TrackioCallback
    from transformers.integrations.integration_utils import rewrite_logs

    class RunFolderTrackio(TrackioCallback):
        trained = False  # training has ended: what logs now is the final evaluation

        def setup(self, args: Any, state: Any, model: Any, **kwargs: Any) -> None:
            local = copy.copy(args)  # the project and run name trackio files the run under; no Space, no bucket
            local.project, local.run_name = TRACKIO_PROJECT, run_name
            local.trackio_space_id = local.trackio_bucket_id = None
            with _hub_offline():
                super().setup(local, state, model, **kwargs)

        def on_log(self, args: Any, state: Any, control: Any, model: Any = None, logs: Any = None, **kw: Any) -> None:
            """Logged at the trainer's step (as events.jsonl and TensorBoard count), not trackio's own counter."""
            if not self._initialized:
                self.setup(args, state, model)
            if state.is_world_process_zero:
                scalars = {k: v for k, v in logs.items() if k not in _SUMMARY_KEYS}
                self._trackio.log({**rewrite_logs(scalars), "train/global_step": state.global_step}, state.global_step)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            """Finish the run (trackio writes from a thread), so the store holds training's metrics before the job
            reports its end; the final evaluation comes after and opens the run again, by name."""
            super().on_train_end(args, state, control, **kwargs)
            self.trained = True

        def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.trained and self._initialized:
                self._trackio.finish()
                self._initialized = False

    shown = shlex.join(["trackio", "show", "--project", TRACKIO_PROJECT])
    print(f"trackio store: {store}; its dashboard: TRACKIO_DIR={shlex.quote(str(store))} {shown}", flush=True)
    return RunFolderTrackio()


_TRACKIO_REMOTE = (
    "TRACKIO_SPACE_ID",
    "TRACKIO_SERVER_URL",
    "TRACKIO_BUCKET_ID",
    "TRACKIO_DATASET_ID",
    "SPACE_REPO_NAME",
)
# the trainer's end-of-training summary, which transformers' callbacks keep out of the step-wise metrics
_SUMMARY_KEYS = {"train_runtime", "train_samples_per_second", "train_steps_per_second", "train_loss", "total_flos"}

BUILDERS = {"tensorboard": _tensorboard, "mlflow": _mlflow, "wandb": _wandb, "trackio": _trackio}
