"""training.devices: 2 through `accelerate launch` (DDP), on the CPU with 2 gloo processes.

FTBENCH_DDP_CPU=1 lets a GPU-less machine run N CPU ranks; the launch line, the rank contexts (rank 0
writes events and outputs), the per-step agreement on stop/checkpoint and the result hand-off are the
same as on GPUs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from test_train_tasks import toy_alpaca, write_jsonl

from ftbench.core.events import read_events
from ftbench.core.jobs import find_job

REPO = Path(__file__).resolve().parents[2]


def test_two_cpu_processes_train_one_run(workspace, tiny_llama, tmp_path):
    data = write_jsonl(tmp_path / "toy.jsonl", toy_alpaca(40))
    recipe = {
        "task": "sft",
        "model": str(tiny_llama),
        "data": {"train": str(data), "max_length": 64, "packing": False},
        "training": {"max_steps": 4, "batch_size": 2, "logging_steps": 1, "devices": 2},
    }
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "FTBENCH_DDP_CPU": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "ftbench.cli", "-w", str(workspace.root), "train", str(path), "--wait"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=400,
    )
    assert out.returncode == 0, out.stderr + out.stdout
    job = find_job(workspace, out.stdout.splitlines()[0])
    assert job.state == "succeeded"
    assert job.status["result"]["processes"] == 2
    steps = [e["step"] for e in read_events(job.dir / "events.jsonl", ["train"])]
    assert steps == [1, 2, 3, 4]  # one event stream (rank 0), no duplicates
    epochs = [e["epoch"] for e in read_events(job.dir / "events.jsonl", ["train"])]
    assert abs(epochs[-1] - 4 * 2 * 2 / 40) < 1e-3  # each step consumed batch_size x 2 ranks rows
    assert (
        "--multi_gpu" in (job.dir / "log.txt").read_text() and "--num_processes 2" in (job.dir / "log.txt").read_text()
    )
    assert (job.dir / "adapter" / "adapter_model.safetensors").is_file()
