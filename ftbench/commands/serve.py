"""`ftbench serve`: an OpenAI-compatible endpoint for a model, its adapters and GGUF files.

    ftbench serve MODEL [--adapter RUN_OR_PATH ...] [--gguf FILE ...] [--engine auto|hf|llamacpp|vllm]
                  [--host 127.0.0.1] [--port N] [--api-key KEY] [--max-concurrency N] [--foreground]

By default the server is a detached job (listed in Jobs and `ftbench runs --all`, stopped with
`ftbench stop ID`); the command waits until the models are loaded and prints the URL.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
from typing import Any

from ftbench.cli import print_json, subparser
from ftbench.core.errors import FtbenchError


def register(sub: Any) -> None:
    p = subparser(sub, "serve", "serve a model and its adapters over an OpenAI-compatible HTTP API (a background job)")
    p.add_argument("model", help="HF model folder, .gguf file, name under models/, or run id (served as `base`)")
    p.add_argument(
        "--adapter",
        "-a",
        action="append",
        default=[],
        metavar="RUN_OR_PATH",
        help="PEFT adapter folder or run id (repeatable); a LoRA .gguf on a GGUF model",
    )
    p.add_argument(
        "--gguf", action="append", default=[], metavar="FILE", help="a GGUF file served as its own model (repeatable)"
    )
    p.add_argument(
        "--engine",
        choices=("auto", "hf", "llamacpp", "vllm"),
        default="auto",
        help="what runs MODEL and its adapters (auto: hf for a folder, llamacpp for a .gguf)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; others need a key)")
    p.add_argument("--port", type=int, default=0, help="port (default: a free one, printed and recorded)")
    p.add_argument("--api-key", default=None, help="require this key (default: $FTBENCH_API_KEY when set)")
    p.add_argument("--max-concurrency", type=int, default=4, help="requests admitted at once (more wait in line)")
    p.add_argument("--max-tokens-limit", type=int, default=2048, help="largest max_tokens a request may ask for")
    p.add_argument("--max-body-kb", type=int, default=1024, help="largest request body in KiB")
    p.add_argument("--device", default=None, help="cuda, cpu or auto (hf engine)")
    p.add_argument("--n-ctx", type=int, default=4096, help="context length for GGUF models")
    p.add_argument("--foreground", action="store_true", help="run in this terminal instead of as a job (Ctrl-C stops)")
    p.add_argument("--no-wait", action="store_true", help="start the job and return without waiting for the URL")
    p.add_argument("--json", action="store_true", help="print the job id, URL and models as JSON")
    p.set_defaults(func=cmd_serve)


def options_from(args: argparse.Namespace) -> Any:
    from ftbench.serve.runner import ServeOptions

    for flag, value, low in (
        ("--port", args.port, 0),
        ("--max-concurrency", args.max_concurrency, 1),
        ("--max-tokens-limit", args.max_tokens_limit, 1),
        ("--max-body-kb", args.max_body_kb, 1),
    ):
        if value < low or (flag == "--port" and value > 65535):
            raise FtbenchError(
                f"{flag} {value} is out of range.",
                f"Give {flag} a value of at least {low}" + (" and at most 65535." if flag == "--port" else "."),
            )
    return ServeOptions(
        model=args.model,
        adapters=list(args.adapter),
        ggufs=list(args.gguf),
        engine=args.engine,
        host=args.host,
        port=args.port,
        max_concurrency=args.max_concurrency,
        max_tokens=args.max_tokens_limit,
        max_body_bytes=args.max_body_kb * 1024,
        device=args.device,
        n_ctx=args.n_ctx,
    )


def cmd_serve(args: argparse.Namespace, ws: Any) -> int:
    from ftbench.serve.launch import start_serve_job, wait_ready
    from ftbench.serve.runner import serve_variants
    from ftbench.serve.safety import api_key_from, check_bind

    opts = options_from(args)
    api_key = api_key_from(args.api_key)
    if args.foreground:
        check_bind(opts.host, api_key)
        serve_variants(ws, opts)
        return run_foreground(ws, opts, api_key, args.json)
    job = start_serve_job(ws, opts, api_key)
    if args.no_wait:
        report(args.json, {"id": job.id, "dir": str(job.dir), "state": job.state}, f"Started serve job {job.id}.")
        return 0
    serve = wait_ready(job)
    from ftbench.serve.connect import serve_card

    text = "\n".join(
        [f"Serving as job {job.id} (stop it with `ftbench stop {job.id}`)", *serve_card(serve, socket.gethostname())]
    )
    report(args.json, {"id": job.id, "dir": str(job.dir), **serve}, text)
    return 0


def report(as_json: bool, data: dict[str, Any], text: str) -> None:
    if as_json:
        print_json(data)
    else:
        print(text)


def run_foreground(ws: Any, opts: Any, api_key: str | None, as_json: bool) -> int:
    from ftbench.serve.connect import serve_card
    from ftbench.serve.runner import serve

    def on_ready(card: dict[str, Any]) -> None:
        report(as_json, card, "\n".join(serve_card(card, socket.gethostname())))
        sys.stdout.flush()

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    serve(ws, opts, api_key, on_ready, None, threading.Event(), log)
    return 0
