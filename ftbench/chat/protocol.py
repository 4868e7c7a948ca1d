"""The chat server's wire format: one JSON object per line over the server's stdin and stdout.

The TUI and the CLI talk to a separate server process (DESIGN.md "Process model") so a model that crashes or
runs out of memory never takes them down. This module holds the shared vocabulary, with no heavy imports, so
both ends (and the TUI, which must stay light) agree on it:

requests (client -> server), each with an integer `id`:
  {"op": "load", "variant": VariantSpec, "options": {...}}   -> "loaded" or "error"
  {"op": "unload", "variant": NAME}                          -> "ok" or "error"
  {"op": "generate", "variant": NAME, "messages": [...], "settings": GenSettings}
                                                            -> "token"* then "done" or "error"
  {"op": "cancel"} (optionally "target": ID)                 -> "ok"; cancelled generations end "done" with
                                                               "cancelled": true
  {"op": "list"}                                             -> "ok" with "variants"
  {"op": "ping"} / {"op": "shutdown"}                        -> "ok"
events (server -> client) echo the request `id`; the server also sends {"type": "ready"} once at start and
"log" lines with warnings at any time.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ftbench.core.errors import FtbenchError

PROTOCOL_VERSION = 1
OPS = ("load", "unload", "generate", "cancel", "list", "ping", "shutdown")
EVENT_TYPES = ("ready", "ok", "loaded", "token", "done", "error", "log")
VARIANT_KINDS = ("hf", "adapter", "gguf", "scripted")
MAX_LINE_BYTES = 16 * 1024 * 1024


class ProtocolError(FtbenchError):
    """A line that is not a valid request or event; the server answers it with an `error` event."""


@dataclass
class GenSettings:
    """Generation settings shared by every column or set per column. temperature 0 means greedy."""

    system: str = ""
    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 50
    max_new_tokens: int = 256
    repetition_penalty: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        checks = [
            ("temperature", 0.0 <= self.temperature <= 5.0, "between 0 and 5 (0 = greedy)"),
            ("top_p", 0.0 < self.top_p <= 1.0, "in (0, 1]"),
            ("top_k", self.top_k >= 0, "0 (off) or a positive integer"),
            ("max_new_tokens", 1 <= self.max_new_tokens <= 32768, "between 1 and 32768"),
            ("repetition_penalty", 0.5 <= self.repetition_penalty <= 5.0, "between 0.5 and 5"),
        ]
        for key, ok, allowed in checks:
            if not ok:
                raise FtbenchError(
                    f"Generation setting {key}={getattr(self, key)!r} is out of range; it must be {allowed}.",
                    "Change it with --" + key.replace("_", "-") + " or `/set " + key + "=VALUE` in the chat.",
                )

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> GenSettings:
        """Build from a dict, coercing strings (from `/set key=value`) and naming unknown keys."""
        data = dict(data or {})
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise FtbenchError(
                f"Unknown generation setting '{unknown[0]}'.", "Known settings: " + ", ".join(known) + "."
            )
        values: dict[str, Any] = {}
        for key, value in data.items():
            kind = {"str": str, "float": float, "int": int}[str(known[key].type).replace("'", "")]
            try:
                values[key] = kind(value) if value is not None else known[key].default
            except (TypeError, ValueError) as exc:
                raise FtbenchError(
                    f"Generation setting {key}={value!r} is not a valid {kind.__name__}.",
                    f"Give {key} a {kind.__name__} value.",
                ) from exc
        return cls(**values)

    def merged(self, overrides: dict[str, Any] | None) -> GenSettings:
        """These settings with per-column overrides on top."""
        return GenSettings.from_dict({**self.to_dict(), **(overrides or {})})


@dataclass
class VariantSpec:
    """One chat column: what to load and how to name it.

    kind "hf": an HF model folder (a base or a merged model); "adapter": a PEFT adapter folder on the HF base
    `base`; "gguf": a GGUF file for llama.cpp, with an optional LoRA adapter GGUF in `lora`; "scripted": a
    deterministic replier for tests and demos (no model).
    """

    name: str
    kind: str
    path: str = ""
    base: str = ""
    lora: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in VARIANT_KINDS:
            raise FtbenchError(
                f"Variant '{self.name}' has kind '{self.kind}'.", "Allowed kinds: " + ", ".join(VARIANT_KINDS) + "."
            )
        if not self.name:
            raise FtbenchError("A chat variant has an empty name.", "Give every column a name.")
        if self.kind == "adapter" and not self.base:
            raise FtbenchError(f"Adapter variant '{self.name}' names no base model.", "Pass the base model folder.")
        if self.kind in ("hf", "adapter", "gguf") and not self.path:
            raise FtbenchError(f"Variant '{self.name}' ({self.kind}) has no path.", "Pass a model folder or file.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VariantSpec:
        if not isinstance(data, dict):
            raise ProtocolError(
                f"A variant must be a JSON object, got {type(data).__name__}.", "Send name, kind and path."
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ProtocolError(
                f"Variant has unknown key '{unknown[0]}'.", "Allowed keys: " + ", ".join(sorted(known)) + "."
            )
        try:
            return cls(**data)
        except TypeError as exc:
            raise ProtocolError(f"Variant is missing a key: {exc}.", "Send at least name and kind.") from exc

    def describe(self) -> str:
        if self.kind == "adapter":
            return f"{self.path} on {self.base}"
        if self.kind == "gguf" and self.lora:
            return f"{self.path} + {self.lora}"
        return self.path or self.kind


def encode(obj: dict[str, Any]) -> bytes:
    """One message as a UTF-8 JSON line (no embedded newlines: JSON escapes them)."""
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str) + "\n").encode("utf-8")


def decode(line: bytes | str) -> dict[str, Any]:
    """Parse one line into a dict, or raise ProtocolError naming what is wrong."""
    if isinstance(line, bytes):
        if len(line) > MAX_LINE_BYTES:
            raise ProtocolError(
                f"A protocol line of {len(line)} bytes exceeds the {MAX_LINE_BYTES}-byte limit.",
                "Send shorter messages.",
            )
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(
                f"A protocol line is not UTF-8 (byte {exc.start}).", "Encode requests as UTF-8 JSON."
            ) from exc
    text = line.strip()
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise ProtocolError(
            f"A protocol line is not JSON: {exc.msg} at column {exc.colno}.", "Send one JSON object per line."
        ) from exc
    if not isinstance(obj, dict):
        raise ProtocolError(
            f"A protocol line is a JSON {type(obj).__name__}, not an object.", "Send one JSON object per line."
        )
    return obj


def validate_request(obj: dict[str, Any]) -> dict[str, Any]:
    """Check a request's op, id and required fields; returns it unchanged when valid."""
    op = obj.get("op")
    if op not in OPS:
        raise ProtocolError(f"Unknown op {op!r}.", "Allowed ops: " + ", ".join(OPS) + ".")
    if not isinstance(obj.get("id"), int) or isinstance(obj.get("id"), bool):
        raise ProtocolError(f"Request '{op}' has no integer id (got {obj.get('id')!r}).", "Number every request.")
    if op == "load" and not isinstance(obj.get("variant"), dict):
        raise ProtocolError("Request 'load' needs a 'variant' object.", "Send {name, kind, path}.")
    if op in ("unload", "generate") and not isinstance(obj.get("variant"), str):
        raise ProtocolError(f"Request '{op}' needs a 'variant' name.", "Name a loaded variant.")
    if op == "generate":
        check_messages(obj.get("messages"))
    return obj


def check_messages(messages: Any) -> list[dict[str, str]]:
    """A chat history: a non-empty list of {role, content} with roles system/user/assistant."""
    if not isinstance(messages, list) or not messages:
        raise ProtocolError("'messages' must be a non-empty list of {role, content}.", "Send the chat history.")
    for i, msg in enumerate(messages):
        if (
            not isinstance(msg, dict)
            or msg.get("role") not in ("system", "user", "assistant")
            or not isinstance(msg.get("content"), str)
        ):
            raise ProtocolError(
                f"messages[{i}] must be {{role: system|user|assistant, content: string}}, got {msg!r}.",
                "Fix that message.",
            )
    return messages


def error_event(req_id: int | None, exc: BaseException, variant: str | None = None) -> dict[str, Any]:
    """An `error` event: FtbenchError keeps its sentence and hint; anything else is named by type."""
    if isinstance(exc, FtbenchError):
        error = exc.to_dict()
    else:
        error = {"message": f"{type(exc).__name__}: {exc}", "hint": "See the chat server log for details."}
    event: dict[str, Any] = {"type": "error", "id": req_id, "error": error}
    if variant is not None:
        event["variant"] = variant
    return event
