"""A model-free backend that replies from a template: for TUI tests, demos and protocol tests.

It goes through the same server, protocol and client as the real backends, so a test of the chat screen
exercises the real subprocess plumbing without loading torch. Options: `reply` (a str.format template with
{prompt}, {variant}, {turn}), `delay_s` per token, `fail_load` (load fails with that message) and `crash_on`
(a prompt containing it kills the server process, to test that clients survive a crash).
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

from ftbench.chat.base import StopCheck, StreamStats, TokenCallback
from ftbench.chat.protocol import GenSettings, VariantSpec
from ftbench.core.errors import FtbenchError

DEFAULT_REPLY = "[{variant}] turn {turn}: you said {prompt}"


class ScriptedBackend:
    def __init__(self) -> None:
        self.specs: dict[str, VariantSpec] = {}

    def load(self, spec: VariantSpec) -> dict[str, Any]:
        if spec.options.get("fail_load"):
            raise FtbenchError(str(spec.options["fail_load"]), "This scripted column was told to fail.")
        self.specs[spec.name] = spec
        return {"load_s": 0.0, "warnings": [], "template": "scripted"}

    def unload(self, name: str) -> None:
        del self.specs[name]

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
        spec = self.specs[name]
        prompt = prompt if prompt is not None else messages[-1]["content"]
        crash = spec.options.get("crash_on")
        if crash and crash in prompt:
            os._exit(3)
        turn = sum(1 for m in messages if m["role"] == "user")
        text = str(spec.options.get("reply", DEFAULT_REPLY)).format(prompt=prompt, variant=name, turn=turn)
        pieces = re.findall(r"\s*\S+", text)[: settings.max_new_tokens]
        delay = float(spec.options.get("delay_s", 0.0))
        stats = StreamStats()
        reason = "stop" if len(pieces) < settings.max_new_tokens or not text else "length"
        for piece in pieces:
            if should_stop():
                reason = "cancelled"
                break
            if delay:
                time.sleep(delay)
            stats.token(piece)
            on_token(piece)
        return {**stats.result(reason), "prompt_tokens": len(prompt.split())}
