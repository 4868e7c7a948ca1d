"""`ftbench train | validate | resume | checkpoint`: start, check, continue and checkpoint training runs.

`train` validates the recipe and runs the data/model preflight here (torch-free, about a second), so a bad
recipe or dataset fails at the prompt with one line; then it starts a detached job and prints its id. The
job survives the terminal: `--follow` only watches (Ctrl-C leaves it running), `--wait` blocks until it ends.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftbench.cli import print_json, subparser
from ftbench.core.errors import FtbenchError
from ftbench.core.humanize import human_duration
from ftbench.core.workspace import Workspace

if TYPE_CHECKING:
    from ftbench.core.recipe import Recipe


def register(sub: Any) -> None:
    p = subparser(sub, "train", "start a training run from a recipe (detached; prints the run id)")
    p.add_argument("recipe", help="recipe YAML file")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a recipe key (repeatable)",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--follow", "-f", action="store_true", help="show live progress; Ctrl-C leaves the run going")
    mode.add_argument("--wait", action="store_true", help="block until the run ends; exit 1 if it failed")
    p.add_argument("--name", help="run name (default: the recipe's name)")
    p.add_argument("--json", action="store_true", help="print the job record as JSON")
    p.add_argument(
        "--gpus",
        metavar="auto|N|I,J",
        help="GPUs on this box: auto, a count N, or indices I,J (one GPU: I,); overrides training.gpus; "
        "waits in the queue until they are free",
    )
    add_trust_remote_code(p)
    add_reward_code_option(p)
    add_slurm_options(p)
    p.set_defaults(func=cmd_train)

    p = subparser(sub, "validate", "check a recipe and print it with every default filled in")
    p.add_argument("recipe")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE")
    p.add_argument("--json", action="store_true", help="print JSON instead of YAML")
    p.add_argument("--data", action="store_true", help="also read the data and check every row")
    p.set_defaults(func=cmd_validate)

    p = subparser(sub, "resume", "continue a stopped or failed run from its last checkpoint")
    p.add_argument("id", help="run id, unique prefix, or folder")
    p.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="resume a checkpoint ftbench did not save in this workspace (it is unpickled)",
    )
    add_trust_remote_code(p)
    add_reward_code_option(p)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--follow", "-f", action="store_true")
    mode.add_argument("--wait", action="store_true")
    p.set_defaults(func=cmd_resume)

    p = subparser(sub, "checkpoint", "ask a running training run to save a checkpoint now")
    p.add_argument("id")
    p.set_defaults(func=cmd_checkpoint)


def add_trust_remote_code(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="let the model folder's own Python run (auto_map); a recipe alone never turns this on",
    )


def add_reward_code_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allow-reward-code",
        action="store_true",
        help="let a grpo run import the Python file its recipe names in grpo.reward_file (user code; this attempt only)",
    )


def reward_code_env(recipe: Recipe, allowed: bool) -> dict[str, str]:
    """The job's permission to import grpo.reward_file: live from the flag, for this attempt only, never stored."""
    from ftbench.core.objectives import REWARD_CODE_ENV

    reward_file = recipe.grpo.reward_file if recipe.task == "grpo" else None
    if reward_file and not allowed:
        raise FtbenchError(
            f"grpo.reward_file {reward_file} is Python code the run would execute.",
            "Read it; if you trust it, add --allow-reward-code.",
        )
    if reward_file and not Path(reward_file).is_file():
        raise FtbenchError(
            f"grpo.reward_file {reward_file} does not exist.", "Give the path relative to the recipe's folder."
        )
    return {REWARD_CODE_ENV: "1" if allowed else "0"}


SLURM_FLAGS = ("partition", "nodes", "gpus_per_node", "time", "account")


def add_slurm_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("cluster", "with --on slurm; defaults from ftbench.toml [slurm]")
    g.add_argument(
        "--on", choices=["local", "slurm"], default="local", help="where the run executes (default: this machine)"
    )
    g.add_argument("--partition", help="Slurm partition")
    g.add_argument("--nodes", type=int, help="nodes (more than 1: multi-node accelerate launch)")
    g.add_argument("--gpus-per-node", type=int, help="GPUs per node (0: CPU only)")
    g.add_argument("--time", help="time limit, e.g. 30 or 4:00:00")
    g.add_argument("--account", help="Slurm account to charge")


def slurm_options(args: argparse.Namespace, ws: Workspace) -> dict[str, Any] | None:
    """The job's Slurm options (ftbench.toml [slurm] under the flags), or None to run here."""
    given = [f"--{k.replace('_', '-')}" for k in SLURM_FLAGS if getattr(args, k, None) is not None]
    if args.on != "slurm":
        if given:
            raise FtbenchError(
                f"{', '.join(given)} only apply with --on slurm.", "Add --on slurm, or drop those flags."
            )
        return None
    from dataclasses import asdict

    from ftbench.core.slurm import SlurmOptions, require_slurm

    require_slurm()
    options = SlurmOptions(**asdict(ws.config.slurm)).merged(**{k: getattr(args, k) for k in SLURM_FLAGS})
    return options.validate().to_dict()


def resolved_recipe(path: str, overrides: list[str], ws: Workspace) -> Any:
    """The validated recipe with model/data paths made absolute (workspace-relative first)."""
    from ftbench.core.recipe import load_recipe, resolve_recipe_paths

    recipe = load_recipe(path, overrides)
    return resolve_recipe_paths(recipe, ws, Path(path).resolve().parent)


def cmd_validate(args: argparse.Namespace, ws: Workspace) -> int:
    recipe = resolved_recipe(args.recipe, args.overrides, ws)
    if args.data:
        preflight_here(recipe)
    if args.json:
        print_json(recipe.to_dict())
    else:
        sys.stdout.write(recipe.to_yaml())
    return 0


def preflight_here(recipe: Recipe) -> Any:
    """The fast, torch-free part of the job's preflight: model folder and every data row."""
    from ftbench.core.specs import task_spec
    from ftbench.train.data import load_rows
    from ftbench.train.model import check_model_path

    check_model_path(recipe)
    spec = task_spec(recipe.task)
    if spec.causal:
        return load_rows(recipe.data, recipe.task).report
    # Encoder tasks check every label, tag and answer span (and that the model is an encoder) before launch,
    # with the same preflight the job runs; what it stashes is thrown away here.
    from types import SimpleNamespace

    from ftbench.train.tasks import task_module

    task_module(recipe.task).preflight(recipe, SimpleNamespace(state={}))
    return SimpleNamespace(format=spec.formats[0])


def cmd_train(args: argparse.Namespace, ws: Workspace) -> int:
    from ftbench.core.atomic import atomic_write_text
    from ftbench.core.gpu_queue import request_for_recipe
    from ftbench.core.jobs import start_job
    from ftbench.core.registry import Registry
    from ftbench.core.remote_code import launch_env

    recipe = resolved_recipe(args.recipe, args.overrides, ws)
    env = launch_env(recipe, args.trust_remote_code, args.recipe)
    recipe.model.trust_remote_code = args.trust_remote_code  # the frozen recipe records this attempt's live choice
    report = preflight_here(recipe)
    name = args.name or recipe.name or Path(args.recipe).stem
    meta = {
        "task": recipe.task,
        "method": recipe.method.name,
        "model": Path(recipe.model.path).name,
        "dataset": Path(recipe.data.train).name,
        "format": getattr(report, "format", None),
    }
    params: dict[str, Any] = {"recipe": recipe.to_dict()}
    env.update(reward_code_env(recipe, args.allow_reward_code))
    slurm = slurm_options(args, ws)
    if slurm:
        if args.gpus is not None:
            raise FtbenchError(
                "--gpus picks GPUs on this box; on Slurm use --gpus-per-node.", "Drop --gpus, or drop --on slurm."
            )
        meta["slurm"] = f"{slurm['nodes']} node(s) x {slurm['gpus_per_node']} GPU(s)"
    else:
        from ftbench.core.gpu_queue import default_sampler
        from ftbench.core.recipe import check_machine

        check_machine(recipe, default_sampler()(), args.recipe)
        gpu_request = request_for_recipe(recipe, args.gpus)
        if gpu_request:
            params["gpu_request"] = gpu_request
    job = start_job(ws, "train", name, params=params, meta=meta, slurm=slurm, env=env, on_launch=Registry(ws).sync_job)
    atomic_write_text(job.layout.recipe, recipe.to_yaml())
    if args.json:
        print_json({"id": job.id, "dir": str(job.dir), **meta})
    else:
        print(job.id)
    return watch(job, args.follow, args.wait)


def cmd_resume(args: argparse.Namespace, ws: Workspace) -> int:
    from ftbench.core.jobs import find_job, restart_job
    from ftbench.core.registry import Registry

    job = find_job(ws, args.id)
    if job.status.get("kind") != "train":
        raise FtbenchError(
            f"Job {job.id} is a {job.status.get('kind')} job, not a training run.", "Only training runs can be resumed."
        )
    if job.state == "succeeded":
        raise FtbenchError(f"Run {job.id} already finished successfully.", "Start a new run with `ftbench train`.")
    from ftbench.core.checkpoint_trust import TRUST_ENV
    from ftbench.core.objectives import REWARD_CODE_ENV
    from ftbench.core.recipe import load_recipe
    from ftbench.core.remote_code import launch_env, remote_code_env

    env = {TRUST_ENV: "1"} if args.trust_checkpoint else {TRUST_ENV: "0"}  # this attempt only, never stored
    frozen = job.layout.recipe
    if frozen.is_file():  # whatever it says, the job itself trusts only this attempt's flag (remote_code.job_trust)
        env.update(launch_env(load_recipe(frozen), args.trust_remote_code, str(frozen)))
    else:
        env.update(remote_code_env(args.trust_remote_code))
    env[REWARD_CODE_ENV] = "1" if args.allow_reward_code else "0"
    job = restart_job(job, env=env, on_launch=Registry(ws).sync_job)
    print(f"{job.id} (attempt {job.status.get('attempt')})")
    return watch(job, args.follow, args.wait)


def cmd_checkpoint(args: argparse.Namespace, ws: Workspace) -> int:
    from ftbench.core.jobs import find_job, request_control

    job = find_job(ws, args.id)
    request_control(job, "checkpoint")
    print(f"Checkpoint requested for {job.id}; it is saved after the current step.")
    return 0


def watch(job: Any, follow: bool, wait: bool) -> int:
    from ftbench.core.jobs import wait_job

    if follow:
        return follow_job(job)
    if wait:
        job = wait_job(job)
        return report_end(job)
    return 0


def report_end(job: Any) -> int:
    state = job.state
    if state == "failed":
        err = job.status.get("error") or {}
        print(f"error: run {job.id} failed: {err.get('message', 'unknown cause')}", file=sys.stderr)
        if err.get("hint"):
            print(f"hint: {err['hint']}", file=sys.stderr)
        return 1
    result = job.status.get("result") or {}
    shown = ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items() if isinstance(v, (int, float))
    )
    print(f"{job.id}: {state}" + (f" ({shown})" if shown else ""))
    return 0 if state in ("succeeded", "stopped") else 1


def follow_job(job: Any) -> int:
    """A rich progress bar fed from events.jsonl; Ctrl-C stops watching, never the run."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from ftbench.core.events import EventTail
    from ftbench.core.jobs import refresh

    console = Console(stderr=True)
    tail = EventTail(job.events_path)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"),
        console=console,
        transient=False,
    )
    try:
        with progress:
            task = progress.add_task("starting", total=None, stats="")
            while True:
                for event in tail.read_new():
                    _show(progress, task, event, console)
                job = refresh(job)
                if not job.active:
                    for event in tail.read_new():
                        _show(progress, task, event, console)
                    break
                time.sleep(0.5)
    except KeyboardInterrupt:
        console.print(f"Stopped watching; the run keeps going. Watch again: ftbench logs -f {job.id}")
        return 0
    return report_end(job)


def _show(progress: Any, task: Any, event: dict[str, Any], console: Any) -> None:
    kind = event.get("type")
    if kind == "train":
        eta = event.get("eta_s")
        stats = (
            f"loss {event.get('loss', float('nan')):.4f}  lr {event.get('lr') or 0:.2e}  "
            f"{event.get('tokens_per_s') or 0:,.0f} tok/s  ETA {human_duration(eta) if isinstance(eta, (int, float)) else '?'}"
        )
        progress.update(
            task,
            description="training",
            completed=event.get("step", 0),
            total=event.get("max_steps") or None,
            stats=stats,
        )
    elif kind == "eval":
        console.print(
            f"eval @ step {event.get('step')}: loss {event.get('eval_loss'):.4f}, perplexity {event.get('perplexity', float('nan')):.2f}"
        )
    elif kind == "progress" and event.get("phase") != "training":
        progress.update(
            task, description=str(event.get("phase")), completed=event.get("done") or 0, total=event.get("total")
        )
    elif kind == "checkpoint":
        console.print(f"checkpoint saved at step {event.get('step')}")
    elif kind == "log" and event.get("level") in ("warning", "error"):
        console.print(f"{event.get('level')}: {event.get('message')}")
