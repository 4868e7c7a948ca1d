"""Every file name inside a job folder, in one place.

A job folder is the job's truth (status, events, log, what it was asked to do); a training run's folder also
holds its weights and checkpoints. Writers and readers both take names from `JobLayout`, so the folder's shape
is decided here and nowhere else. No imports beyond the standard library: the job process, the TUI and the
catalog all read it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

CHECKPOINT_RE = re.compile(r"checkpoint-(\d+)")


def state_is_whole(path: Path) -> bool:
    """True when `path` is a complete JSON object. The Trainer writes it with indent=2, so a whole file ends in
    a closing brace at column 0, which no truncated one does; other writers' files are parsed to be sure."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - 3))
            if handle.read() == b"\n}\n":
                return True
            handle.seek(0)
            return isinstance(json.loads(handle.read()), dict)
    except (OSError, ValueError):
        return False


@dataclass(frozen=True)
class Checkpoint:
    """One `checkpoints/checkpoint-N` folder; `complete` once the trainer wrote its trainer_state.json last, whole.

    The Trainer writes weights, optimizer, scheduler and RNG state first and trainer_state.json after them, so
    a well-formed trainer_state.json is the checkpoint's commit mark: a save cut short (killed, disk full) has
    none, or a truncated one, and is never resumed from, exported or chatted with.
    """

    step: int
    path: Path
    complete: bool

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class JobLayout:
    """The names inside a job folder (`dir`), and the paths they give."""

    dir: Path

    STATUS = "status.json"  # the job's state, written under a lock (core/jobs.py)
    SPEC = "job.json"  # what to run: kind, target, params, attempt
    LOG = "log.txt"  # stdout and stderr of the job process
    EVENTS = "events.jsonl"  # progress, metrics, checkpoints (core/events.py)
    CONTROL = "control"  # a folder of request files (stop, checkpoint) the job polls
    RECIPE = "recipe.yaml"  # a training run's recipe, as validated
    ADAPTER = "adapter"  # PEFT weights of a LoRA / QLoRA / prompt-tuning run
    MODEL = "model"  # full weights of a full fine-tune
    CHECKPOINTS = "checkpoints"  # checkpoint-N folders written by the trainer
    TASK_FILE = "ftbench_task.json"  # in adapter/ or model/: task facts `predict` needs
    METRICS = "metrics.json"  # final metrics of a training run
    README = "README.md"  # the run's model card
    TRAINER_STATE = "trainer_state.json"  # in a checkpoint: written last, so it marks a complete one
    TENSORBOARD = "tensorboard"  # event files when the recipe has training.report_to: [tensorboard]
    CHECKPOINT_MARK = "ftbench-checkpoint.json"  # in a checkpoint: ftbench's signature (core/checkpoint_trust.py)
    LOCK = ".status.lock"
    MERGED = "merged"  # an export's merged base+adapter, kept when asked (--keep); else SCRATCH_MERGED
    SCRATCH_MERGED = ".merged"  # an export's merge while it is only an intermediate: hidden from listings
    PARTIAL_SUFFIX = ".partial"  # a file or folder being written, renamed to its name once complete
    INTERMEDIATE_SUFFIX = ".intermediate"  # a file only a later step needs (an export's F16 before K-quants)

    @property
    def status(self) -> Path:
        return self.dir / self.STATUS

    @property
    def spec(self) -> Path:
        return self.dir / self.SPEC

    @property
    def log(self) -> Path:
        return self.dir / self.LOG

    @property
    def events(self) -> Path:
        return self.dir / self.EVENTS

    @property
    def control(self) -> Path:
        return self.dir / self.CONTROL

    def control_file(self, action: str) -> Path:
        return self.control / action

    @property
    def recipe(self) -> Path:
        return self.dir / self.RECIPE

    @property
    def adapter(self) -> Path:
        return self.dir / self.ADAPTER

    @property
    def model(self) -> Path:
        return self.dir / self.MODEL

    @property
    def checkpoints_dir(self) -> Path:
        return self.dir / self.CHECKPOINTS

    @property
    def metrics(self) -> Path:
        return self.dir / self.METRICS

    @property
    def readme(self) -> Path:
        return self.dir / self.README

    @property
    def lock(self) -> Path:
        return self.dir / self.LOCK

    def scratch(self) -> list[Path]:
        """What a job that ended (or died) leaves that is no result: `.partial` writes and intermediates."""
        try:
            children = list(self.dir.iterdir())
        except OSError:
            return []
        ends = (self.PARTIAL_SUFFIX, self.INTERMEDIATE_SUFFIX)
        return [c for c in children if c.name.endswith(ends) or c.name == self.SCRATCH_MERGED]

    def is_job(self) -> bool:
        return self.status.is_file()

    def final_output(self) -> Path | None:
        """The trained weights (adapter/ or model/) once training saved them, else None."""
        for folder in (self.adapter, self.model):
            if folder.is_dir():
                return folder
        return None

    def weight_folders(self) -> list[Path]:
        """adapter/ and model/ that exist, in that order."""
        return [folder for folder in (self.adapter, self.model) if folder.is_dir()]

    def checkpoints(self) -> list[Checkpoint]:
        """checkpoint-N folders by step, complete or not."""
        if not self.checkpoints_dir.is_dir():
            return []
        found = []
        for child in self.checkpoints_dir.iterdir():
            match = CHECKPOINT_RE.fullmatch(child.name)
            if match and child.is_dir():
                found.append(Checkpoint(int(match.group(1)), child, state_is_whole(child / self.TRAINER_STATE)))
        return sorted(found, key=lambda c: c.step)

    def last_checkpoint(self) -> Checkpoint | None:
        """The newest complete checkpoint: a half-written one (killed mid-save) is never resumed from or loaded."""
        complete = [c for c in self.checkpoints() if c.complete]
        return complete[-1] if complete else None
