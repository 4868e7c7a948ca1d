"""Several processes (DDP; FSDP or DeepSpeed from the recipe) through `accelerate launch`.

The job process stays the one the job system knows (its pid, status and final state); it starts
`accelerate launch --num_processes N -m ftbench.train.rank JOB_DIR` in its own process group, so a
stop reaches the ranks as SIGTERM and through the `control/stop` file that `ftbench stop` writes. Every rank
runs the same task code (ftbench/train/rank.py) with a `RankContext`: rank 0 writes events and outputs, the others stay silent;
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
from typing import TYPE_CHECKING, Any

from ftbench.core.errors import FtbenchError
from ftbench.core.recipe import DDP_CPU_ENV, Recipe
from ftbench.core.slurm import PRECISION_ENV
from ftbench.train.parent_watch import PARENT_ENV

if TYPE_CHECKING:
    from ftbench.core.job_context import JobContext

RESULT_FILE = "result-rank0.json"
CPU_ENV = DDP_CPU_ENV


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

    # loopback_launch wraps `accelerate launch` so that the rendezvous store listens on 127.0.0.1 only.
    cmd = [
        sys.executable,
        "-m",
        "ftbench.train.loopback_launch",
        "--num_processes",
        str(n),
        "--num_machines",
        "1",
        "--main_process_ip",
        "127.0.0.1",
        "--main_process_port",
        str(_free_port()),
        "--dynamo_backend",
        "no",
        "--mixed_precision",
        {"bf16": "bf16", "fp16": "fp16"}.get(precision, "no"),
    ]
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
    return [*cmd, "-m", "ftbench.train.rank", str(job_dir)]


def launch_env(one_machine: bool = True) -> dict[str, str]:
    """The ranks' environment. On one machine gloo and NCCL talk over loopback (unless the user chose
    otherwise); across Slurm nodes they must use the real network, so nothing is pinned."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if one_machine:
        for var in ("GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME"):
            env.setdefault(var, "lo")
    return env


def launch(recipe: Recipe, ctx: JobContext, n: int, precision: str) -> dict[str, Any]:
    """Run the ranks and wait; returns rank 0's result. Raises on a failed rank."""
    result_path = Path(ctx.job_dir) / RESULT_FILE
    result_path.unlink(missing_ok=True)
    cmd = launch_command(recipe, Path(ctx.job_dir), n, precision)
    ctx.log(f"Launching {n} processes: {' '.join(cmd[2:] if cmd[0] == sys.executable else cmd)}")
    from ftbench.core.slurm import slurm_nodes

    env = {
        **launch_env(one_machine=slurm_nodes() <= 1),
        PRECISION_ENV: {"bf16": "bf16", "fp16": "fp16"}.get(precision, "no"),
        PARENT_ENV: str(os.getpid()),  # the launcher dies with this job process (train/parent_watch.py)
    }
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
    raise FtbenchError(
        f"The distributed training processes failed (exit code {proc.returncode}).",
        f"The ranks' output is in {Path(ctx.job_dir) / 'log.txt'}.",
    )
