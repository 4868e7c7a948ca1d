"""What a job target is handed: the `JobContext` protocol, one for single- and multi-process jobs.

A job's code (train/, export/, demo/) is written against this protocol, so the same training code runs in
the job process (core/job_entry.py `ProcessJobContext`) and in each rank of a multi-process run
(train/rank.py `RankContext`, where only rank 0 writes events and the result). Typing against the protocol
rather than either class keeps core free of train/ and lets tests hand in their own context.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ftbench.core.workspace import Workspace


class JobContext(Protocol):
    job_dir: Path
    id: str
    params: dict[str, Any]
    attempt: int
    rank: int  # 0 in a single-process job; the rank in a multi-process one (only rank 0 writes)
    workspace: Workspace
    # A target that cannot stop at a safe point leaves this False and is interrupted by JobStopped; a training
    # loop sets it True and polls `stop_requested` to save a checkpoint first.
    cooperative_stop: bool
    # Set by a cooperative target that finished all its work although a stop arrived meanwhile (too late to cut
    # anything short): the job then ends `succeeded`, not `stopped`.
    completed: bool

    @property
    def stop_requested(self) -> bool: ...

    def control_requested(self, action: str) -> bool:
        """True once per request file (e.g. `checkpoint`) that `jobs.request_control` dropped."""
        ...

    def emit(self, type: str, **fields: Any) -> dict[str, Any]: ...

    def log(self, message: str, level: str = "info") -> None: ...

    def progress(self, phase: str, done: float | None = None, total: float | None = None, **extra: Any) -> None: ...

    def set_result(self, **fields: Any) -> None:
        """Outputs and final metrics of the job (status.json `result`, and so the registry)."""
        ...
