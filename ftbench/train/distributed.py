"""Several processes (DDP; FSDP or DeepSpeed from the recipe) through `accelerate launch`.

The job process stays the one the job system knows (its pid, status and final state); it starts
`accelerate launch --num_processes N -m ftbench.train.distributed JOB_DIR` in its own process group, so a
stop reaches the ranks as SIGTERM and through the `control/stop` file that `ftbench stop` writes. Every rank
runs the same task code with a `RankContext`: rank 0 writes events and outputs, the others stay silent;
stop and checkpoint-now decisions are all-reduced between ranks every step (see ControlCallback), so all
ranks save the same checkpoint at the same step. On a machine without GPUs, `FTBENCH_DDP_CPU=1` allows N
CPU processes with the gloo backend (how the tests exercise this path).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ftbench.core.errors import FtbenchError
from ftbench.core.recipe import Recipe
from ftbench.core.slurm import PRECISION_ENV

RESULT_FILE = "result-rank0.json"
CPU_ENV = "FTBENCH_DDP_CPU"


def process_count(recipe: Recipe) -> int:
    """How many training processes the recipe asks for on this machine (1 = no launcher)."""
    import torch

    devices = recipe.training.devices
    gpus = torch.cuda.device_count()
    if devices == "auto":
        return gpus if gpus > 1 else 1
    if devices > 1 and gpus < devices and os.environ.get(CPU_ENV) != "1":
        raise FtbenchError(
            f"training.devices is {devices} but this machine has {gpus} GPU{'s' if gpus != 1 else ''}.",
            "Set training.devices: auto (or a number up to the GPU count).",
        )
    return devices


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_command(recipe: Recipe, job_dir: Path, n: int, precision: str) -> list[str]:
    """`accelerate launch` for this machine's ranks, or under a multi-node Slurm job `srun node.sh` on every node."""
    import torch

    from ftbench.core.slurm import slurm_nodes, srun_command

    if slurm_nodes() > 1:
        return srun_command(job_dir, slurm_nodes())

    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(n), "--num_machines", "1",
           "--main_process_port", str(_free_port()), "--dynamo_backend", "no",
           "--mixed_precision", {"bf16": "bf16", "fp16": "fp16"}.get(precision, "no")]
    # `--cpu` would make accelerate start one process; torchrun (the multi_gpu launcher) runs N CPU processes
    # just as well, and the Trainer picks the gloo backend when there is no CUDA.
    if not torch.cuda.is_available():
        cmd.append("--multi_gpu")
    elif recipe.training.distributed == "fsdp":
        cmd.append("--use_fsdp")
    elif recipe.training.distributed == "deepspeed":
        cmd += ["--use_deepspeed", "--zero_stage", str(recipe.training.deepspeed_stage)]
    else:
        cmd.append("--multi_gpu")
    return [*cmd, "-m", "ftbench.train.distributed", str(job_dir)]


def launch(recipe: Recipe, ctx: Any, n: int, precision: str) -> dict[str, Any]:
    """Run the ranks and wait; returns rank 0's result. Raises on a failed rank."""
    result_path = Path(ctx.job_dir) / RESULT_FILE
    result_path.unlink(missing_ok=True)
    cmd = launch_command(recipe, Path(ctx.job_dir), n, precision)
    ctx.log(f"Launching {n} processes: {' '.join(cmd[2:] if cmd[0] == sys.executable else cmd)}")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", PRECISION_ENV: {"bf16": "bf16", "fp16": "fp16"}.get(precision, "no")}
    proc = subprocess.Popen(cmd, cwd=str(ctx.job_dir), start_new_session=True, env=env)
    try:
        while proc.poll() is None:
            time.sleep(0.5)
    finally:
        if proc.poll() is None:  # our own job is ending abnormally: take the ranks with us
            os.killpg(proc.pid, signal.SIGKILL)
    if result_path.is_file():
        return json.loads(result_path.read_text(encoding="utf-8"))
    if ctx.stop_requested:
        return {}
    raise FtbenchError(f"The distributed training processes failed (exit code {proc.returncode}).", f"The ranks' output is in {Path(ctx.job_dir) / 'log.txt'}.")


class RankContext:
    """JobContext's interface for one rank: rank 0 writes events, every rank sees stop requests."""

    def __init__(self, job_dir: Path) -> None:
        from ftbench.core.events import EventWriter

        spec = json.loads((job_dir / "job.json").read_text(encoding="utf-8"))
        self.job_dir = job_dir
        self.id = spec["id"]
        self.params = spec.get("params", {})
        self.attempt = int(spec.get("attempt", 1))
        self.rank = int(os.environ.get("RANK", "0"))
        self.events = EventWriter(job_dir / "events.jsonl", attempt=self.attempt) if self.rank == 0 else None
        self.cooperative_stop = True
        self._signalled = False
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    def _on_term(self, *_: Any) -> None:
        self._signalled = True

    @property
    def stop_requested(self) -> bool:
        return self._signalled or (self.job_dir / "control" / "stop").exists()

    def control_requested(self, action: str) -> bool:
        if self.rank != 0:
            return False
        try:
            (self.job_dir / "control" / action).unlink()
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


def rank_main(job_dir: str) -> int:
    """One rank: the same task code as a single process, with a RankContext."""
    from ftbench.core.atomic import atomic_write_json
    from ftbench.core.recipe import validate_recipe
    from ftbench.train.worker import train_in_process

    ctx = RankContext(Path(job_dir))
    recipe = validate_recipe(ctx.params["recipe"])
    result = train_in_process(recipe, ctx, distributed=True)
    if ctx.rank == 0:
        atomic_write_json(Path(job_dir) / RESULT_FILE, {**result, "processes": int(os.environ.get("WORLD_SIZE", "1"))})
    return 0


if __name__ == "__main__":
    sys.exit(rank_main(sys.argv[1]))
