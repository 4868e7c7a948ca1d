"""`ftbench demo`: build the offline demo workspace as a job, follow it, then open the TUI.

The build runs as a detached job (kind "demo"), so closing the terminal or pressing Ctrl-C never leaves a
half-written model: the job finishes on its own and `ftbench logs ID -f` picks it up again. When the demo is
already complete the job still runs, finds every manifest in order and ends within seconds.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from ftbench.cli import print_json, subparser
from ftbench.core.errors import FtbenchError
from ftbench.core.humanize import human_size
from ftbench.core.workspace import Workspace

# The demo never needs a model hub: keep transformers and huggingface_hub from trying one.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def register(sub: Any) -> None:
    p = subparser(
        sub,
        "demo",
        "build the offline demo workspace (sample datasets, SmolLM2-135M-Instruct, all-MiniLM-L6-v2), then open the TUI",
    )
    p.add_argument("--no-tui", action="store_true", help="build and print a summary; do not open the TUI")
    p.add_argument("--json", action="store_true", help="print the job's result as JSON (implies --no-tui)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace, ws: Workspace) -> int:
    from ftbench.core.jobs import start_job
    from ftbench.core.registry import Registry

    job = start_job(
        ws, "demo", "setup", env=OFFLINE_ENV, meta={"what": "demo workspace"}, on_launch=Registry(ws).sync_job
    )
    try:
        job = follow(job)
    except KeyboardInterrupt:
        print(
            f"\nStopped watching; the demo build keeps running as job {job.id}. Watch it: ftbench logs {job.id} -f",
            file=sys.stderr,
        )
        return 130
    if job.state != "succeeded":
        error = job.status.get("error") or {}
        raise FtbenchError(
            f"The demo build ({job.id}) {job.state}: {error.get('message') or 'no cause recorded'}",
            error.get("hint") or f"See the log: ftbench logs {job.id}",
        )
    result = job.status.get("result") or {}
    if args.json:
        print_json({"id": job.id, **result})
        return 0
    print_summary(ws, result)
    if args.no_tui:
        return 0
    from ftbench.tui.app import run_app

    return run_app(ws)


def follow(job: Any, poll_s: float = 0.2) -> Any:
    """Show the job's progress events as a rich bar (and its log lines above it) until the job ends."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn

    from ftbench.core.events import EventTail
    from ftbench.core.jobs import refresh

    console = Console(stderr=True)
    tail = EventTail(job.events_path)
    bar = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    with bar:
        task = bar.add_task("starting the demo job", total=None)
        while True:
            job = refresh(job)
            finished = not job.active
            for event in tail.read_new():
                show_event(bar, task, event, console)
            if finished:
                return job
            time.sleep(poll_s)


def show_event(bar: Any, task: Any, event: dict[str, Any], console: Any) -> None:
    kind = event.get("type")
    if kind == "progress":
        total = event.get("total")
        bar.update(task, description=str(event.get("phase")), completed=event.get("done") or 0, total=total)
    elif kind == "log":
        level = event.get("level", "info")
        style = {"warning": "yellow", "error": "red"}.get(level, "dim")
        console.print(f"[{style}]{event.get('message')}[/]", highlight=False)


def print_summary(ws: Workspace, result: dict[str, Any]) -> None:
    datasets = result.get("datasets") or {}
    rows = datasets.get("rows") or {}
    built = result.get("built") or []
    print(
        f"Demo workspace ready at {ws.root} ({result.get('seconds', 0):.1f} s; "
        f"{'built ' + ', '.join(built) if built else 'everything was already there'})."
    )
    print(
        f"  datasets  {datasets.get('path')}  {len(rows)} files, {sum(rows.values())} rows, {human_size(datasets.get('bytes', 0))}"
    )
    for info in (result.get("models") or {}).values():
        print(f"  model     {info.get('path')}  {human_size(info.get('bytes', 0))}")
    print("Next: `ftbench` opens the workbench; recipes in recipes/ train on these files.")
