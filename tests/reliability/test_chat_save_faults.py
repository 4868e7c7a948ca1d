"""Faults, chat save: on a full disk `chat --resume` prints the reply, warns that the chat is not saved and keeps
the saved transcript as it was (never half written); the chat screen keeps the chat in memory and saves it
once space is back. The replies come from the scripted backend through the real chat server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from small_disk import fill, tmpfs

from ftbench.chat.protocol import VariantSpec
from ftbench.chat.transcripts import Transcript, load_transcript
from ftbench.cli import main
from ftbench.core.workspace import Workspace


@pytest.fixture
def small_ws(tmp_path: Path):
    with tmpfs(tmp_path / "disk", "4m") as mount:
        yield Workspace.open(mount / "ws")


def saved_chat(ws: Workspace) -> Transcript:
    transcript = Transcript.new([VariantSpec("bot", "scripted")], title="full disk")
    transcript.add("bot", "user", "first")
    transcript.add("bot", "assistant", "first reply")
    transcript.save(ws)
    return transcript


def test_resume_on_a_full_disk_prints_the_reply_warns_and_keeps_the_old_file(small_ws: Workspace, capsys) -> None:
    transcript = saved_chat(small_ws)
    path = transcript.path(small_ws)
    before = path.read_bytes()
    (small_ws.chats_dir / "server.log").touch()
    filler = fill(small_ws.root, leave=0)
    code = main(["-w", str(small_ws.root), "chat", "--resume", transcript.id, "--prompt", "second"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "you said second" in out
    assert f"warning: Chat {transcript.id} is not saved: disk full (0 B free on " in err
    assert "Traceback" not in err
    assert path.read_bytes() == before  # the last good save, whole
    assert not [p for p in small_ws.chats_dir.iterdir() if p.name.startswith(".tmp-")]
    filler.unlink()
    code = main(["-w", str(small_ws.root), "chat", "--resume", transcript.id, "--prompt", "third"])
    assert code == 0
    contents = [m["content"] for m in load_transcript(small_ws, transcript.id).history["bot"]]
    assert contents[-2] == "third" and len(contents) == 4


def test_try_save_keeps_the_chat_in_memory_until_the_disk_has_room(small_ws: Workspace) -> None:
    transcript = saved_chat(small_ws)
    filler = fill(small_ws.root, leave=0)
    transcript.add("bot", "user", "x" * 50000)
    path, problem = transcript.try_save(small_ws)
    assert path is None and problem.startswith(f"Chat {transcript.id} is not saved: disk full (0 B free on ")
    assert "kept in memory" in problem
    assert [m["content"] for m in load_transcript(small_ws, transcript.id).history["bot"]] == ["first", "first reply"]
    filler.unlink()
    path, problem = transcript.try_save(small_ws)
    assert problem is None and path == transcript.path(small_ws)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[-1]["content"] == "x" * 50000


async def test_the_chat_screen_keeps_an_unsaved_chat_and_saves_it_when_it_can(small_ws: Workspace) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tui"))
    from test_chat_screen import SIZE, FrozenClient, Host, submit, wait_until

    from ftbench.tui.screens.chat import ChatScreen

    small_ws.chats_dir.mkdir(parents=True, exist_ok=True)
    variants = [VariantSpec(name="bot", kind="hf", path="/ws/models/bot")]
    screen = ChatScreen(small_ws, variants, client_factory=lambda on_event: FrozenClient(on_event, {"bot": "hi"}))
    filler = fill(small_ws.root, leave=0)
    async with Host(screen).run_test(size=SIZE) as pilot:
        await submit(pilot, screen, "hello")
        await wait_until(pilot, lambda: len(screen.transcript.history.get("bot", [])) == 2)
        await pilot.pause(0.2)
        path = screen.transcript.path(small_ws)
        assert not path.exists() and screen.saved_path is None
        assert any("is not saved: disk full" in n.message for n in pilot.app._notifications)
        screen.action_close_chat()  # first close on a full disk: stays, the chat is still in memory
        await pilot.pause()
        assert pilot.app.screen is screen
        filler.unlink()
        screen.action_save()
        await pilot.pause()
        saved = load_transcript(small_ws, screen.transcript.id).history["bot"]
        assert [m["content"].strip() for m in saved] == ["hello", "hi"]


SAVER = """
import sys
from ftbench.chat.protocol import VariantSpec
from ftbench.chat.transcripts import load_transcript
from ftbench.core.workspace import Workspace

ws = Workspace.open(sys.argv[1])
transcript = load_transcript(ws, sys.argv[2])
n = 0
while True:  # every save rewrites the whole file, a few MB, until the test kills us
    n += 1
    transcript.add("bot", "user", f"message {n} " + "z" * 200000)
    transcript.save(ws)
    print(n, flush=True)
"""


def test_kill_9_while_saving_never_tears_the_transcript(workspace: Workspace) -> None:
    import random
    import signal
    import subprocess
    import sys
    import time

    transcript = saved_chat(workspace)
    rng = random.Random(11)
    for _ in range(4):
        proc = subprocess.Popen(
            [sys.executable, "-c", SAVER, str(workspace.root), transcript.id], stdout=subprocess.PIPE, text=True
        )
        proc.stdout.readline()  # one save done: the next ones are under way
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        loaded = load_transcript(workspace, transcript.id)  # always a whole file: the old one or a new one
        contents = [m["content"] for m in loaded.history["bot"]]
        assert contents[:2] == ["first", "first reply"] and all(c.startswith("message ") for c in contents[2:])
    from ftbench.chat.transcripts import list_transcripts

    assert [c["id"] for c in list_transcripts(workspace)] == [transcript.id]
