"""Sharing one box's GPUs between runs: who holds which GPU, who waits, and in what order.

There is no scheduler daemon that could die silently. A run that asks for GPUs (`training.gpus`) is a normal
detached job; before its target starts, the job process itself calls `wait_for_gpus`, which enqueues it in
`gpu-queue.json` in the workspace and polls (with backoff) until `try_acquire` grants it GPUs. Every read and
write of that file happens under one file lock, so two processes never take the same GPU: the grant and the
record of it are one atomic step. An entry whose process is gone (by pid and kernel start time) is dropped
on the next look, so a killed job never holds GPUs forever.

A GPU is free for a run when no live ftbench job holds it and NVML says it has at least the run's VRAM
estimate free (other users' processes count against it). The queue is first come, first served; `move`
reorders it and a stopped job leaves it. The GPU list comes from a sampler (`ftbench.core.gpu.sample_gpus`),
so tests and dry runs use a simulated list: `FTBENCH_SIMULATED_GPUS` names a JSON file of devices.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

from ftbench.core.atomic import atomic_write_json
from ftbench.core.errors import FtbenchError
from ftbench.core.gpu import GpuInfo, GpuReport

QUEUE_FILE = "gpu-queue.json"
LOCK_FILE = ".gpu-queue.lock"
SIMULATED_ENV = "FTBENCH_SIMULATED_GPUS"
GIB = 1024**3

Sampler = Callable[[], GpuReport]
Alive = Callable[[int, "int | None"], bool]


@dataclass(frozen=True)
class GpuRequest:
    """What a run asks for: `count` GPUs (None: every free one, at least one) or exactly `indices`."""

    count: int | None = None
    indices: tuple[int, ...] | None = None
    min_free: int = 0  # bytes each GPU must have free (the run's VRAM estimate)

    @property
    def wanted(self) -> int:
        return len(self.indices) if self.indices is not None else (self.count or 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "indices": list(self.indices) if self.indices is not None else None,
            "min_free": self.min_free,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GpuRequest:
        indices = data.get("indices")
        return cls(data.get("count"), tuple(indices) if indices is not None else None, int(data.get("min_free") or 0))

    def describe(self) -> str:
        """'2 GPUs with >= 14 GiB free', 'GPUs 0, 3 with >= 8 GiB free', 'a GPU'."""
        if self.indices is not None:
            what = f"GPU{'s' if len(self.indices) != 1 else ''} {', '.join(map(str, self.indices))}"
        elif self.count is None:
            what = "a free GPU"
        else:
            what = f"{self.count} GPU{'s' if self.count != 1 else ''}"
        return what + (f" with >= {self.min_free / GIB:.0f} GiB free" if self.min_free else "")


def parse_gpus(value: Any, min_free: int = 0, source: str = "training.gpus") -> GpuRequest:
    """`auto`, a count, a list of indices, or the CLI's '2' / '0,3' / 'auto' into a request."""
    if isinstance(value, str):
        text = value.strip()
        if text == "auto":
            return GpuRequest(None, None, min_free)
        parts = [p.strip() for p in text.strip("[]").split(",") if p.strip()]
        if not parts or not all(p.isdigit() for p in parts):
            raise FtbenchError(
                f"{source} is '{value}', which is not a GPU count or list.",
                "Use auto, a count such as 2, or indices such as 0,3.",
            )
        value = int(parts[0]) if len(parts) == 1 and "," not in text and "[" not in text else [int(p) for p in parts]
    if isinstance(value, bool):
        raise FtbenchError(
            f"{source} is {value}, not a GPU count.", "Use auto, a count such as 2, or a list such as [0, 3]."
        )
    if isinstance(value, int):
        if value < 1:
            raise FtbenchError(
                f"{source} is {value}; a run needs at least one GPU.", "Use auto, or a count of 1 or more."
            )
        return GpuRequest(value, None, min_free)
    if (
        isinstance(value, (list, tuple))
        and value
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
    ):
        if len(set(value)) != len(value):
            raise FtbenchError(f"{source} lists a GPU twice: {list(value)}.", "List each GPU index once.")
        return GpuRequest(None, tuple(value), min_free)
    raise FtbenchError(
        f"{source} is {value!r}, not a GPU count or list.", "Use auto, a count such as 2, or a list such as [0, 3]."
    )


def simulated_sampler(path: str | os.PathLike[str]) -> Sampler:
    """A sampler over a JSON list of devices ({"index", "name", "mem_used", "mem_total"}), re-read each call."""

    def sample() -> GpuReport:
        devices = json.loads(Path(path).read_text(encoding="utf-8"))
        gpus = [
            GpuInfo(
                index=d["index"],
                name=d.get("name", "simulated"),
                mem_used=d.get("mem_used"),
                mem_total=d.get("mem_total"),
            )
            for d in devices
        ]
        return GpuReport(bool(gpus), gpus, reason="" if gpus else "no GPU")

    return sample


def default_sampler() -> Sampler:
    path = os.environ.get(SIMULATED_ENV)
    if path:
        return simulated_sampler(path)
    from ftbench.core.gpu import sample_gpus

    return sample_gpus


def _pid_alive(pid: int, start: int | None) -> bool:
    from ftbench.core.jobs import pid_alive

    return pid_alive(pid, start)


@dataclass
class Decision:
    """The outcome of one look at the queue: the GPUs granted, or the position and why it waits."""

    gpus: list[int] | None
    position: int = 0
    queued: int = 0
    reason: str = ""
    holders: dict[int, str] = field(default_factory=dict)


class GpuQueue:
    """The workspace's GPU assignments and waiting line; every method holds the lock for its whole look."""

    def __init__(self, root: Path, sampler: Sampler | None = None, alive: Alive | None = None) -> None:
        self.path = Path(root) / QUEUE_FILE
        self.lock = FileLock(str(Path(root) / LOCK_FILE))
        self.sampler = sampler or default_sampler()
        self.alive = alive or _pid_alive

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            data = {}
        except ValueError as exc:
            raise FtbenchError(
                f"{self.path} is not valid JSON.", "Delete it; running jobs re-register as they poll."
            ) from exc
        data.setdefault("holding", {})
        data.setdefault("waiting", [])
        return data

    def _prune(self, data: dict[str, Any]) -> None:
        data["holding"] = {k: v for k, v in data["holding"].items() if self.alive(v["pid"], v.get("proc_start"))}
        data["waiting"] = [w for w in data["waiting"] if self.alive(w["pid"], w.get("proc_start"))]

    def enqueue(self, job_id: str, request: GpuRequest, pid: int, proc_start: int | None) -> None:
        with self.lock:
            data = self._load()
            self._prune(data)
            if job_id not in data["holding"] and all(w["job"] != job_id for w in data["waiting"]):
                data["waiting"].append(
                    {
                        "job": job_id,
                        "pid": pid,
                        "proc_start": proc_start,
                        "request": request.to_dict(),
                        "since": time.time(),
                    }
                )
            atomic_write_json(self.path, data)

    def try_acquire(self, job_id: str) -> Decision:
        """Grant the GPUs if this job is first in line and they are free now; else say where it stands."""
        with self.lock:
            data = self._load()
            self._prune(data)
            waiting = data["waiting"]
            index = next((i for i, w in enumerate(waiting) if w["job"] == job_id), None)
            if job_id in data["holding"]:
                return Decision(list(data["holding"][job_id]["gpus"]))
            if index is None:
                raise FtbenchError(f"Job {job_id} is not in the GPU queue.", "It was removed; start the run again.")
            entry = waiting[index]
            request = GpuRequest.from_dict(entry["request"])
            holders = {g: job for job, held in data["holding"].items() for g in held["gpus"]}
            report = self.sampler()
            free, reason = free_gpus(report, request, holders)
            if index > 0:
                ahead = waiting[index - 1]["job"]
                atomic_write_json(self.path, data)
                return Decision(
                    None,
                    index + 1,
                    len(waiting),
                    f"waiting behind {index} queued run{'s' if index != 1 else ''} (next: {ahead})",
                    holders,
                )
            if free is None:
                atomic_write_json(self.path, data)
                return Decision(None, 1, len(waiting), reason, holders)
            waiting.pop(index)
            data["holding"][job_id] = {
                "gpus": free,
                "pid": entry["pid"],
                "proc_start": entry.get("proc_start"),
                "since": time.time(),
            }
            atomic_write_json(self.path, data)
            return Decision(free)

    def release(self, job_id: str) -> None:
        with self.lock:
            data = self._load()
            data["holding"].pop(job_id, None)
            data["waiting"] = [w for w in data["waiting"] if w["job"] != job_id]
            self._prune(data)
            atomic_write_json(self.path, data)

    def move(self, job_id: str, position: int) -> list[str]:
        """Put a waiting job at 1-based `position` (clamped); returns the new order."""
        with self.lock:
            data = self._load()
            self._prune(data)
            waiting = data["waiting"]
            index = next((i for i, w in enumerate(waiting) if w["job"] == job_id), None)
            if index is None:
                raise FtbenchError(
                    f"Job {job_id} is not waiting for GPUs.", "See the waiting runs with `ftbench queue`."
                )
            entry = waiting.pop(index)
            waiting.insert(max(0, min(position - 1, len(waiting))), entry)
            atomic_write_json(self.path, data)
            return [w["job"] for w in waiting]

    def snapshot(self) -> dict[str, Any]:
        """{"holding": {job: {gpus, ...}}, "waiting": [{job, request, ...}, ...]} with dead entries dropped."""
        with self.lock:
            data = self._load()
            self._prune(data)
            return data


def free_gpus(report: GpuReport, request: GpuRequest, holders: dict[int, str]) -> tuple[list[int] | None, str]:
    """The GPUs to grant now, or None and the reason in one phrase ("waiting for 2 GPUs with >= 14 GiB free")."""
    if not report.available:
        return None, f"waiting for {request.describe()}: {report.summary}"
    by_index = {g.index: g for g in report.gpus}

    def usable(index: int) -> bool:
        gpu = by_index.get(index)
        if gpu is None or index in holders:
            return False
        if request.min_free and gpu.mem_total is not None and gpu.mem_used is not None:
            return gpu.mem_total - gpu.mem_used >= request.min_free
        return True

    if request.indices is not None:
        unknown = [i for i in request.indices if i not in by_index]
        if unknown:
            raise FtbenchError(
                f"training.gpus asks for GPU {', '.join(map(str, unknown))}, but this machine has GPUs {', '.join(map(str, sorted(by_index)))}.",
                "Pick indices from `ftbench doctor`'s GPU list.",
            )
        busy = [i for i in request.indices if not usable(i)]
        if not busy:
            return list(request.indices), ""
        detail = ", ".join(f"GPU {i} " + (f"held by {holders[i]}" if i in holders else "short of memory") for i in busy)
        return None, f"waiting for {request.describe()} ({detail})"
    if request.count is not None and request.count > len(by_index):
        raise FtbenchError(
            f"training.gpus asks for {request.count} GPUs, but this machine has {len(by_index)}.",
            "Lower training.gpus, or run on a cluster with `--on slurm`.",
        )
    ready = [i for i in sorted(by_index) if usable(i)]
    if request.count is None:
        return (ready, "") if ready else (None, f"waiting for {request.describe()}")
    if len(ready) >= request.count:
        return ready[: request.count], ""
    return None, f"waiting for {request.describe()} ({len(ready)} free now)"


def visible_devices_env(gpus: list[int]) -> dict[str, str]:
    """The environment that shows a job exactly its GPUs, numbered as NVML (PCI bus order) numbers them."""
    return {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": ",".join(map(str, gpus))}


def wait_for_gpus(
    queue: GpuQueue,
    job_id: str,
    request: GpuRequest,
    should_stop: Callable[[], bool],
    on_wait: Callable[[Decision], None],
    first_poll_s: float = 0.5,
    max_poll_s: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[int] | None:
    """Enqueue and poll until granted (the GPU indices) or stopped (None). `on_wait` hears each change."""
    from ftbench.core.jobs import proc_start_time

    queue.enqueue(job_id, request, os.getpid(), proc_start_time(os.getpid()))
    delay, last = first_poll_s, None
    try:
        while True:
            if should_stop():
                queue.release(job_id)
                return None
            decision = queue.try_acquire(job_id)
            if decision.gpus is not None:
                return decision.gpus
            key = (decision.position, decision.queued, decision.reason)
            if key != last:
                on_wait(decision)
                last, delay = key, first_poll_s
            sleep(delay)
            delay = min(max_poll_s, delay * 1.5)
    except BaseException:
        queue.release(job_id)
        raise


def request_for_recipe(
    recipe: Any, override: str | None = None, sampler: Sampler | None = None
) -> dict[str, Any] | None:
    """The `gpu_request` job parameter for a training recipe (and `--gpus`), or None to start at once.

    `auto` on a machine without GPUs runs on the CPU as before; an explicit count or list there is an error
    now rather than a run that waits forever.
    """
    from ftbench.core.estimate import estimate_for_recipe

    value = override if override is not None else recipe.training.gpus
    request = parse_gpus(value, source="--gpus" if override is not None else "training.gpus")
    report = (sampler or default_sampler())()
    if not report.available:
        if request.count is None and request.indices is None:
            return None
        raise FtbenchError(
            f"{'--gpus' if override is not None else 'training.gpus'} asks for {request.describe()}, but {report.summary}.",
            "Use --gpus auto to train on the CPU here, or run on a GPU machine.",
        )
    free_gpus(report, request, {})  # a count above the GPUs here, or an index that is not here, fails now
    estimate = estimate_for_recipe(recipe)
    return GpuRequest(request.count, request.indices, estimate.total if estimate else 0).to_dict()
