"""Frozen test data for the TUI: job folders recorded from real runs, fixed clocks, fake GPU reports.

The five jobs of `make_workspace` are tests/tui/fixtures/<id>/, recorded from real tiny runs by
scripts/record_fixtures.py (so the screens are tested on what the trainer really writes); `install_fixture`
puts one into a workspace with its times shifted to the fixed clock. Only what a CPU cannot record is
synthetic: `write_multi_gpu_run` re-emits a recorded run through the real EventWriter with two GPUs sampled.
No job process runs: a "running" job's pid is the test process itself (alive, same host, same start
time), so `jobs.refresh` keeps it running. Times are fixed, so snapshots never change.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from ftbench.core.events import EventWriter, read_events
from ftbench.core.gpu import GpuInfo, GpuReport
from ftbench.core.jobs import proc_start_time
from ftbench.core.workspace import Workspace

NOW = 1_763_800_000.0  # fixed "now" for every clock in the TUI tests
GIB = 1024**3
FIXTURES = Path(__file__).parent / "fixtures"
RUNNING = "20251122-081000-sft-alpaca-lora-a1b2"
SUCCEEDED = "20251122-070000-sft-alpaca-lora-r8-c3d4"
FAILED = "20251122-060000-cls-imdb-lora-e5f6"
EXPORT = "20251122-075000-export-sft-alpaca-lora-r8-0a0b"
DEMO = "20251122-050000-demo-9999"
MULTI_GPU = "20251122-083000-sft-alpaca-lora-2gpu-7e7e"

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
    spec = {
        "id": job_id,
        "kind": kind,
        "name": name,
        "target": "fakejob:run",
        "workspace": str(ws.root),
        "params": {},
        "attempt": 1,
    }
    (job_dir / "job.json").write_text(json.dumps(spec))
    if events is not None:
        (job_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    (job_dir / "log.txt").write_text(log)
    if recipe is not None:
        (job_dir / "recipe.yaml").write_text(recipe)
    return job_dir


def _alive(record: dict[str, Any]) -> None:
    """A running job's process is this test process: alive, same host, same start time."""
    record.update(host=socket.gethostname())
    if record.get("state") in ("starting", "running", "stopping"):
        record.update(pid=os.getpid(), pgid=os.getpgid(0), proc_start=proc_start_time(os.getpid()))


def install_fixture(ws: Workspace, job_id: str, created_ago: float, as_id: str | None = None) -> Path:
    """Copy a recorded job folder into `ws` (as job `as_id`), its workspace placeholder filled, times moved to NOW."""
    src = FIXTURES / job_id
    created = NOW - created_ago

    def text(name: str) -> str:
        return (
            (src / name)
            .read_text(encoding="utf-8")
            .replace("{workspace}", str(ws.root))
            .replace(job_id, as_id or job_id)
        )

    record = json.loads(text("status.json"))
    for key in ("created_at", "started_at", "ended_at"):
        if isinstance(record.get(key), (int, float)):
            record[key] = round(created + record[key], 3)
    _alive(record)
    job_dir = ws.jobs_parent(record["kind"]) / (as_id or job_id)
    job_dir.mkdir(parents=True, exist_ok=True)
    (job_dir / "status.json").write_text(json.dumps(record))
    events = [json.loads(line) for line in text("events.jsonl").splitlines() if line]
    (job_dir / "events.jsonl").write_text(
        "".join(json.dumps({**e, "t": round(created + e["t"], 3)}) + "\n" for e in events)
    )
    for name in ("job.json", "log.txt", "recipe.yaml"):
        if (src / name).is_file():
            (job_dir / name).write_text(text(name), encoding="utf-8")
    return job_dir


def write_multi_gpu_run(ws: Workspace, created_ago: float = 120) -> Path:
    """The recorded running run as it would look on two GPUs: its events re-emitted through EventWriter, with a
    `gpu` event (both devices, torch's peak) after every fourth train event. The one synthetic run: a CPU
    cannot record GPU samples."""
    target = install_fixture(ws, RUNNING, created_ago, as_id=MULTI_GPU)
    recorded = read_events(target / "events.jsonl")
    (target / "events.jsonl").unlink()
    with EventWriter(target / "events.jsonl") as writer:
        for event in recorded:
            fields = {k: v for k, v in event.items() if k not in ("v", "t", "type", "attempt")}
            writer.emit(event.kind, **fields)
            if event.kind == "train" and event["step"] % 4 == 0:
                devices = [g.as_event() for g in FAKE_GPUS.gpus]
                for i, dev in enumerate(devices):
                    dev["mem_used"] = int((20 + 10 * i + event["step"] / 4) * GIB)
                writer.emit("gpu", devices=devices, torch_peak_allocated=int(37.5 * GIB))
    return target


def make_workspace(root: Path) -> Workspace:
    """Five recorded jobs in every state the Jobs screen distinguishes; fixed times, no processes."""
    ws = Workspace.open(root)
    for job_id, created_ago in ((RUNNING, 300), (SUCCEEDED, 4000), (FAILED, 8000), (EXPORT, 2000), (DEMO, 90000)):
        install_fixture(ws, job_id, created_ago)
    return ws
