"""The serve job target (`kind="serve"`): the server as a detached job that outlives the terminal.

status.json gets `serve` (URL, port, variant names, whether a key is needed) once the models are loaded,
and `progress` with the request count and tokens/s; every request is a `serve_request` event. SIGTERM (`ftbench
stop`) shuts the server down gracefully and the job ends `stopped`.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from ftbench.core.jobs import update_status
from ftbench.serve.safety import KEY_ENV

PROGRESS_EVERY_S = 1.0


def progress_phase(snapshot: dict[str, Any]) -> str:
    """What Jobs shows in the progress column for a server."""
    return f"serving {snapshot['requests']} req {snapshot['tok_s']:.1f} tok/s"


def run(ctx: Any) -> None:
    from ftbench.serve.runner import ServeOptions, serve

    ctx.cooperative_stop = True  # uvicorn finishes in-flight requests, then the job ends `stopped`
    opts = ServeOptions.from_dict(ctx.params)
    api_key = os.environ.get(KEY_ENV) or None
    stop = threading.Event()

    last: dict[str, Any] = {"written": 0.0, "record": None, "shown": None}

    def watch() -> None:
        """Notices `ftbench stop`, and writes the newest request's progress at most once a second, also after
        the last request of a burst (a write from the request path alone would leave the count behind)."""
        while not stop.wait(0.2):
            if ctx.stop_requested:
                stop.set()
            record = last["record"]
            if record is not last["shown"] and time.monotonic() - last["written"] >= PROGRESS_EVERY_S:
                last["written"], last["shown"] = time.monotonic(), record
                write_progress(record)

    threading.Thread(target=watch, name="job-stop-and-progress", daemon=True).start()

    def on_ready(card: dict[str, Any]) -> None:
        update_status(ctx.job_dir, serve={**card, "ready": True}, progress={"phase": "serving 0 req 0.0 tok/s"})
        ctx.set_result(url=card["url"], models=card["variants"])  # what `ftbench show` and the registry list
        ctx.emit("log", level="info", message=f"serving at {card['url']}")

    def on_request(record: dict[str, Any]) -> None:
        ctx.emit(  # spelled out so the event contract test sees every key (core/event_schema.py)
            "serve_request",
            path=record["path"],
            model=record["model"],
            status=record["status"],
            prompt_tokens=record["prompt_tokens"],
            completion_tokens=record["completion_tokens"],
            latency_s=record["latency_s"],
            total_requests=record["total_requests"],
            total_errors=record["total_errors"],
            total_prompt_tokens=record["total_prompt_tokens"],
            total_completion_tokens=record["total_completion_tokens"],
            total_tok_s=record["total_tok_s"],
        )
        last["record"] = record

    def write_progress(record: dict[str, Any]) -> None:
        snapshot = {"requests": record["total_requests"], "tok_s": record["total_tok_s"]}
        update_status(ctx.job_dir, progress={"phase": progress_phase(snapshot), "done": None, "total": None})

    try:
        serve(ctx.workspace, opts, api_key, on_ready, on_request, stop, ctx.log)
    finally:
        stop.set()
        if last["record"] is not None:
            write_progress(last["record"])
    if not ctx.stop_requested:
        ctx.request_stop()  # uvicorn took the SIGTERM itself: still a stop, not a success
