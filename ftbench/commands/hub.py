"""`ftbench pull` and `ftbench push`: the Hugging Face Hub, each as a detached job (see ftbench/hub/)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from ftbench.cli import print_json, subparser
from ftbench.core.errors import FtbenchError
from ftbench.core.humanize import human_size
from ftbench.core.jobs import Job, refresh
from ftbench.core.workspace import Workspace


def register(sub: Any) -> None:
    p = subparser(sub, "pull", "Download a model from the Hugging Face Hub (into the HF cache) as a background job.")
    p.add_argument("repo_id", metavar="REPO_ID", help="owner/name on the Hub, e.g. HuggingFaceTB/SmolLM2-135M")
    p.add_argument("--revision", default=None, help="branch, tag or commit (default: main)")
    p.add_argument(
        "--include", nargs="+", action="extend", default=[], metavar="GLOB", help="only files matching these globs"
    )
    p.add_argument(
        "--to",
        choices=("cache", "workspace"),
        default="cache",
        help="cache: the shared HF cache (default); workspace: a real folder under the workspace's models folder",
    )
    p.add_argument("--wait", action="store_true", help="follow the download and print where it went")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_pull)

    q = subparser(sub, "push", "Upload a run's adapter, merged model or GGUF files to the Hub, with a model card.")
    q.add_argument("source", metavar="RUN_OR_EXPORT", help="run or export id, adapter/model folder or GGUF file")
    q.add_argument("repo_id", metavar="REPO_ID", help="owner/name to create or update on the Hub")
    q.add_argument(
        "--what", choices=("adapter", "merged", "gguf"), default=None, help="what to upload (default: by source)"
    )
    q.add_argument(
        "--private", action="store_true", help="create the repo private (an existing repo keeps its setting)"
    )
    q.add_argument("--base-model", default=None, metavar="REPO_ID", help="the base's Hub id for the card's metadata")
    q.add_argument("--dry-run", action="store_true", help="list the files and print the model card; upload nothing")
    q.add_argument("--wait", action="store_true", help="wait for the upload and print the repo URL")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=cmd_push)


def cmd_pull(args: argparse.Namespace, ws: Workspace) -> int:
    from ftbench.hub.launch import start_pull_job

    job = start_pull_job(ws, args.repo_id, args.revision, args.include, args.to)
    return _finish(args, job, "pull")


def cmd_push(args: argparse.Namespace, ws: Workspace) -> int:
    from ftbench.hub.launch import check_repo_id, start_push_job
    from ftbench.hub.push import plan_push

    repo_id = check_repo_id(args.repo_id)
    if args.base_model:
        check_repo_id(args.base_model)
    plan = plan_push(ws, args.source, args.what, args.base_model)
    if args.dry_run:
        return _print_plan(args, plan, repo_id)
    from huggingface_hub import get_token

    if get_token() is None:
        raise FtbenchError(
            "Pushing needs a Hugging Face token with write access, and none is set.",
            "Set HF_TOKEN to a write token from huggingface.co/settings/tokens, or run `hf auth login`.",
        )
    params = {
        "source": str(plan.pinned),
        "label": args.source,
        "what": plan.what,
        "repo_id": repo_id,
        "private": args.private,
        "base_model": args.base_model,
    }
    return _finish(args, start_push_job(ws, params), "push")


def _print_plan(args: argparse.Namespace, plan: Any, repo_id: str) -> int:
    rows = plan.listing()
    if args.json:
        files = [{"path": name, "bytes": size} for name, size in rows]
        print_json({"repo_id": repo_id, "what": plan.what, "files": files, "card": plan.card})
        return 0
    print(f"Would upload {plan.what} to {repo_id} ({len(rows)} files, {human_size(sum(s for _, s in rows))}):")
    for name, size in rows:
        print(f"  {human_size(size):>10}  {name}")
    print("\nREADME.md:\n")
    print(plan.card)
    return 0


def _finish(args: argparse.Namespace, job: Job, verb: str) -> int:
    if not args.wait:
        if args.json:
            print_json({"id": job.id, "dir": str(job.dir), "state": job.state})
        else:
            print(f"Started {verb} {job.id}; follow it with `ftbench logs {job.id}`.")
        return 0
    job = _follow(job)
    status = job.status
    if args.json:
        print_json(status)
    elif job.state == "succeeded":
        r = status.get("result") or {}
        if verb == "pull":
            print(f"Pulled {r['repo_id']}@{str(r.get('commit'))[:12]}: {r['files']} files, {human_size(r['bytes'])}")
            print(r["path"])
        else:
            print(f"Pushed {r['what']} to {r['url']} ({r['files']} files, commit {str(r['commit'])[:12]})")
    if job.state != "succeeded":
        err = status.get("error") or {}
        print(f"error: {verb} {job.id} {job.state}: {err.get('message', 'see the log')}", file=sys.stderr)
        if err.get("hint"):
            print(f"hint: {err['hint']}", file=sys.stderr)
        return 1
    return 0


def _follow(job: Job, poll_s: float = 0.3) -> Job:
    """Wait for the job, drawing its byte progress on one stderr line when that is a terminal."""
    tty = sys.stderr.isatty()
    while True:
        job = refresh(job)
        progress = job.status.get("progress") or {}
        if tty and progress.get("total"):
            done, total = progress.get("done") or 0, progress["total"]
            print(f"\r{progress['phase']}: {human_size(done)} / {human_size(total)}  ", end="", file=sys.stderr)
        if not job.active:
            if tty:
                print(file=sys.stderr)
            return job
        time.sleep(poll_s)
