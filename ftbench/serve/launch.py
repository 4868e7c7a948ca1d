"""Starting a serve job, from the CLI or the TUI: check first, then a detached job with the key in its env.

Light (no web stack), so the TUI can start a server without importing what the server needs. The key goes
to the job process through its environment only; job.json records the options, never the key.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ftbench.core.errors import FtbenchError
from ftbench.core.jobs import Job, refresh, start_job
from ftbench.core.workspace import Workspace
from ftbench.serve.runner import ServeOptions, serve_variants
from ftbench.serve.safety import KEY_ENV, check_bind

READY_TIMEOUT_S = 600.0


def start_serve_job(ws: Workspace, opts: ServeOptions, api_key: str | None = None) -> Job:
    """Refuse a public bind without a key and a bad MODEL/--adapter/--gguf here, before a job exists."""
    check_bind(opts.host, api_key)
    names = [spec.name for spec in serve_variants(ws, opts)]
    return start_job(
        ws,
        "serve",
        name=f"serve {Path(opts.model).name}",
        params=opts.to_dict(),
        meta={"model": opts.model, "variants": names, "engine": opts.engine},
        env={KEY_ENV: api_key} if api_key else None,
    )


def wait_ready(job: Job, timeout_s: float = READY_TIMEOUT_S, poll_s: float = 0.2) -> dict[str, Any]:
    """The job's `serve` card once its models are loaded; a job that ends first raises its own error."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = refresh(job)
        serve = job.status.get("serve") or {}
        if serve.get("ready"):
            return serve
        if not job.active:
            err = job.status.get("error") or {}
            raise FtbenchError(
                f"Serve job {job.id} {job.state} before it was ready: {err.get('message', 'see its log')}",
                err.get("hint") or f"See `ftbench logs {job.id}`.",
            )
        if time.monotonic() > deadline:
            raise FtbenchError(
                f"Serve job {job.id} is still loading after {timeout_s:g} s.",
                f"Follow it with `ftbench logs {job.id} -f`.",
            )
        time.sleep(poll_s)


def options_for_run(run_dir: Path) -> ServeOptions:
    """A finished run: its full model (model/) alone, or its adapter on the base the adapter records."""
    if (run_dir / "model" / "config.json").is_file():
        return ServeOptions(model=str(run_dir / "model"))
    cfg = run_dir / "adapter" / "adapter_config.json"
    if not cfg.is_file():
        raise FtbenchError(
            f"Run {run_dir.name} has no adapter/ or model/ folder to serve (yet).",
            "Serve it when the run has finished.",
        )
    base = json.loads(cfg.read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not base:
        raise FtbenchError(
            f"{cfg} does not say which base model the adapter belongs to.",
            "Serve it from the CLI: ftbench serve BASE --adapter RUN.",
        )
    return ServeOptions(model=str(base), adapters=[str(run_dir)])


def options_for_model(path: Path, kind: str, base_model: str | None) -> ServeOptions:
    """A Models-screen entry: a model (HF folder or GGUF) alone, or an adapter on its recorded base."""
    if kind == "adapter":
        if not base_model:
            raise FtbenchError(
                f"Adapter {path} does not record its base model.", "Serve it from the CLI with its base."
            )
        return ServeOptions(model=base_model, adapters=[str(path)])
    return ServeOptions(model=str(path))


def options_for_variants(variants: list[Any]) -> ServeOptions:
    """The chat screen's columns: its HF (or GGUF) model with the adapters, and GGUF columns as extra models."""
    first = next((v for v in variants if v.kind in ("hf", "gguf") and not v.lora), None)
    if first is None:
        raise FtbenchError("The chat has no model column to serve.", "Add one with /add MODEL first.")
    adapters = [v.path for v in variants if v.kind == "adapter" and first.kind == "hf"]
    adapters += [v.lora for v in variants if v.kind == "gguf" and v.lora and v.path == first.path]
    extra = [v.path for v in variants if v.kind == "gguf" and not v.lora and v is not first]
    return ServeOptions(model=first.path, adapters=adapters, ggufs=extra)
