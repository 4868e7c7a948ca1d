"""Record the job folders the TUI tests and screenshots show, from real tiny runs: tests/tui/fixtures/<job id>/.

Hand-written job folders drift from what the trainer writes (they once showed a step total and a peak-memory
line no real run ever produced), so these are recorded: a tiny random Llama and BERT (tests/tinymodels.py) are
trained through the real CLI and job processes on the CPU, and each folder is copied at the moment it shows
the state it stands for:

    sft-alpaca-lora      running    copied while training, after its first checkpoint
    sft-alpaca-lora-r8   succeeded  trained to the end (eval, checkpoints, outputs)
    cls-imdb-lora        failed     a classification run whose process was killed (-9) mid-training
    export               succeeded  the r8 run exported to GGUF (q8_0)
    demo                 stopped    a demo build stopped by the user

Kept small: no weights (only status.json, job.json, events.jsonl, log.txt, recipe.yaml), per-step training
progress lines folded into the last one, logs cut. Machine-specific values are replaced by placeholders the
loader (tests/tui/fakes.py `install_fixture`) fills in: `{workspace}` for the workspace path, times as seconds
after the job's creation, no pid or host. Takes about a minute on 2 cores.
Usage: python scripts/record_fixtures.py [--out tests/tui/fixtures]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

IDS = {
    "running": "20251122-081000-sft-alpaca-lora-a1b2",
    "succeeded": "20251122-070000-sft-alpaca-lora-r8-c3d4",
    "failed": "20251122-060000-cls-imdb-lora-e5f6",
    "export": "20251122-075000-export-sft-alpaca-lora-r8-0a0b",
    "demo": "20251122-050000-demo-9999",
}
KEEP_FILES = ("status.json", "job.json", "events.jsonl", "log.txt", "recipe.yaml")
DROP_STATUS = ("pid", "pgid", "proc_start", "host", "python", "launcher_pid", "updated_at")
TIME_KEYS = ("created_at", "started_at", "ended_at")
MAX_LOG_LINES = 40
GOOD = ["great", "good", "happy", "fast", "friendly"]
BAD = ["bad", "terrible", "slow", "sad", "broken"]


def cli(ws: Path, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "ftbench.cli", "-w", str(ws), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    if proc.returncode != 0:
        raise SystemExit(f"ftbench {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def wait_for(predicate, what: str, timeout: float = 300.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def reviews(n: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = "positive" if i % 2 == 0 else "negative"
        rows.append({"text": " ".join(rng.choices(GOOD if label == "positive" else BAD, k=5)), "label": label})
    return rows


def alpaca(n: int, seed: int) -> list[dict[str, str]]:
    return [
        {"instruction": f"Review: {r['text']}. Sentiment?", "output": f"Sentiment: {r['label']}"}
        for r in reviews(n, seed)
    ]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_recipe(path: Path, recipe: dict[str, Any]) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    return path


def train_events(job_dir: Path) -> list[dict[str, Any]]:
    from ftbench.core.events import read_events

    return read_events(job_dir / "events.jsonl", ["train"])


def snapshot(job_dir: Path, staging: Path, job_id: str) -> Path:
    """Copy the files a viewer reads, as they are this instant (status first: it must not be newer than events)."""
    out = staging / job_id
    out.mkdir(parents=True)
    for name in KEEP_FILES:
        if (job_dir / name).is_file():
            shutil.copyfile(job_dir / name, out / name)
    return out


def normalise(folder: Path, ws: Path, renames: dict[str, str]) -> None:
    """Placeholders for the workspace, fixture ids for real ones, times relative to creation, progress folded."""

    def text(raw: str) -> str:
        raw = raw.replace(str(ws.resolve()), "{workspace}").replace(str(ws), "{workspace}")
        for real_id, job_id in renames.items():
            raw = raw.replace(real_id, job_id)
        return raw

    status = json.loads(text((folder / "status.json").read_text(encoding="utf-8")))
    created = status["created_at"]
    for key in DROP_STATUS:
        status.pop(key, None)
    for key in TIME_KEYS:
        if isinstance(status.get(key), (int, float)):
            status[key] = round(status[key] - created, 3)
    (folder / "status.json").write_text(json.dumps(status, indent=1) + "\n", encoding="utf-8")

    events = [
        json.loads(line) for line in text((folder / "events.jsonl").read_text(encoding="utf-8")).splitlines() if line
    ]
    kept = []
    for i, event in enumerate(events):
        later = events[i + 1 :]
        if (
            event["type"] == "progress"
            and event.get("phase") == "training"
            and any(e["type"] == "progress" and e.get("phase") == "training" for e in later)
        ):
            continue  # one per logging step; the screens read only the newest
        event["t"] = round(event["t"] - created, 3)
        kept.append(event)
    (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in kept), encoding="utf-8")

    for name in ("job.json", "recipe.yaml"):
        if (folder / name).is_file():
            (folder / name).write_text(text((folder / name).read_text(encoding="utf-8")), encoding="utf-8")
    if (folder / "job.json").is_file():
        spec = json.loads((folder / "job.json").read_text(encoding="utf-8"))
        spec.pop("env", None)
        (folder / "job.json").write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
    lines = [
        line
        for line in text((folder / "log.txt").read_text(encoding="utf-8", errors="replace")).splitlines()
        if "Warning" not in line and "warnings.warn" not in line
    ]
    (folder / "log.txt").write_text("\n".join(lines[-MAX_LOG_LINES:]) + "\n", encoding="utf-8")


def record(out: Path) -> list[Path]:
    from tinymodels import make_tiny_bert, make_tiny_causal_lm

    from ftbench.core.job_stop import stop_job
    from ftbench.core.jobs import find_job, read_status, refresh, start_job
    from ftbench.core.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ws_path = root / "ws"
        ws = Workspace.open(ws_path)
        llama = make_tiny_causal_lm(ws.models_dir / "smollm2-135m-instruct", initializer_range=0.1)
        bert = make_tiny_bert(ws.models_dir / "all-minilm-l6-v2")
        data = write_jsonl(ws.datasets_dir / "alpaca.jsonl", alpaca(96, seed=0))
        imdb = write_jsonl(ws.datasets_dir / "imdb.jsonl", reviews(400, seed=1))
        staging = root / "staging"
        recorded: dict[str, Path] = {}

        def sft(name: str, r: int, lr: float, steps: int) -> Path:
            return write_recipe(
                root / f"{name}.yaml",
                {
                    "task": "sft",
                    "name": name,
                    "model": str(llama),
                    "data": {"train": str(data), "eval_split": 0.1, "max_length": 64},
                    "method": {"name": "lora", "r": r},
                    "training": {
                        "max_steps": steps,
                        "batch_size": 4,
                        "lr": lr,
                        "logging_steps": 1,
                        "eval_steps": 16,
                        "save_steps": 24,
                        "warmup_steps": 2,
                    },
                },
            )

        # running: copied while it trains, after its first checkpoint
        run_id = cli(ws_path, "train", str(sft("sft-alpaca-lora", 16, 2e-3, 400))).splitlines()[0].strip()
        job = find_job(ws, run_id)
        wait_for(lambda: any(e["step"] >= 36 for e in train_events(job.dir)), "the running run to pass step 36")
        status = read_status(job.dir)
        folder = snapshot(job.dir, staging, IDS["running"])
        (folder / "status.json").write_text(json.dumps(status), encoding="utf-8")
        recorded["running"] = folder
        stop_job(refresh(job), grace_s=60)

        # succeeded: to the end
        done_id = cli(ws_path, "train", str(sft("sft-alpaca-lora-r8", 8, 1e-3, 48)), "--wait").splitlines()[0].strip()
        done = find_job(ws, done_id)
        recorded["succeeded"] = snapshot(done.dir, staging, IDS["succeeded"])

        # failed: the process killed mid-training
        cls = write_recipe(
            root / "cls.yaml",
            {
                "task": "classification",
                "name": "cls-imdb-lora",
                "model": str(bert),
                "data": {"train": str(imdb), "eval_split": 0.1, "max_length": 16},
                "method": {"name": "lora"},
                "training": {
                    "max_steps": 300,
                    "batch_size": 8,
                    "lr": 5e-3,
                    "logging_steps": 2,
                    "eval_steps": 10,
                    "save_steps": 10,
                },
            },
        )
        cls_id = cli(ws_path, "train", str(cls)).splitlines()[0].strip()
        cls_job = find_job(ws, cls_id)
        wait_for(lambda: len(train_events(cls_job.dir)) >= 12, "the classification run to log 12 steps")
        os.kill(read_status(cls_job.dir)["pid"], signal.SIGKILL)
        wait_for(lambda: refresh(find_job(ws, cls_id)).state == "failed", "the killed run to show as failed")
        recorded["failed"] = snapshot(cls_job.dir, staging, IDS["failed"])

        # export: the succeeded run to GGUF
        export_id = json.loads(cli(ws_path, "export", done_id, "--quant", "q8_0", "--no-verify", "--wait", "--json"))[
            "id"
        ]
        export = find_job(ws, export_id)
        recorded["export"] = snapshot(export.dir, staging, IDS["export"])

        # demo: stopped by the user while it builds
        demo_ws = Workspace.open(root / "demo-ws")  # its own: the demo build must not touch the models above
        demo = start_job(demo_ws, "demo", "demo", env={"HF_HUB_OFFLINE": "1"}, meta={"what": "demo workspace"})
        wait_for(
            lambda: (demo.dir / "events.jsonl").is_file() and "progress" in (demo.dir / "events.jsonl").read_text(),
            "demo progress",
        )
        time.sleep(1.0)
        stop_job(refresh(demo), grace_s=60)
        recorded["demo"] = snapshot(demo.dir, staging, IDS["demo"])

        renames = {
            run_id: IDS["running"],
            done_id: IDS["succeeded"],
            cls_id: IDS["failed"],
            export_id: IDS["export"],
            demo.id: IDS["demo"],
        }
        for state, folder in recorded.items():
            normalise(folder, demo_ws.root if state == "demo" else ws_path, renames)
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(staging, out)
    return sorted(out.iterdir())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "tests" / "tui" / "fixtures"))
    args = parser.parse_args()
    for path in record(Path(args.out)):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
