"""A prompt typed while the chat columns load is held and sent once they are ready, or handed back visibly."""

from __future__ import annotations

from typing import Any

from test_chat_screen import SIZE, FrozenClient, Host, frozen_screen, submit, wait_until
from textual.widgets import Input, Static


class GatedClient(FrozenClient):
    """Like FrozenClient, but each model finishes loading only when the test says (or fails to load)."""

    def __init__(self, on_event, replies: dict[str, str]) -> None:
        super().__init__(on_event, replies)
        self.held: list[tuple[int, dict[str, Any]]] = []

    def send(self, op: str, wait: bool = False, **fields: Any) -> int:
        if op != "load":
            return super().send(op, wait, **fields)
        rid = next(self.ids)
        self.sent.append((op, fields))
        self.held.append((rid, fields))
        return rid

    def finish_loading(self, fail: bool = False) -> None:
        for rid, fields in self.held:
            name = fields["variant"]["name"]
            if fail:
                self.on_event({"type": "error", "id": rid, "variant": name, "error": {"message": "out of memory"}})
            else:
                self.on_event({"type": "loaded", "id": rid, "variant": name, "load_s": 0.5, "warnings": []})
        self.held = []


def gated_screen(workspace):
    screen = frozen_screen(workspace)
    replies = {"smollm2-135m-instruct": "base answer", "sft-demo-3f2a": "adapter answer"}
    screen.client_factory = lambda on_event: GatedClient(on_event, replies)
    return screen


def generated(client: FrozenClient) -> list[tuple[str, str]]:
    return [(f["variant"], f["messages"][-1]["content"]) for op, f in client.sent if op == "generate"]


async def test_prompts_typed_while_loading_are_sent_in_order_when_ready(workspace) -> None:
    screen = gated_screen(workspace)
    async with Host(screen).run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: screen.client is not None and len(screen.client.held) == 2)
        assert all(c.status == "loading" for c in screen.columns())
        await submit(pilot, screen, "first question")
        await submit(pilot, screen, "second question")
        client: GatedClient = screen.client
        assert generated(client) == []  # nothing can answer yet: held, not dropped
        assert "2 queued" in str(screen.query_one("#chat-bar", Static).render())
        assert screen.query_one("#chat-prompt", Input).value == ""

        client.finish_loading()
        await wait_until(pilot, lambda: len(generated(client)) == 4)
        assert generated(client) == [
            ("smollm2-135m-instruct", "first question"),
            ("sft-demo-3f2a", "first question"),
            ("smollm2-135m-instruct", "second question"),
            ("sft-demo-3f2a", "second question"),
        ]
        history = screen.transcript.history["sft-demo-3f2a"]
        await wait_until(pilot, lambda: len(history) == 4)
        assert [m["content"].strip() for m in history] == [
            "first question",
            "adapter answer",
            "second question",
            "adapter answer",
        ]
        assert "queued" not in str(screen.query_one("#chat-bar", Static).render())


async def test_a_held_prompt_comes_back_to_the_box_when_no_column_can_answer(workspace) -> None:
    screen = gated_screen(workspace)
    async with Host(screen).run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: screen.client is not None and len(screen.client.held) == 2)
        await submit(pilot, screen, "are you there?")
        screen.client.finish_loading(fail=True)
        prompt = screen.query_one("#chat-prompt", Input)
        await wait_until(pilot, lambda: prompt.value == "are you there?")
        assert generated(screen.client) == [] and screen.queued == []
        assert any("Not sent: No column is ready" in str(n.message) for n in pilot.app._notifications)
