"""Run the server: resolve the variants, load them, bind the socket, then serve until stopped.

Shared by the serve job (`ftbench.serve.job`) and `ftbench serve --foreground`. The socket is bound here,
before uvicorn starts, so port 0 becomes a real free port that is known (and recorded) before the first
request; the key travels only in memory and in the process environment, never in a file or the log.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ftbench.core.errors import FtbenchError
from ftbench.core.workspace import Workspace
from ftbench.serve.connect import base_url
from ftbench.serve.safety import check_bind, is_loopback

BASE_NAME = "base"


@dataclass
class ServeOptions:
    """What `ftbench serve` was asked for; stored in job.json (the key is not an option: see `api_key`)."""

    model: str
    adapters: list[str] = field(default_factory=list)
    ggufs: list[str] = field(default_factory=list)
    engine: str = "auto"
    host: str = "127.0.0.1"
    port: int = 0
    max_concurrency: int = 4
    max_queue: int = 64
    max_tokens: int = 2048
    max_body_bytes: int = 1024 * 1024
    device: str | None = None
    n_ctx: int = 4096

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServeOptions:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


def serve_variants(ws: Workspace, opts: ServeOptions) -> list[Any]:
    """The variants by their served names: the MODEL is `base`, adapters and GGUFs keep chat's names."""
    from ftbench.chat.variants import build_variants

    specs = build_variants(ws, opts.model, opts.adapters, include_base=True, extra_models=opts.ggufs)
    if any(s.name == BASE_NAME for s in specs[1:]):
        raise FtbenchError(f"An adapter or GGUF is named '{BASE_NAME}', the name of the base model.", "Rename it.")
    specs[0].name = BASE_NAME
    return specs


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host.strip("[]"), port), family=family, reuse_port=False)
    except OSError as exc:
        raise FtbenchError(
            f"Cannot listen on {host}:{port}: {exc.strerror or exc}.",
            "Pick another --port (or leave it out for a free one).",
        ) from exc


def serve(
    ws: Workspace,
    opts: ServeOptions,
    api_key: str | None,
    on_ready: Callable[[dict[str, Any]], None],
    on_request: Callable[[dict[str, Any]], None] | None,
    stop: threading.Event,
    log: Callable[[str], None],
) -> None:
    """Load, bind, announce (`on_ready` gets the serve card data), and serve until `stop` is set or a signal."""
    import uvicorn

    from ftbench.serve.app import Server, build_app
    from ftbench.serve.engines import Engine
    from ftbench.serve.openai_api import Limits

    check_bind(opts.host, api_key)
    specs = serve_variants(ws, opts)
    engine = Engine(device=opts.device, n_ctx=opts.n_ctx)
    engine.load(specs, opts.engine, log=log)
    sock = bind(opts.host, opts.port)
    port = sock.getsockname()[1]
    server = Server(
        engine,
        api_key=api_key,
        limits=Limits(opts.max_tokens, opts.max_body_bytes),
        max_concurrency=opts.max_concurrency,
        max_queue=opts.max_queue,
        on_request=on_request,
        log=lambda line: print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True),
    )
    config = uvicorn.Config(
        build_app(server), log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=5
    )
    http = uvicorn.Server(config)
    threading.Thread(
        target=lambda: (stop.wait(), setattr(http, "should_exit", True)), name="serve-stop", daemon=True
    ).start()
    card = {
        "url": base_url(opts.host, port),
        "host": opts.host,
        "port": port,
        "variants": engine.names,
        "engine": opts.engine,
        "auth": api_key is not None,
        "loopback": is_loopback(opts.host),
    }
    on_ready(card)
    log(f"Serving {', '.join(engine.names)} at {card['url']}" + (" (API key required)" if api_key else ""))
    try:
        http.run(sockets=[sock])
    finally:
        server.closing.set()
        server.executor.shutdown(wait=False, cancel_futures=True)
        sock.close()
