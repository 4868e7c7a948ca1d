"""Frozen test data for the TUI: job folders written by hand, fixed clocks, fake GPU reports.

No job process runs: a "running" job's pid is the test process itself (alive, same host, same start
time), so `jobs.refresh` keeps it running. Times are fixed, so snapshots never change.
"""

from __future__ import annotations

import json
import math
import os
import socket
from pathlib import Path
from typing import Any

from ftbench.core.gpu import GpuInfo, GpuReport
from ftbench.core.jobs import proc_start_time
from ftbench.core.workspace import Workspace

NOW = 1_763_800_000.0  # fixed "now" for every clock in the TUI tests
GIB = 1024**3

NO_GPU = GpuReport(False, reason="no NVIDIA driver")
FAKE_GPUS = GpuReport(
    True,
    [
        GpuInfo(0, "NVIDIA H100 80GB HBM3", 40 * GIB, 80 * GIB, 87.0, 61.0, 412.0, 700.0),
        GpuInfo(1, "NVIDIA H100 80GB HBM3", 75 * GIB, 80 * GIB, 99.0, 78.0, 655.0, 700.0),
    ],
    driver="575.51",
)


def clock() -> float:
    return NOW


def write_job(
    ws: Workspace,
    job_id: str,
    kind: str,
    name: str,
    state: str,
    created_ago: float,
    *,
    events: list[dict[str, Any]] | None = None,
    log: str = "",
    recipe: str | None = None,
    **status: Any,
) -> Path:
    job_dir = ws.jobs_parent(kind) / job_id
    job_dir.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {
        "id": job_id,
        "kind": kind,
        "name": name,
        "state": state,
        "attempt": 1,
        "host": socket.gethostname(),
        "created_at": NOW - created_ago,
        "started_at": NOW - created_ago + 2,
        **status,
    }
    if state in ("starting", "running", "stopping"):
        record.update(pid=os.getpid(), pgid=os.getpgid(0), proc_start=proc_start_time(os.getpid()))
    else:
        record.setdefault("ended_at", NOW - created_ago + 600)
    (job_dir / "status.json").write_text(json.dumps(record))
    spec = {"id": job_id, "kind": kind, "name": name, "target": "fakejob:run", "workspace": str(ws.root), "params": {}, "attempt": 1}
    (job_dir / "job.json").write_text(json.dumps(spec))
    if events is not None:
        (job_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    (job_dir / "log.txt").write_text(log)
    if recipe is not None:
        (job_dir / "recipe.yaml").write_text(recipe)
    return job_dir


def train_events(steps: int, *, start_loss: float = 2.5, floor: float = 0.6, eval_every: int = 40, gpu_every: int = 20,
                 ckpt_every: int = 100, total: int = 500) -> list[dict[str, Any]]:
    """Deterministic training events: an exponentially decaying, slightly wavy loss."""
    out: list[dict[str, Any]] = []
    for step in range(1, steps + 1):
        loss = floor + (start_loss - floor) * math.exp(-step / 60) + 0.05 * math.sin(step / 3)
        out.append({
            "t": NOW, "type": "train", "attempt": 1, "step": step, "epoch": round(step / 250, 4), "loss": round(loss, 5),
            "lr": 2e-4 * min(1.0, step / 20), "grad_norm": round(1.5 + math.cos(step / 7), 4), "tokens": step * 2048,
            "tokens_per_s": 1800.0 + 5 * (step % 10), "eta_s": (total - step) * 1.2,
        })
        if step % eval_every == 0:
            out.append({"t": NOW, "type": "eval", "attempt": 1, "step": step, "eval_loss": round(loss + 0.1, 5)})
        if step % gpu_every == 0:
            devices = [g.as_event() for g in FAKE_GPUS.gpus[:1]]
            devices[0]["mem_used"] = int((30 + 10 * step / steps) * GIB)
            out.append({"t": NOW, "type": "gpu", "attempt": 1, "devices": devices, "torch_peak_alloc": 35 * GIB})
        if step % ckpt_every == 0:
            out.append({"t": NOW, "type": "checkpoint", "attempt": 1, "step": step, "path": f"checkpoints/checkpoint-{step}"})
    out.append({"t": NOW, "type": "progress", "attempt": 1, "phase": "train", "done": steps, "total": total})
    return out


RECIPE_A = """task: sft
name: sft-alpaca-lora
model: {path: models/smollm2-135m-instruct}
data: {train: datasets/demo/alpaca.jsonl}
method: {name: lora, r: 16}
training: {lr: 0.0002, epochs: 2}
"""
RECIPE_B = """task: sft
name: sft-alpaca-lora-r8
model: {path: models/smollm2-135m-instruct}
data: {train: datasets/demo/alpaca.jsonl}
method: {name: lora, r: 8}
training: {lr: 0.0001, epochs: 2}
"""
RECIPE_C = """task: classification
name: cls-imdb-lora
model: {path: models/all-minilm-l6-v2}
data: {train: datasets/demo/imdb.jsonl}
method: {name: lora}
"""


def make_workspace(root: Path) -> Workspace:
    """Five jobs in every state the Jobs screen distinguishes; fixed times, no processes."""
    ws = Workspace.open(root)
    write_job(
        ws, "20251122-081000-sft-alpaca-lora-a1b2", "train", "sft-alpaca-lora", "running", 300,
        events=train_events(120), log="".join(f"[08:1{i % 10}:00] step {i * 10} loss {2.0 - i * 0.1:.2f}\n" for i in range(12)),
        recipe=RECIPE_A, progress={"phase": "train", "done": 120, "total": 500},
        meta={"task": "sft", "method": "lora", "model": "smollm2-135m-instruct", "dataset": "alpaca"},
    )
    write_job(
        ws, "20251122-070000-sft-alpaca-lora-r8-c3d4", "train", "sft-alpaca-lora-r8", "succeeded", 4000,
        events=train_events(250, start_loss=2.7, floor=0.8, total=250), log="[07:00:00] Job succeeded.\n",
        recipe=RECIPE_B, progress={"phase": "train", "done": 250, "total": 250}, ended_at=NOW - 2200,
        result={"eval_loss": 0.91}, meta={"task": "sft", "method": "lora", "model": "smollm2-135m-instruct", "dataset": "alpaca"},
    )
    write_job(
        ws, "20251122-060000-cls-imdb-lora-e5f6", "train", "cls-imdb-lora", "failed", 8000,
        events=train_events(30, total=300), log="Traceback (most recent call last):\nRuntimeError: CUDA out of memory\n",
        recipe=RECIPE_C, progress={"phase": "train", "done": 30, "total": 300}, ended_at=NOW - 7700,
        error={"message": "CUDA out of memory at step 31 (batch_size 32).", "hint": "Lower training.batch_size or use gradient_accumulation."},
        meta={"task": "classification", "method": "lora", "model": "all-minilm-l6-v2", "dataset": "imdb"},
    )
    write_job(
        ws, "20251122-075000-export-sft-alpaca-lora-r8-0a0b", "export", "sft-alpaca-lora-r8", "succeeded", 2000,
        events=[{"t": NOW, "type": "progress", "attempt": 1, "phase": "quantize", "done": 2, "total": 2}],
        log="wrote model-q4_k_m.gguf\n", progress={"phase": "quantize", "done": 2, "total": 2},
    )
    write_job(
        ws, "20251122-050000-demo-9999", "demo", "demo", "stopped", 90000,
        events=[{"t": NOW, "type": "log", "attempt": 1, "level": "info", "message": "Stopped by the user."}],
        log="Stopped.\n", progress={"phase": "datasets", "done": 3, "total": 8},
    )
    return ws
