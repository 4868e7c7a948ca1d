"""One rank of a multi-process run: `accelerate launch ... -m ftbench.train.rank JOB_DIR` (see distributed.py).

Every rank runs the same task code as a single-process job (`worker.train_in_process`), with a `RankContext`
in place of the job process's JobContext. This lives apart from distributed.py because the rank side needs
the worker, while the worker needs distributed.py to decide whether to launch ranks at all.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from ftbench.core.atomic import atomic_write_json
from ftbench.core.events import EventWriter
from ftbench.core.jobs import CONTROL, EVENTS, SPEC
from ftbench.core.recipe import validate_recipe
from ftbench.core.remote_code import job_trust
from ftbench.core.workspace import Workspace
from ftbench.train.distributed import RESULT_FILE
from ftbench.train.parent_watch import watch_parent
from ftbench.train.worker import train_in_process


class RankContext:
    """The JobContext of one rank: rank 0 writes events and the result, every rank sees stop requests."""

    def __init__(self, job_dir: Path) -> None:
        spec = json.loads((job_dir / SPEC).read_text(encoding="utf-8"))
        self.job_dir = job_dir
        self.workspace = Workspace.open(spec["workspace"])
        self.id = spec["id"]
        self.params = spec.get("params", {})
        self.attempt = int(spec.get("attempt", 1))
        self.rank = int(os.environ.get("RANK", "0"))
        self.events = EventWriter(job_dir / EVENTS, attempt=self.attempt) if self.rank == 0 else None
        self.cooperative_stop = True
        self.completed = False
        self._signalled = False
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    def _on_term(self, *_: Any) -> None:
        self._signalled = True

    @property
    def stop_requested(self) -> bool:
        return self._signalled or (self.job_dir / CONTROL / "stop").exists()

    def control_requested(self, action: str) -> bool:
        if self.rank != 0:
            return False
        try:
            (self.job_dir / CONTROL / action).unlink()
            return True
        except FileNotFoundError:
            return False

    def emit(self, type: str, **fields: Any) -> dict[str, Any]:
        return self.events.emit(type, **fields) if self.events else {}

    def log(self, message: str, level: str = "info") -> None:
        if self.rank == 0:
            print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)
            self.emit("log", level=level, message=message)

    def progress(self, phase: str, done: float | None = None, total: float | None = None, **extra: Any) -> None:
        self.emit("progress", phase=phase, done=done, total=total, **extra)

    def set_result(self, **fields: Any) -> None:
        """Rank 0 hands its result to the job process (distributed.launch reads it back)."""
        if self.rank == 0:
            atomic_write_json(self.job_dir / RESULT_FILE, fields)


def rank_main(job_dir: str) -> int:
    """One rank: the same task code as a single process, with a RankContext."""
    watch_parent()  # torchrun's agent: if the launcher dies, the rank ends too
    ctx = RankContext(Path(job_dir))
    recipe = job_trust(validate_recipe(ctx.params["recipe"]))
    result = train_in_process(recipe, ctx, distributed=True)
    ctx.set_result(**{**result, "processes": int(os.environ.get("WORLD_SIZE", "1"))})
    return 0


if __name__ == "__main__":
    sys.exit(rank_main(sys.argv[1]))
