"""The OpenAI wire format: request validation into generation settings, response bodies, and the error shape.

Pure functions with no web stack, so every rule (limits, defaults, what a bad field says) is testable alone.
A bad request raises `ApiError`, which the app turns into OpenAI's `{"error": {...}}` body and status code.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from ftbench.chat.protocol import GenSettings
from ftbench.core.errors import FtbenchError

ROLES = ("system", "user", "assistant")
MAX_STOPS = 4
DEFAULT_MAX_TOKENS = 256


class ApiError(Exception):
    """An HTTP error in OpenAI's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclass
class Limits:
    max_tokens: int = 2048
    max_body_bytes: int = 1024 * 1024


@dataclass
class GenRequest:
    """One validated request: which variant, what to continue, how, and whether to stream."""

    model: str
    settings: GenSettings
    stops: tuple[str, ...]
    stream: bool
    messages: list[dict[str, str]] | None = None
    prompt: str | None = None
    include_usage: bool = False


def _number(body: dict[str, Any], key: str, default: float, low: float, high: float, integer: bool = False) -> Any:
    value = body.get(key)
    if value is None:
        return default
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
        what = "an integer" if integer else "a number"
        raise ApiError(400, f"'{key}' must be {what} between {low:g} and {high:g}, not {value!r}.", param=key)
    return value


def _content(message: dict[str, Any], index: int) -> str:
    """A message's text: a string, or the text parts of a content list (images are not supported)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        return "".join(str(p.get("text", "")) for p in content)
    raise ApiError(
        400, f"messages[{index}].content must be a string or a list of text parts.", param=f"messages[{index}].content"
    )


def _messages(body: dict[str, Any]) -> list[dict[str, str]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list of {role, content} objects.", param="messages")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise ApiError(400, f"messages[{i}] must be an object with role and content.", param=f"messages[{i}]")
        role = "system" if m.get("role") == "developer" else m.get("role")
        if role not in ROLES:
            raise ApiError(
                400,
                f"messages[{i}].role must be one of {', '.join(ROLES)}, not {m.get('role')!r}.",
                param=f"messages[{i}].role",
            )
        out.append({"role": role, "content": _content(m, i)})
    return out


def _stops(body: dict[str, Any]) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops) or len(stops) > MAX_STOPS:
        raise ApiError(400, f"'stop' must be a string or a list of at most {MAX_STOPS} strings.", param="stop")
    return tuple(s for s in stops if s)


def parse_request(body: Any, known_models: list[str], limits: Limits, chat: bool) -> GenRequest:
    """Validate a /v1/chat/completions (chat=True) or /v1/completions body."""
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "'model' is required: one of " + ", ".join(known_models) + ".", param="model")
    if model not in known_models:
        raise ApiError(
            404,
            f"The model '{model}' does not exist here; this server has: {', '.join(known_models)}.",
            param="model",
            code="model_not_found",
        )
    n = body.get("n", 1)
    if n != 1:
        raise ApiError(400, f"Only n=1 is supported, not {n!r}.", param="n")
    key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = _number(body, key, min(DEFAULT_MAX_TOKENS, limits.max_tokens), 1, limits.max_tokens, integer=True)
    temperature = _number(body, "temperature", 1.0, 0.0, 2.0)
    top_p = _number(body, "top_p", 1.0, 0.0, 1.0)
    seed = _number(body, "seed", 0, -(2**63), 2**63 - 1, integer=True)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiError(400, "'stream' must be true or false.", param="stream")
    options = body.get("stream_options") or {}
    try:
        settings = GenSettings(
            temperature=float(temperature),
            top_p=max(float(top_p), 1e-6),
            top_k=0,
            max_new_tokens=int(max_tokens),
            seed=int(seed) % 2**32,
        )
    except FtbenchError as exc:
        raise ApiError(400, exc.message) from exc
    request = GenRequest(
        model=model,
        settings=settings,
        stops=_stops(body),
        stream=stream,
        include_usage=bool(isinstance(options, dict) and options.get("include_usage")),
    )
    if chat:
        request.messages = _messages(body)
    else:
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise ApiError(400, "'prompt' must be a string (one prompt per request).", param="prompt")
        request.prompt = prompt
    return request


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


def finish_reason(stop_reason: str) -> str:
    return "length" if stop_reason == "length" else "stop"


def usage(result: dict[str, Any]) -> dict[str, int]:
    prompt, completion = int(result.get("prompt_tokens") or 0), int(result.get("tokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion_body(req: GenRequest, rid: str, created: int, result: dict[str, Any]) -> dict[str, Any]:
    """The non-streamed response for either endpoint."""
    reason = finish_reason(result["stop_reason"])
    if req.messages is not None:
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": result["text"]},
            "logprobs": None,
            "finish_reason": reason,
        }
        obj = "chat.completion"
    else:
        choice = {"index": 0, "text": result["text"], "logprobs": None, "finish_reason": reason}
        obj = "text_completion"
    return {
        "id": rid,
        "object": obj,
        "created": created,
        "model": req.model,
        "choices": [choice],
        "usage": usage(result),
    }


def chunk_body(
    req: GenRequest,
    rid: str,
    created: int,
    piece: str | None = None,
    reason: str | None = None,
    role: bool = False,
    usage_of: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One server-sent event of a streamed response; with `usage_of`, the final usage-only chunk."""
    if req.messages is not None:
        delta: dict[str, Any] = {"role": "assistant", "content": ""} if role else ({"content": piece} if piece else {})
        choices = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}]
        obj = "chat.completion.chunk"
    else:
        choices = [{"index": 0, "text": piece or "", "logprobs": None, "finish_reason": reason}]
        obj = "text_completion"
    body: dict[str, Any] = {
        "id": rid,
        "object": obj,
        "created": created,
        "model": req.model,
        "choices": [] if usage_of is not None else choices,
    }
    if usage_of is not None:
        body["usage"] = usage(usage_of)
    return body


def models_body(names: list[str], created: int | None = None) -> dict[str, Any]:
    created = created or int(time.time())
    return {
        "object": "list",
        "data": [{"id": n, "object": "model", "created": created, "owned_by": "ftbench"} for n in names],
    }
