"""`ftbench train --on slurm` on a real one-node Slurm cluster (the `slurm_cluster` fixture): a 2-process LoRA
run, a pending job shown with Slurm's reason and cancelled, stop (checkpoint + scancel) and resume, and a time limit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from test_train_tasks import toy_alpaca, write_jsonl

from ftbench.core.events import read_events
from ftbench.core.jobs import find_job, read_status, wait_job

REPO = Path(__file__).resolve().parents[2]


def ftbench(
    ws, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ftbench.cli", "-w", str(ws.root), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def recipe_file(tmp_path: Path, model: Path, name: str, **training) -> Path:
    data = write_jsonl(tmp_path / "toy.jsonl", toy_alpaca(40))
    recipe = {
        "task": "sft",
        "name": name,
        "model": str(model),
        "data": {"train": str(data), "max_length": 64, "packing": False},
        "training": {"batch_size": 2, "logging_steps": 1, **training},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def submit(ws, recipe: Path, *flags: str, env: dict[str, str] | None = None):
    out = ftbench(ws, "train", str(recipe), "--on", "slurm", "--gpus-per-node", "0", *flags, env=env)
    assert out.returncode == 0, out.stderr + out.stdout
    return find_job(ws, out.stdout.splitlines()[0])


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_two_process_lora_run_on_slurm(slurm_cluster, workspace, tiny_llama, tmp_path):
    recipe = recipe_file(tmp_path, tiny_llama, "slurm-ddp", max_steps=4, devices=2)
    job = submit(workspace, recipe, "--time", "10", env={"FTBENCH_DDP_CPU": "1"})
    assert job.status["slurm"]["job_id"].isdigit()
    script = (job.dir / "slurm.sbatch").read_text()
    assert "#SBATCH --time=10" in script and "#SBATCH --nodes=1" in script
    job = wait_job(job, timeout_s=400)
    assert job.state == "succeeded", (job.status.get("error"), (job.dir / "log.txt").read_text()[-3000:])
    assert job.status["result"]["processes"] == 2
    assert job.status["host"] and job.status["started_at"] > job.status["created_at"]
    steps = [e["step"] for e in read_events(job.dir / "events.jsonl", ["train"])]
    assert steps == [1, 2, 3, 4]
    assert all(e["loss"] > 0 for e in read_events(job.dir / "events.jsonl", ["train"]))
    assert (job.dir / "adapter" / "adapter_model.safetensors").is_file()
    shown = ftbench(workspace, "show", job.id)
    assert f"sbatch script ({job.dir / 'slurm.sbatch'})" in shown.stdout and "#SBATCH --nodes=1" in shown.stdout


def test_pending_job_shows_slurms_reason_and_cancels(slurm_cluster, workspace, tiny_llama, tmp_path):
    recipe = recipe_file(tmp_path, tiny_llama, "pending", max_steps=2)
    partition = ["scontrol", "update", "PartitionName=debug"]
    subprocess.run([*partition, "State=DOWN"], check=True, capture_output=True)  # jobs wait: PENDING (PartitionDown)
    try:
        job = submit(workspace, recipe)
        reason = lambda: (find_job(workspace, job.id).status.get("slurm") or {}).get("reason")  # noqa: E731
        wait_until(lambda: reason() == "PartitionDown", 30, "Slurm's pending reason")
        runs = ftbench(workspace, "runs", env={"COLUMNS": "200"})
        assert (
            "queued" in runs.stdout
            and f"Slurm job {job.status['slurm']['job_id']}: PENDING (PartitionDown)" in runs.stdout
        )
        stopped = ftbench(workspace, "stop", job.id)
        assert stopped.returncode == 0 and stopped.stdout.strip().endswith("stopped")
    finally:
        subprocess.run([*partition, "State=UP"], check=True, capture_output=True)
    squeue = subprocess.run(
        ["squeue", "-h", "-j", job.status["slurm"]["job_id"], "-o", "%T"], capture_output=True, text=True
    )
    assert squeue.stdout.strip() in ("", "CANCELLED")
    assert read_status(job.dir)["error"]["message"].startswith("Cancelled before Slurm started it")
    time.sleep(3)
    assert read_status(job.dir)["state"] == "stopped" and not (job.dir / "log.txt").exists()  # it never ran


@pytest.mark.slow
def test_stop_checkpoints_then_resume_continues(slurm_cluster, workspace, tiny_llama, tmp_path):
    recipe = recipe_file(tmp_path, tiny_llama, "stop-resume", max_steps=400, save_steps=1000)
    job = submit(workspace, recipe, "--time", "10")
    wait_until(lambda: len(read_events(job.dir / "events.jsonl", ["train"])) >= 3, 300, "three training steps")
    stopped = ftbench(workspace, "stop", job.id, "--grace", "60")
    assert stopped.returncode == 0, stopped.stderr
    job = find_job(workspace, job.id)
    assert job.state == "stopped" and job.status.get("error") is None
    checkpoints = sorted(p.name for p in (job.dir / "checkpoints").iterdir())
    assert checkpoints, "stop saved no checkpoint"
    saved_step = int(checkpoints[-1].split("-")[1])
    first_id = job.status["slurm"]["job_id"]

    def in_squeue() -> str:
        return subprocess.run(
            ["squeue", "-h", "-j", first_id, "-o", "%T"], capture_output=True, text=True
        ).stdout.strip()

    wait_until(lambda: in_squeue() in ("", "CANCELLED", "COMPLETED"), 60, "the first Slurm job to leave the queue")
    # Resume: a new Slurm job continues from the checkpoint; stop it again once it has gone past it.
    resumed = ftbench(workspace, "resume", job.id)
    assert resumed.returncode == 0, resumed.stderr
    job = find_job(workspace, job.id)
    assert job.status["slurm"]["job_id"] != first_id and job.status["attempt"] == 2
    wait_until(
        lambda: any(e.get("attempt") == 2 for e in read_events(job.dir / "events.jsonl", ["train"])),
        300,
        "attempt 2 steps",
    )
    assert ftbench(workspace, "stop", job.id, "--grace", "60").returncode == 0
    second = [e["step"] for e in read_events(job.dir / "events.jsonl", ["train"]) if e.get("attempt") == 2]
    assert second[0] == saved_step + 1
    assert f"Resuming from checkpoint-{saved_step}" in (job.dir / "log.txt").read_text()


@pytest.mark.slow
def test_time_limit_ends_failed_with_slurms_reason(slurm_cluster, workspace, tiny_llama, tmp_path):
    recipe = recipe_file(tmp_path, tiny_llama, "too-long", max_steps=100000, save_steps=100000)
    job = submit(workspace, recipe, "--time", "1")
    job = wait_job(job, timeout_s=240)
    assert job.state == "failed", job.status
    assert job.status["error"]["message"].startswith("Slurm ended the job: TIMEOUT"), job.status["error"]
    assert "ftbench resume" in job.status["error"]["hint"]
    if read_events(job.dir / "events.jsonl", ["train"]):  # on a loaded machine the limit may come during loading
        assert list((job.dir / "checkpoints").iterdir()), "the SIGTERM at the time limit saved no checkpoint"


@pytest.mark.slow
def test_export_job_runs_on_slurm_too(slurm_cluster, workspace, tiny_llama):
    out = ftbench(
        workspace,
        "export",
        str(tiny_llama),
        "--quant",
        "f16",
        "--no-verify",
        "--on",
        "slurm",
        "--gpus-per-node",
        "0",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    job = find_job(workspace, json.loads(out.stdout)["id"])
    assert (job.dir / "slurm.sbatch").is_file() and job.status["slurm"]["job_id"].isdigit()
    job = wait_job(job, timeout_s=300)
    assert job.state == "succeeded", job.status.get("error")
    files = job.status["result"]["files"]
    assert files and all(Path(f["path"]).is_file() and f["path"].endswith(".gguf") for f in files)
