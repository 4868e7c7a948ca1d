"""The chat screen in a tiny host app: an in-process scripted client (snapshot, resolution) and the real chat
server subprocess with the scripted backend (streaming, per-column settings, toggle, crash + restart, reopen)."""

from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.widgets import Input

from ftbench.chat.protocol import GenSettings, VariantSpec
from ftbench.chat.transcripts import load_transcript
from ftbench.tui.screens.chat import ChatScreen
from ftbench.tui.widgets.chat_column import ChatColumn, ChatMessage

SIZE = (120, 32)


class Host(App):
    def __init__(self, screen: ChatScreen) -> None:
        super().__init__()
        self.chat = screen

    def on_mount(self) -> None:
        self.push_screen(self.chat)


class FrozenClient:
    """Answers in-process with fixed text and fixed timings, so screenshots are identical run to run."""

    def __init__(self, on_event, replies: dict[str, str]) -> None:
        self.on_event = on_event
        self.replies = replies
        self.ids = itertools.count(1)
        self.alive = False
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def start(self) -> FrozenClient:
        self.alive = True
        return self

    def close(self) -> None:
        self.alive = False

    def cancel(self) -> None:
        pass

    def send(self, op: str, wait: bool = False, **fields: Any) -> int:
        rid = next(self.ids)
        self.sent.append((op, fields))
        if op == "load":
            name = fields["variant"]["name"]
            self.on_event(
                {
                    "type": "loaded",
                    "id": rid,
                    "variant": name,
                    "load_s": 1.25,
                    "warnings": [],
                    "base_reused": fields["variant"]["kind"] == "adapter",
                }
            )
        elif op == "generate":
            name = fields["variant"]
            text = self.replies.get(name, "ok")
            for word in text.split(" "):
                self.on_event({"type": "token", "id": rid, "variant": name, "text": word + " "})
            self.on_event(
                {
                    "type": "done",
                    "id": rid,
                    "variant": name,
                    "text": text + " ",
                    "tokens": len(text.split()),
                    "ttft_s": 0.042,
                    "tok_s": 31.5,
                    "stop_reason": "stop",
                    "cancelled": False,
                }
            )
        return rid


async def wait_until(pilot, predicate, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not met in time")


async def submit(pilot, screen: ChatScreen, text: str) -> None:
    prompt = screen.query_one("#chat-prompt", Input)
    prompt.value = text
    await prompt.action_submit()
    await pilot.pause()


def frozen_screen(workspace) -> ChatScreen:
    variants = [
        VariantSpec(name="smollm2-135m-instruct", kind="hf", path="/ws/models/smollm2-135m-instruct"),
        VariantSpec(
            name="sft-demo-3f2a",
            kind="adapter",
            path="/ws/runs/sft-demo-3f2a/adapter",
            base="/ws/models/smollm2-135m-instruct",
        ),
    ]
    replies = {
        "smollm2-135m-instruct": "Hello! How can I help you today?",
        "sft-demo-3f2a": "Thanks for your order! Your refund was sent to the original card.",
    }
    screen = ChatScreen(workspace, variants, client_factory=lambda on_event: FrozenClient(on_event, replies))
    screen.transcript.settings = GenSettings(temperature=0.0, max_new_tokens=128)
    return screen


def test_chat_screen_snapshot(workspace, snap_compare) -> None:
    async def run_before(pilot) -> None:
        screen = pilot.app.chat
        await wait_until(pilot, lambda: all(c.status == "ready" for c in screen.columns()))
        screen.query_one("#chat-prompt", Input).cursor_blink = False
        await submit(pilot, screen, "Where is my refund?")
        await wait_until(pilot, lambda: all(c.status == "ready" and c.last_stats for c in screen.columns()))
        await pilot.pause()

    assert snap_compare(Host(frozen_screen(workspace)), terminal_size=SIZE, run_before=run_before)


async def test_columns_stream_and_keep_their_own_settings(workspace) -> None:
    screen = frozen_screen(workspace)
    async with Host(screen).run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: all(c.status == "ready" for c in screen.columns()))
        await submit(pilot, screen, "/set temperature=0.3 top_k=5 @sft-demo-3f2a")
        await submit(pilot, screen, "/system Be brief.")
        await submit(pilot, screen, "Where is my refund?")
        await wait_until(pilot, lambda: all(c.last_stats for c in screen.columns()))
        client: FrozenClient = screen.client
        gens = {f["variant"]: f for op, f in client.sent if op == "generate"}
        assert (
            gens["sft-demo-3f2a"]["settings"]["temperature"] == 0.3 and gens["sft-demo-3f2a"]["settings"]["top_k"] == 5
        )
        assert gens["smollm2-135m-instruct"]["settings"]["temperature"] == 0.0
        assert all(g["settings"]["system"] == "Be brief." for g in gens.values())
        col = screen.column("sft-demo-3f2a")
        assert col.last_stats == "12 tok · TTFT 42 ms · 31.5 tok/s"
        assert [m.text for m in col.query(ChatMessage)] == [
            "Where is my refund?",
            "Thanks for your order! Your refund was sent to the original card. ",
        ]
        assert "temperature=0.3" in str(col.query_one(".col-head").render())
        # Toggle one column off: the next prompt goes to the other only; each keeps its own history.
        await submit(pilot, screen, "/toggle smollm2-135m-instruct")
        await submit(pilot, screen, "And the tracking number?")
        await wait_until(pilot, lambda: len(screen.transcript.history["sft-demo-3f2a"]) == 4)
        assert len(screen.transcript.history["smollm2-135m-instruct"]) == 2
        last = [f for op, f in client.sent if op == "generate"][-1]
        assert last["variant"] == "sft-demo-3f2a" and [m["role"] for m in last["messages"]] == [
            "user",
            "assistant",
            "user",
        ]
        # Unknown commands and bad values are explained, not crashes.
        await submit(pilot, screen, "/set temperature=hot")
        await submit(pilot, screen, "/fly")
        assert screen.is_attached


async def test_open_from_a_run_adds_base_and_adapter(workspace) -> None:
    base = workspace.models_dir / "tiny-base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    run = workspace.runs_dir / "20261122-141503-sft-demo-3f2a"
    (run / "adapter").mkdir(parents=True)
    (run / "status.json").write_text(json.dumps({"id": run.name, "kind": "train", "state": "succeeded"}))
    (run / "adapter" / "adapter_config.json").write_text(
        json.dumps({"peft_type": "LORA", "base_model_name_or_path": "/elsewhere/tiny-base"})
    )
    screen = ChatScreen(workspace, client_factory=lambda on_event: FrozenClient(on_event, {}))
    async with Host(screen).run_test(size=SIZE) as pilot:
        assert screen.query("#chat-empty") and screen.client is None  # nothing loaded, no server yet
        screen.add_adapter(run / "adapter")
        await wait_until(
            pilot, lambda: len(screen.columns()) == 2 and all(c.status == "ready" for c in screen.columns())
        )
        kinds = {v.name: (v.kind, v.path, v.base) for v in screen.transcript.variants}
        assert kinds == {
            "tiny-base": ("hf", str(base), ""),
            "sft-demo-3f2a": ("adapter", str(run / "adapter"), str(base)),
        }
        await submit(pilot, screen, "/remove tiny-base")
        await wait_until(pilot, lambda: len(screen.columns()) == 1)
        assert ("unload", {"variant": "tiny-base"}) in screen.client.sent
        # A full fine-tune's model/ folder becomes a model column named after its run.
        full = workspace.runs_dir / "20261122-150000-full-ft-77aa"
        (full / "model").mkdir(parents=True)
        (full / "status.json").write_text(json.dumps({"id": full.name, "kind": "train", "state": "succeeded"}))
        (full / "model" / "config.json").write_text("{}")
        spec = screen.add_adapter(full / "model")
        assert spec is not None and (spec.name, spec.kind) == ("full-ft-77aa", "hf")
        # Something that is neither: a notification, not a crash.
        assert screen.add_adapter(workspace.root / "nothing-here") is None
        await wait_until(pilot, lambda: len(screen.columns()) == 2)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


async def test_real_server_streams_survives_a_crash_and_reopens(workspace) -> None:
    variants = [
        VariantSpec(
            name="base", kind="scripted", options={"reply": "base says {prompt}", "delay_s": 0.01, "crash_on": "CRASH"}
        ),
        VariantSpec(name="tuned", kind="scripted", options={"reply": "tuned turn {turn}: {prompt}", "delay_s": 0.01}),
    ]
    screen = ChatScreen(workspace, variants)
    async with Host(screen).run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: all(c.status == "ready" for c in screen.columns()))
        first_pid = screen.client.pid
        assert pid_alive(first_pid)
        await submit(pilot, screen, "hello there")
        await wait_until(pilot, lambda: all(c.last_stats for c in screen.columns()))
        texts = {c.variant: [m.text for m in c.query(ChatMessage)] for c in screen.columns()}
        assert texts == {
            "base": ["hello there", "base says hello there"],
            "tuned": ["hello there", "tuned turn 1: hello there"],
        }
        assert all("TTFT" in c.last_stats and "tok/s" in c.last_stats for c in screen.columns())
        saved = screen.saved_path
        assert saved is not None and saved.is_file()

        # esc stops a long reply mid-stream; the column says so and stays usable.
        await submit(
            pilot, screen, "/add " + str(workspace.root / "none") + " as x"
        )  # not a model: explained, no column
        assert len(screen.columns()) == 2
        screen.add_variant(VariantSpec(name="slow", kind="scripted", options={"reply": "slow " * 200, "delay_s": 0.05}))
        await wait_until(pilot, lambda: screen.column("slow").status == "ready")
        await submit(pilot, screen, "/toggle base")
        await submit(pilot, screen, "/toggle tuned")
        await submit(pilot, screen, "go")
        await wait_until(
            pilot, lambda: screen.column("slow").reply is not None and len(screen.column("slow").reply.text) > 10
        )
        await pilot.press("escape")
        await wait_until(pilot, lambda: screen.column("slow").status == "ready")
        assert screen.column("slow").last_stats.endswith("· stopped")
        assert len(screen.transcript.history["slow"][-1]["content"]) < len("slow " * 200)
        await submit(pilot, screen, "/remove slow")
        await submit(pilot, screen, "/toggle base")
        await submit(pilot, screen, "/toggle tuned")
        assert [c.variant for c in screen.columns()] == ["base", "tuned"] and all(c.enabled for c in screen.columns())

        # The server dies mid-chat: the screen stays up, says so, and ctrl+r brings it back.
        await submit(pilot, screen, "please CRASH")
        await wait_until(pilot, lambda: screen.server_state == "crashed")
        assert all(c.status == "error" for c in screen.columns())
        assert any("chat server exited (code 3)" in m.text for m in screen.query(ChatMessage))
        assert not pid_alive(first_pid)
        await pilot.press("ctrl+r")
        await wait_until(
            pilot, lambda: screen.server_state == "running" and all(c.status == "ready" for c in screen.columns())
        )
        assert screen.client.pid != first_pid
        await submit(pilot, screen, "second")
        await wait_until(pilot, lambda: len(screen.transcript.history["tuned"]) == 4)
        await wait_until(pilot, lambda: all(c.status == "ready" for c in screen.columns()))
        assert screen.transcript.history["tuned"][-1]["content"] == "tuned turn 2: second"
        second_pid = screen.client.pid
        # Closing chat ends the server (frees the GPU).
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: not pid_alive(second_pid), timeout=10)

    # Reopen the saved transcript: each column shows its own history and continues from it.
    transcript = load_transcript(workspace, screen.transcript.id)
    assert [m["content"] for m in transcript.history["tuned"]] == [
        "hello there",
        "tuned turn 1: hello there",
        "second",
        "tuned turn 2: second",
    ]
    reopened = ChatScreen(workspace, transcript=transcript)
    async with Host(reopened).run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: all(c.status == "ready" for c in reopened.columns()))
        assert len(reopened.column("tuned").query(ChatMessage)) == 4
        await submit(pilot, reopened, "third")
        await wait_until(pilot, lambda: len(reopened.transcript.history["tuned"]) == 6)
        assert reopened.transcript.history["tuned"][-1]["content"] == "tuned turn 3: third"
        pid = reopened.client.pid
    assert not pid_alive(pid)  # leaving the app (unmount) stops the server too


@pytest.mark.parametrize("module", ["ftbench.tui.screens.chat", "ftbench.tui.widgets.chat_column"])
def test_chat_screen_imports_no_heavy_library(module: str) -> None:
    import subprocess
    import sys

    code = f"import sys, {module}; heavy=[m for m in ('torch','transformers','peft','llama_cpp') if m in sys.modules]; sys.exit(bool(heavy))"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_chat_column_stats_format() -> None:
    from ftbench.tui.widgets.chat_column import format_stats

    assert format_stats({"tokens": 5, "ttft_s": 0.1234, "tok_s": 12.345}) == "5 tok · TTFT 123 ms · 12.3 tok/s"
    assert (
        format_stats({"tokens": 0, "ttft_s": None, "tok_s": None, "cancelled": True})
        == "0 tok · TTFT n/a · n/a · stopped"
    )
    assert ChatColumn("x", "hf").enabled


async def test_standalone_chat_app_closes_with_its_server(workspace) -> None:
    from ftbench.chat.transcripts import Transcript
    from ftbench.tui.chat_app import ChatApp

    app = ChatApp(workspace, Transcript.new([VariantSpec(name="s", kind="scripted")]))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(
            pilot, lambda: isinstance(app.screen, ChatScreen) and all(c.status == "ready" for c in app.screen.columns())
        )
        pid = app.screen.client.pid
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: not pid_alive(pid), timeout=10)
    assert app.return_value == 0
