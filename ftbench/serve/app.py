"""The Starlette app: routes, the key check, body limits, fair queueing, and streaming as server-sent events.

Generation runs in worker threads (the backends block); tokens cross to the event loop through a queue.
Each backend group has an asyncio lock, which wakes waiters in arrival order, so requests to one base are
served first come, first served; at most `max_concurrency` requests are admitted at once and up to
`max_queue` more wait, beyond that a request gets 429. A bad request or a failing generation answers
with OpenAI's error shape and the server keeps going.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ftbench.core.errors import FtbenchError
from ftbench.serve.engines import Engine
from ftbench.serve.openai_api import (
    ApiError,
    GenRequest,
    Limits,
    chunk_body,
    completion_body,
    finish_reason,
    models_body,
    new_id,
    parse_request,
)
from ftbench.serve.safety import key_matches

RequestHook = Callable[[dict[str, Any]], None]


@dataclass
class ServeStats:
    """Counters for Jobs (request count, tokens/s over the time spent generating)."""

    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    busy_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, result: dict[str, Any] | None, seconds: float) -> dict[str, Any]:
        with self._lock:
            self.requests += 1
            if result is None:
                self.errors += 1
            else:
                self.prompt_tokens += int(result.get("prompt_tokens") or 0)
                self.completion_tokens += int(result.get("tokens") or 0)
                self.busy_s += seconds
            return self.snapshot()

    def snapshot(self) -> dict[str, Any]:
        tok_s = self.completion_tokens / self.busy_s if self.busy_s > 0 else 0.0
        return {
            "requests": self.requests,
            "errors": self.errors,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "tok_s": round(tok_s, 2),
        }


def error_response(err: ApiError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status)


class Server:
    """The state behind the routes; `build_app` wires it into Starlette."""

    def __init__(
        self,
        engine: Engine,
        api_key: str | None = None,
        limits: Limits | None = None,
        max_concurrency: int = 4,
        max_queue: int = 64,
        on_request: RequestHook | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        self.engine = engine
        self.api_key = api_key
        self.limits = limits or Limits()
        self.max_concurrency = max(1, max_concurrency)
        self.max_queue = max(0, max_queue)
        self.on_request = on_request
        self.log = log
        self.stats = ServeStats()
        self.pending = 0
        self.closing = threading.Event()  # set on shutdown: generations still running stop at their next token
        self.executor = ThreadPoolExecutor(max_workers=self.max_concurrency, thread_name_prefix="gen")
        self._admit: asyncio.Semaphore | None = None
        self._groups: dict[str, asyncio.Lock] = {}

    # -- plumbing ------------------------------------------------------------------------------------------
    def _check_key(self, request: Request) -> None:
        if self.api_key is not None and not key_matches(self.api_key, request.headers.get("authorization")):
            raise ApiError(
                401,
                "Missing or wrong API key; send it as 'Authorization: Bearer KEY'.",
                type="authentication_error",
                code="invalid_api_key",
            )

    async def _json_body(self, request: Request) -> Any:
        limit = self.limits.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, f"The request body is {int(declared)} bytes; the limit is {limit}.")
        data = bytearray()
        async for chunk in request.stream():
            data.extend(chunk)
            if len(data) > limit:
                raise ApiError(413, f"The request body is over the limit of {limit} bytes.")
        try:
            return json.loads(bytes(data) or b"null")
        except ValueError as exc:
            raise ApiError(400, f"The request body is not valid JSON ({exc}).") from exc

    def _lock_for(self, model: str) -> asyncio.Lock:
        group = self.engine.routes[model].group
        if group not in self._groups:
            self._groups[group] = asyncio.Lock()
        return self._groups[group]

    def _finish(self, path: str, req: GenRequest, status: int, result: dict[str, Any] | None, t0: float) -> None:
        seconds = time.perf_counter() - t0
        snapshot = self.stats.add(result if status == 200 else None, seconds)
        tokens = int((result or {}).get("tokens") or 0)
        self.log(f"POST {path} model={req.model} status={status} tokens={tokens} {seconds:.2f}s")
        if self.on_request is not None:
            self.on_request(
                {
                    "path": path,
                    "model": req.model,
                    "status": status,
                    "completion_tokens": tokens,
                    "prompt_tokens": int((result or {}).get("prompt_tokens") or 0),
                    "latency_s": round(seconds, 4),
                    **{f"total_{k}": v for k, v in snapshot.items()},
                }
            )

    # -- routes --------------------------------------------------------------------------------------------
    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "models": self.engine.names})

    async def models(self, request: Request) -> Response:
        try:
            self._check_key(request)
        except ApiError as err:
            return error_response(err)
        return JSONResponse(models_body(self.engine.names))

    async def chat_completions(self, request: Request) -> Response:
        return await self._complete(request, chat=True)

    async def completions(self, request: Request) -> Response:
        return await self._complete(request, chat=False)

    async def _complete(self, request: Request, chat: bool) -> Response:
        try:
            self._check_key(request)
            req = parse_request(await self._json_body(request), self.engine.names, self.limits, chat)
        except ApiError as err:
            return error_response(err)
        if self.pending >= self.max_concurrency + self.max_queue:
            return error_response(
                ApiError(
                    429,
                    f"The server is busy ({self.pending} requests in flight); retry shortly.",
                    type="rate_limit_error",
                    code="server_busy",
                )
            )
        if self._admit is None:
            self._admit = asyncio.Semaphore(self.max_concurrency)
        if req.stream:
            return StreamingResponse(
                self._stream(request.url.path, req),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        t0 = time.perf_counter()
        self.pending += 1
        try:
            async with self._admit, self._lock_for(req.model):
                result = await asyncio.get_running_loop().run_in_executor(
                    self.executor, lambda: self._generate(req, lambda _piece: None, lambda: False)
                )
        except ApiError as err:
            self._finish(request.url.path, req, err.status, None, t0)
            return error_response(err)
        finally:
            self.pending -= 1
        self._finish(request.url.path, req, 200, result, t0)
        return JSONResponse(completion_body(req, new_id("chatcmpl" if chat else "cmpl"), int(time.time()), result))

    def _generate(
        self, req: GenRequest, on_token: Callable[[str], None], should_stop: Callable[[], bool]
    ) -> dict[str, Any]:
        try:
            return self.engine.generate(
                req.model,
                req.messages or [],
                req.settings,
                on_token,
                lambda: should_stop() or self.closing.is_set(),
                stops=req.stops,
                prompt=req.prompt,
            )
        except FtbenchError as exc:
            raise ApiError(400, exc.message) from exc
        except Exception as exc:  # noqa: BLE001 - a failing generation is this request's error, not the server's end
            self.log(f"error: generation for {req.model} failed: {type(exc).__name__}: {exc}")
            raise ApiError(500, f"Generation failed: {type(exc).__name__}: {exc}", type="server_error") from exc

    async def _stream(self, path: str, req: GenRequest) -> AsyncIterator[bytes]:
        """Server-sent events: a role chunk, one chunk per piece of text, the finish chunk, usage if asked, [DONE]."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        cancelled = threading.Event()
        rid, created, t0 = (
            new_id("chatcmpl" if req.messages is not None else "cmpl"),
            int(time.time()),
            time.perf_counter(),
        )

        def event(body: dict[str, Any]) -> bytes:
            return f"data: {json.dumps(body, ensure_ascii=False)}\n\n".encode()

        def work() -> None:
            try:
                result = self._generate(
                    req, lambda piece: loop.call_soon_threadsafe(queue.put_nowait, ("piece", piece)), cancelled.is_set
                )
                loop.call_soon_threadsafe(queue.put_nowait, ("done", result))
            except ApiError as err:
                loop.call_soon_threadsafe(queue.put_nowait, ("error", err))

        status, result = 200, None
        self.pending += 1
        try:
            async with self._admit, self._lock_for(req.model):  # type: ignore[union-attr]
                if req.messages is not None:
                    yield event(chunk_body(req, rid, created, role=True))
                future = loop.run_in_executor(self.executor, work)
                try:
                    while True:
                        kind, value = await queue.get()
                        if kind == "piece":
                            yield event(chunk_body(req, rid, created, piece=value))
                        elif kind == "done":
                            result = value
                            yield event(chunk_body(req, rid, created, reason=finish_reason(value["stop_reason"])))
                            if req.include_usage:
                                yield event(chunk_body(req, rid, created, usage_of=value))
                            break
                        else:
                            status = value.status
                            yield event(value.body())
                            break
                    yield b"data: [DONE]\n\n"
                finally:
                    cancelled.set()  # the client went away mid-stream: stop generating
                    await future
        finally:
            self.pending -= 1
            self._finish(path, req, status, result, t0)


def build_app(server: Server) -> Starlette:
    routes = [
        Route("/health", server.health, methods=["GET"]),
        Route("/v1/models", server.models, methods=["GET"]),
        Route("/v1/chat/completions", server.chat_completions, methods=["POST"]),
        Route("/v1/completions", server.completions, methods=["POST"]),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        return error_response(
            ApiError(
                status,
                f"No route {request.method} {request.url.path}; see GET /v1/models.",
                code="not_found" if status == 404 else "method_not_allowed",
            )
        )

    async def crashed(request: Request, exc: Exception) -> Response:
        server.log(f"error: {request.method} {request.url.path}: {type(exc).__name__}: {exc}")
        return error_response(ApiError(500, f"Internal error: {type(exc).__name__}.", type="server_error"))

    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found, Exception: crashed})
