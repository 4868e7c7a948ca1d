"""`ftbench runs | show | logs | stop`: list, inspect, tail and stop jobs from scripts."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from ftbench.cli import print_json, subparser
from ftbench.core.errors import FtbenchError
from ftbench.core.events import EventTail
from ftbench.core.humanize import human_age
from ftbench.core.job_stop import stop_job
from ftbench.core.jobs import ACTIVE_STATES, Job, find_job, refresh, tail_lines, waiting_note
from ftbench.core.log_noise import shown_lines, shown_text
from ftbench.core.registry import JOB_TABLES, Registry, job_record
from ftbench.core.workspace import Workspace

STATE_MARKS = {
    "queued": "⧗",
    "starting": "…",
    "running": "▶",
    "stopping": "■",
    "succeeded": "✓",
    "failed": "✗",
    "stopped": "◼",
}


def register(sub: Any) -> None:
    p = subparser(sub, "runs", "list training runs (with --all: every job)")
    p.add_argument("--all", action="store_true", help="include exports, demo and other jobs")
    p.add_argument("--state", choices=["active", *STATE_MARKS], help="only jobs in this state")
    p.add_argument("--json", action="store_true", help="print JSON records")
    p.add_argument(
        "--tensorboard", action="store_true", help="print the TensorBoard command for the listed runs' event files"
    )
    p.add_argument("--launch", action="store_true", help="with --tensorboard: run it (on 127.0.0.1)")
    p.set_defaults(func=cmd_runs)

    p = subparser(sub, "queue", "list runs waiting for GPUs on this box, or move one to another place in line")
    p.add_argument("--move", nargs=2, metavar=("ID", "POSITION"), help="put a waiting run at POSITION (1 = next)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_queue)

    p = subparser(sub, "show", "show one job: status, result, error, recent events and log")
    p.add_argument("id", help="job id, unique prefix, or folder")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    p = subparser(sub, "logs", "print a job's log (log.txt)")
    p.add_argument("id")
    p.add_argument(
        "-f", "--follow", action="store_true", help="keep printing until the job ends (Ctrl-C leaves it running)"
    )
    p.add_argument("-n", "--lines", type=int, default=0, help="only the last N lines")
    p.set_defaults(func=cmd_logs)

    p = subparser(sub, "stop", "stop a job: it saves a checkpoint and ends `stopped`")
    p.add_argument("id")
    p.add_argument("--grace", type=float, default=None, help="seconds before SIGKILL (default: workspace stop_grace_s)")
    p.add_argument("--no-wait", action="store_true", help="send the signal and return")
    p.set_defaults(func=cmd_stop)


def list_jobs(ws: Workspace, tables: tuple[str, ...] = JOB_TABLES) -> list[dict[str, Any]]:
    """Registry records, with active jobs re-checked so a vanished process shows as failed."""
    registry = Registry(ws)
    records = registry.jobs(tables)
    for i, record in enumerate(records):
        if record.get("state") in ACTIVE_STATES:
            job_dir = ws.root / record["path"]
            try:
                job = refresh(Job(job_dir, {}))
            except FtbenchError:
                continue
            fresh = job_record(job, ws.root)
            if fresh != record:
                records[i] = fresh
                try:
                    registry.sync_job(job)
                except OSError:  # a full or read-only disk: list what is true now, index it later
                    pass
    return records


def duration(record: dict[str, Any]) -> float | None:
    start = record.get("started_at")
    if not start:
        return None
    return (record.get("ended_at") or time.time()) - start


def best_metric(record: dict[str, Any]) -> str:
    result = record.get("result") or {}
    for key in ("eval_loss", "accuracy", "f1", "exact_match", "train_loss"):
        value = result.get(key)
        if isinstance(value, (int, float)):
            return f"{key}={value:.4g}"
    return ""


def tensorboard_command(ws: Workspace, records: list[dict], prefixes: dict[str, str], launch: bool) -> int:
    """`tensorboard --logdir_spec ID:RUN/tensorboard,...` over the listed runs that have event files."""
    import shlex
    import subprocess

    from ftbench.core.layout import JobLayout

    folders = {prefixes.get(r["id"], r["id"]): ws.runs_dir / r["id"] / JobLayout.TENSORBOARD for r in records}
    spec = ",".join(f"{name}:{folder}" for name, folder in folders.items() if folder.is_dir())
    if not spec:
        raise FtbenchError(
            "None of the listed runs has TensorBoard event files.",
            "Add `report_to: [tensorboard]` under training: in the recipe (needs the `tracking` extra).",
        )
    argv = [sys.executable, "-m", "tensorboard.main", "--logdir_spec", spec, "--host", "127.0.0.1"]
    if not launch:
        print(shlex.join(["tensorboard", *argv[3:]]))
        return 0
    return subprocess.call(argv)


def cmd_runs(args: argparse.Namespace, ws: Workspace) -> int:
    tables = JOB_TABLES if args.all else ("runs",)
    records = list_jobs(ws, tables)
    if args.state == "active":
        records = [r for r in records if r.get("state") in ACTIVE_STATES]
    elif args.state:
        records = [r for r in records if r.get("state") == args.state]
    from ftbench.core.handles import job_dirs, unique_prefixes

    # Unique among every job folder (not just the listed ones): any command that takes an id accepts it.
    prefixes = unique_prefixes([d.name for d in job_dirs(ws)] + [r["id"] for r in records])
    if args.tensorboard or args.launch:
        return tensorboard_command(ws, records, prefixes, launch=args.launch)
    if args.json:
        print_json([{**r, "prefix": prefixes.get(r["id"], r["id"])} for r in records])
        return 0
    if not records:
        what = "jobs" if args.all else "runs"
        print(
            f"No {what} in {ws.root}."
            + ("" if args.all else " Start one with `ftbench train RECIPE` (or see `ftbench runs --all`).")
        )
        return 0
    from rich.console import Console
    from rich.table import Table

    # The ID column (shortest unique prefixes) never shrinks or wraps; the other columns wrap to make room.
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("ID", no_wrap=True, min_width=max(len(prefixes.get(r["id"], r["id"])) for r in records))
    table.add_column("STATE", no_wrap=True)
    columns = (
        ("KIND", "TASK", "METHOD", "MODEL", "TIME", "BEST") if args.all else ("TASK", "METHOD", "MODEL", "TIME", "BEST")
    )
    for col in columns:
        table.add_column(col, overflow="fold")
    for r in records:
        meta = r.get("meta") or {}
        dur = duration(r)
        cells = {
            "KIND": r.get("kind") or "",
            "TASK": meta.get("task", ""),
            "METHOD": meta.get("method", ""),
            "MODEL": Path(str(meta.get("model", ""))).name,
            "TIME": human_age(dur) if dur is not None else "",
            "BEST": r.get("waiting") or best_metric(r),
        }
        state = f"{STATE_MARKS.get(r.get('state', ''), '?')} {r.get('state')}"
        table.add_row(prefixes.get(r["id"], r["id"]), state, *(cells[c] for c in columns))
    Console().print(table)
    return 0


def cmd_show(args: argparse.Namespace, ws: Workspace) -> int:
    job = find_job(ws, args.id)
    events = EventTail(job.events_path).read_new()
    if args.json:
        print_json({**job.status, "dir": str(job.dir), "events": len(events), "last_events": events[-5:]})
        return 0
    s = job.status
    print(f"{job.id}  {STATE_MARKS.get(job.state, '?')} {job.state}  ({s.get('kind')}, attempt {s.get('attempt', 1)})")
    print(f"  folder:  {job.dir}")
    if waiting_note(s):
        print(f"  waiting: {waiting_note(s)}")
    if s.get("gpus"):
        print(f"  gpus:    {', '.join(map(str, s['gpus']))}")
    for key, value in (s.get("meta") or {}).items():
        print(f"  {key + ':':8} {value}")
    if s.get("progress"):
        p = s["progress"]
        print(f"  progress: {p.get('phase')} {p.get('done')}/{p.get('total')}")
    for key, value in (s.get("result") or {}).items():
        print(f"  {key}: {value}")
    if s.get("error"):
        print(f"  error:   {s['error'].get('message')}")
        if s["error"].get("hint"):
            print(f"  hint:    {s['error']['hint']}")
    script = job.dir / "slurm.sbatch"
    if script.is_file():
        print(f"  sbatch script ({script}):")
        for line in script.read_text(encoding="utf-8").splitlines():
            print(f"    {line}")
    print(f"  events:  {len(events)}")
    tail = shown_lines(tail_lines(job.log_path, 10))
    if tail:
        print("  log (last lines):")
        for line in tail:
            print(f"    {line}")
    return 0


def cmd_queue(args: argparse.Namespace, ws: Workspace) -> int:
    from ftbench.core.gpu_queue import GpuQueue, GpuRequest

    queue = GpuQueue(ws.root)
    if args.move:
        ref, position = args.move
        if not position.isdigit() or int(position) < 1:
            raise FtbenchError(f"Queue position '{position}' is not a number >= 1.", "1 is the next run to start.")
        job = find_job(ws, ref)
        order = queue.move(job.id, int(position))
        print(f"{job.id} is now {order.index(job.id) + 1} of {len(order)} in the GPU queue.")
        return 0
    snap = queue.snapshot()
    if args.json:
        print_json(snap)
        return 0
    for job_id, held in sorted(snap["holding"].items()):
        print(f"running  {job_id}  GPUs {', '.join(map(str, held['gpus']))}")
    for i, entry in enumerate(snap["waiting"], 1):
        print(f"{i:>7}  {entry['job']}  wants {GpuRequest.from_dict(entry['request']).describe()}")
    if not snap["holding"] and not snap["waiting"]:
        print("No run holds or waits for a GPU in this workspace.")
    else:
        print("Cancel a waiting run with `ftbench stop ID`; reorder with `ftbench queue --move ID POSITION`.")
    return 0


def cmd_logs(args: argparse.Namespace, ws: Workspace) -> int:
    job = find_job(ws, args.id)
    if args.lines:
        for line in shown_lines(tail_lines(job.log_path, args.lines)):
            print(line)
        if not args.follow:
            return 0
        offset = job.log_path.stat().st_size if job.log_path.exists() else 0
    else:
        offset = 0
    try:
        while True:
            offset = _print_from(job.log_path, offset)
            if not args.follow:
                return 0
            job = refresh(job)
            if not job.active:
                _print_from(job.log_path, offset)
                return 0 if job.state != "failed" else 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print(f"\n(left {job.id} running)", file=sys.stderr)
        return 0


def _print_from(path, offset: int) -> int:
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return offset
    sys.stdout.write(shown_text(data.decode("utf-8", "replace")))
    sys.stdout.flush()
    return offset + len(data)


def cmd_stop(args: argparse.Namespace, ws: Workspace) -> int:
    job = find_job(ws, args.id)
    if not job.active:
        print(f"{job.id} is already {job.state}.")
        return 0
    grace = args.grace if args.grace is not None else ws.config.defaults.stop_grace_s
    if not args.no_wait:
        print(f"Stopping {job.id} (up to {grace:g} s to save a checkpoint)…", file=sys.stderr)
    job = stop_job(job, grace_s=grace, wait=not args.no_wait)
    Registry(ws).sync_job(job)
    print(f"{job.id}: {job.state}")
    return 0
