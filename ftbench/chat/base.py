"""What every chat backend shares: the backend interface, streaming timing, and stop handling.

Backends live only inside the chat server process. Each one turns a chat history into streamed text and
reports the same numbers (time to first token, tokens/s), measured the same way, so columns backed by
transformers, llama.cpp or a script compare fairly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ftbench.chat.protocol import GenSettings, VariantSpec

TokenCallback = Callable[[str], None]
StopCheck = Callable[[], bool]


class Backend(Protocol):
    """A family of models the server can load variants into."""

    def load(self, spec: VariantSpec) -> dict[str, Any]:
        """Load a variant; returns info (load_s, warnings, shares_base_with, ...). Raises FtbenchError."""
        ...

    def unload(self, name: str) -> None: ...

    def generate(
        self,
        name: str,
        messages: list[dict[str, str]],
        settings: GenSettings,
        on_token: TokenCallback,
        should_stop: StopCheck,
        stops: tuple[str, ...] = (),
        prompt: str | None = None,
    ) -> dict[str, Any]:
        """Stream a reply to `messages` (or a continuation of the raw `prompt`) through `on_token`, ending early at
        any of `stops`; returns the stats of `StreamStats.result` plus `prompt_tokens`."""
        ...


@dataclass
class StreamStats:
    """Times one generation: TTFT from the request to the first text, tokens/s over the decode phase."""

    start: float = field(default_factory=time.perf_counter)
    first: float | None = None
    last: float | None = None
    tokens: int = 0
    text: str = ""

    def token(self, piece: str, count: int = 1) -> None:
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        self.last = now
        self.tokens += count
        self.text += piece

    def result(self, stop_reason: str) -> dict[str, Any]:
        ttft = (self.first - self.start) if self.first is not None else None
        # Decode speed excludes the prompt phase: tokens after the first over the time after the first.
        span = (self.last - self.first) if (self.first is not None and self.last is not None) else 0.0
        tok_s = (self.tokens - 1) / span if self.tokens > 1 and span > 0 else None
        return {
            "text": self.text,
            "tokens": self.tokens,
            "ttft_s": round(ttft, 4) if ttft is not None else None,
            "tok_s": round(tok_s, 2) if tok_s is not None else None,
            "total_s": round(time.perf_counter() - self.start, 4),
            "stop_reason": stop_reason,
        }


def with_system(messages: list[dict[str, str]], system: str) -> list[dict[str, str]]:
    """Prepend the settings' system prompt unless the history already starts with one."""
    if system and (not messages or messages[0].get("role") != "system"):
        return [{"role": "system", "content": system}, *messages]
    return list(messages)


def cut_at_stop(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    """Text up to the first stop string, and whether one was found."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
