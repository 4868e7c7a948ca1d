"""Running a job on a Slurm cluster: the sbatch script, submission, Slurm's view of the job, cancel.

ftbench hands the allocation to Slurm and keeps its own promise: the job folder on the shared file system
is the truth. `submit_job` writes `slurm.sbatch` into the job folder and submits it; the batch script
`exec`s the usual `python -m ftbench.core.job_entry JOB_DIR`, so the worker writes the same status.json,
events.jsonl and log.txt as a local job. Until that process starts, the job is `queued` and `refresh`
asks Slurm (squeue, then scontrol, then sacct) for its state and pending reason. A job Slurm ends on its
own (time limit, preemption, node failure) becomes `failed` with Slurm's reason; `resume` resubmits.

Several nodes: the batch script names the first node of the allocation (`FTBENCH_MAIN_NODE`) and a port
derived from the job id; the training worker then starts `srun ... node.sh`, one `accelerate launch` per
node with `--machine_rank $SLURM_NODEID`, and rank 0 alone writes events and checkpoints.

Torch-free, and every Slurm command is an argument list (never a shell string).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ftbench.core.atomic import atomic_write_text
from ftbench.core.errors import FtbenchError

SCRIPT = "slurm.sbatch"
NODE_SCRIPT = "node.sh"
NODES_ENV = "FTBENCH_SLURM_NODES"
MAIN_NODE_ENV = "FTBENCH_MAIN_NODE"
MAIN_PORT_ENV = "FTBENCH_MAIN_PORT"
PRECISION_ENV = "FTBENCH_MIXED_PRECISION"
PORT_BASE = 20000
PENDING_STATES = ("PENDING", "CONFIGURING", "REQUEUED", "RESV_DEL_HOLD", "REQUEUE_HOLD", "REQUEUE_FED", "SUSPENDED")
LIVE_STATES = (*PENDING_STATES, "RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING", "RESIZING")
# Slurm's final states that mean "Slurm ended it", with what to tell the user.
ENDED_BY_SLURM = {
    "TIMEOUT": "the job reached its time limit (--time)",
    "PREEMPTED": "the job was preempted by a higher-priority job",
    "NODE_FAIL": "a node of the job failed",
    "BOOT_FAIL": "a node of the job failed to boot",
    "OUT_OF_MEMORY": "the job ran out of host memory",
    "DEADLINE": "the job reached its deadline",
    "CANCELLED": "the job was cancelled outside ftbench (scancel or an administrator)",
    "FAILED": "the batch script exited with an error before ftbench's worker recorded anything",
    "COMPLETED": "the batch script ended before ftbench's worker recorded anything",
}
# While Slurm is still killing a job it shows COMPLETING; the reason already says which end it will record.
COMPLETING_REASONS = {"TimeLimit": "TIMEOUT", "NodeDown": "NODE_FAIL", "Preempted": "PREEMPTED", "DeadLine": "DEADLINE"}
_TIME = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$|^\d+-\d+$")
_NAME = re.compile(r"^[A-Za-z0-9_.,:-]+$")


@dataclass(frozen=True)
class SlurmOptions:
    """Where and how big: the sbatch options ftbench sets (the rest come from the cluster's defaults)."""

    partition: str | None = None
    nodes: int = 1
    gpus_per_node: int = 0
    time: str | None = None
    account: str | None = None
    cpus_per_task: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def merged(self, **overrides: Any) -> SlurmOptions:
        """These options with every non-None override applied (CLI flags over ftbench.toml)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def validate(self) -> SlurmOptions:
        if self.nodes < 1:
            raise FtbenchError(f"--nodes is {self.nodes}; a job needs at least one node.", "Pass --nodes 1 or more.")
        if self.gpus_per_node < 0:
            raise FtbenchError(f"--gpus-per-node is {self.gpus_per_node}.", "Pass 0 (CPU only) or more.")
        if self.cpus_per_task is not None and self.cpus_per_task < 1:
            raise FtbenchError(f"cpus_per_task is {self.cpus_per_task}.", "Use 1 or more, or leave it unset.")
        if self.time is not None and not _TIME.match(self.time):
            raise FtbenchError(
                f"--time '{self.time}' is not a Slurm time limit.",
                "Use minutes (30), HH:MM:SS (2:00:00) or D-HH:MM:SS (1-12:00:00).",
            )
        for key in ("partition", "account"):
            value = getattr(self, key)
            if value is not None and not _NAME.match(value):
                raise FtbenchError(
                    f"--{key} '{value}' has characters Slurm does not allow in a {key} name.",
                    "Use letters, digits, '_', '-' and '.'.",
                )
        return self


@dataclass(frozen=True)
class SlurmState:
    """Slurm's view of one job: `state` as squeue/sacct spell it (PENDING, RUNNING, TIMEOUT, ...)."""

    state: str
    reason: str = ""
    completing: bool = False  # Slurm is still ending it (`state` is the end it will record)

    @property
    def pending(self) -> bool:
        return self.state in PENDING_STATES

    @property
    def live(self) -> bool:
        """Its processes may still run (and write their final state): not yet an end to record for them."""
        return self.completing or self.state in LIVE_STATES


def require_slurm() -> None:
    missing = [cmd for cmd in ("sbatch", "squeue", "scancel") if shutil.which(cmd) is None]
    if missing:
        raise FtbenchError(
            f"Slurm's {', '.join(missing)} is not on PATH, so --on slurm cannot submit.",
            "Run ftbench on the cluster's login node (where `sbatch` works), or train locally without --on slurm.",
        )


def _q(value: str | os.PathLike[str]) -> str:
    return shlex.quote(str(value))


def render_sbatch(job_dir: Path, job_id: str, options: SlurmOptions, python: str = sys.executable) -> str:
    """The batch script: sbatch options, the first node and port for multi-node, then the job process."""
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name=ftbench-{re.sub(r'[^A-Za-z0-9_.-]', '-', job_id)[:60]}",
        "#SBATCH --output=slurm-%j.out",
        f"#SBATCH --nodes={options.nodes}",
        "#SBATCH --ntasks-per-node=1",
    ]
    if options.gpus_per_node:
        lines.append(f"#SBATCH --gpus-per-node={options.gpus_per_node}")
    if options.cpus_per_task:
        lines.append(f"#SBATCH --cpus-per-task={options.cpus_per_task}")
    for key in ("time", "partition", "account"):
        if getattr(options, key):
            lines.append(f"#SBATCH --{key}={getattr(options, key)}")
    lines += [
        f"# Written by ftbench for job {job_id}; submitted with `sbatch {SCRIPT}` from the job folder.",
        "# The job process writes status.json, events.jsonl and log.txt here, as a local job does.",
        *(
            [
                f"# {options.nodes} nodes: the job process starts `{' '.join(srun_command(Path('.'), options.nodes)[:-1])} {NODE_SCRIPT}`,",
                "# one `accelerate launch --machine_rank $SLURM_NODEID` per node (see node.sh).",
            ]
            if options.nodes > 1
            else []
        ),
        "set -euo pipefail",
        f'{MAIN_NODE_ENV}="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"',
        f"{MAIN_PORT_ENV}=$(( {PORT_BASE} + SLURM_JOB_ID % 20000 ))",
        f"export {MAIN_NODE_ENV} {MAIN_PORT_ENV}",
        f"export {NODES_ENV}={options.nodes}",
        "export PYTHONUNBUFFERED=1",
        f"cd {_q(job_dir)}",
        f"exec {_q(python)} -m ftbench.core.job_entry {_q(job_dir)} >>{_q(job_dir / 'log.txt')} 2>&1",
        "",
    ]
    return "\n".join(lines)


def render_node_script(
    job_dir: Path,
    options: SlurmOptions,
    distributed: str = "ddp",
    deepspeed_stage: int = 2,
    python: str = sys.executable,
) -> str:
    """What `srun` runs once per node: one `accelerate launch` for that node's GPUs, ranked by $SLURM_NODEID."""
    per_node = max(1, options.gpus_per_node)
    backend = {"fsdp": ["--use_fsdp"], "deepspeed": ["--use_deepspeed", "--zero_stage", str(deepspeed_stage)]}.get(
        distributed, ["--multi_gpu"]
    )
    args = [
        f"exec {_q(python)} -m accelerate.commands.launch",
        f"--num_machines {options.nodes} --num_processes {options.nodes * per_node}",
        '--machine_rank "$SLURM_NODEID"',
        f'--main_process_ip "${MAIN_NODE_ENV}" --main_process_port "${MAIN_PORT_ENV}"',
        f'--same_network --dynamo_backend no --mixed_precision "${{{PRECISION_ENV}:-bf16}}"',
        " ".join(backend),
        f"-m ftbench.train.distributed {_q(job_dir)}",
    ]
    return "\n".join(
        [
            "#!/bin/bash",
            "# Started by `srun` on every node of the allocation; accelerate starts this node's ranks.",
            "set -euo pipefail",
            " \\\n  ".join(args),
            "",
        ]
    )


def srun_command(job_dir: Path, nodes: int) -> list[str]:
    """The worker's launch of node.sh on every node (one task per node; any failed node ends them all)."""
    return [
        "srun",
        f"--nodes={nodes}",
        "--ntasks-per-node=1",
        "--kill-on-bad-exit=1",
        "bash",
        str(job_dir / NODE_SCRIPT),
    ]


def slurm_nodes() -> int:
    """How many nodes this process's Slurm job spans (1 outside Slurm)."""
    try:
        return max(1, int(os.environ.get(NODES_ENV, "1")))
    except ValueError:
        return 1


def write_scripts(job_dir: Path, job_id: str, options: SlurmOptions, recipe: Any = None) -> Path:
    script = job_dir / SCRIPT
    atomic_write_text(script, render_sbatch(job_dir, job_id, options))
    if options.nodes > 1 and recipe is not None:
        atomic_write_text(
            job_dir / NODE_SCRIPT,
            render_node_script(job_dir, options, recipe.training.distributed, recipe.training.deepspeed_stage),
        )
    return script


def _run(
    argv: list[str], cwd: Path | None = None, timeout: float = 30.0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv,
            cwd=str(cwd) if cwd else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **env} if env else None,
        )
    except FileNotFoundError as exc:
        raise FtbenchError(f"`{argv[0]}` is not installed here.", "Run ftbench where Slurm's commands work.") from exc
    except subprocess.TimeoutExpired as exc:
        raise FtbenchError(
            f"`{' '.join(argv)}` did not answer within {timeout:g} s.", "The Slurm controller may be down; try again."
        ) from exc


def submit(job_dir: Path, env: dict[str, str] | None = None) -> str:
    """sbatch the job folder's script, `env` added to what it exports to the job; returns Slurm's job id."""
    out = _run(["sbatch", "--parsable", SCRIPT], cwd=job_dir, env=env)
    if out.returncode != 0:
        raise FtbenchError(
            f"sbatch refused the job: {(out.stderr or out.stdout).strip()}",
            f"Check the options in {job_dir / SCRIPT} against `sinfo` (partition, time, GPUs).",
        )
    return out.stdout.strip().split(";")[0]


def query(slurm_id: str) -> SlurmState | None:
    """Slurm's state of a job: squeue while it is known there, then scontrol, then sacct; None if nobody knows."""
    out = _run(["squeue", "-h", "-j", slurm_id, "-o", "%T|%r"])
    if out.returncode == 0 and out.stdout.strip():
        state, _, reason = out.stdout.strip().splitlines()[0].partition("|")
        if state != "COMPLETING" or reason in COMPLETING_REASONS:
            return _state(state, reason)
    out = _run(["scontrol", "show", "job", "-o", slurm_id])
    if out.returncode == 0 and "JobState=" in out.stdout:
        fields = dict(re.findall(r"(\w+)=(\S*)", out.stdout))
        state, reason = fields.get("JobState", "UNKNOWN"), fields.get("Reason", "")
        return _state(state, reason)
    if shutil.which("sacct"):
        out = _run(["sacct", "-n", "-X", "-P", "-j", slurm_id, "-o", "State,Reason"])
        if out.returncode == 0 and out.stdout.strip():
            state, _, reason = out.stdout.strip().splitlines()[0].partition("|")
            return SlurmState(state.split()[0], reason)
    return None


def _state(state: str, reason: str) -> SlurmState:
    if state == "COMPLETING":
        return SlurmState(COMPLETING_REASONS.get(reason, state), reason, completing=True)
    return SlurmState(state, reason)


def cancel(slurm_id: str, signal_name: str | None = None) -> None:
    """scancel the job; with a signal, only send it to the batch process (the job process saves first)."""
    argv = ["scancel", *([f"--signal={signal_name}", "--batch"] if signal_name else []), slurm_id]
    out = _run(argv)
    if out.returncode != 0 and "Invalid job id" not in out.stderr and "already completing" not in out.stderr:
        raise FtbenchError(f"scancel {slurm_id} failed: {out.stderr.strip()}", "Cancel it by hand with `scancel`.")


def ended_by_slurm(state: SlurmState) -> dict[str, str]:
    """The `error` of a job Slurm ended: its state, reason and what to do."""
    why = ENDED_BY_SLURM.get(state.state, f"Slurm ended the job ({state.state})")
    reason = f", reason {state.reason}" if state.reason and state.reason != "None" else ""
    return {
        "message": f"Slurm ended the job: {state.state}{reason}: {why}.",
        "hint": "Resume it from its last checkpoint with `ftbench resume ID` (a longer --time or another partition may help).",
    }
