"""`ftbench` in a real terminal (tmux), driven as a user over SSH would: start, see, switch, quit.

A private tmux server (-L, -f /dev/null) never touches the user's tmux. We poll capture-pane for text
instead of sleeping. The workspace holds a frozen fake job whose pid is this test process (alive).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tui"))

from fakes import FIXTURES, RUNNING, make_workspace  # noqa: E402

pytestmark = pytest.mark.e2e


def gpu_pane_text() -> str:
    """What the GPU pane shows on this machine: the app samples the real driver, so a GPU box lists GPU0."""
    from ftbench.core.gpu import sample_gpus

    return "GPU0 " if sample_gpus().available else "no NVIDIA GPU"


class Tmux:
    def __init__(self) -> None:
        self.base = ["tmux", "-L", f"ftbench-test-{os.getpid()}", "-f", "/dev/null"]

    def __call__(self, *args: str) -> str:
        return subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=20).stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "e2e")

    def wait_for(self, *texts: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if all(t in screen for t in texts):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{texts} not on screen after {timeout}s:\n{screen}")
            time.sleep(0.1)

    def wait_gone(self, text: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while text in self.screen():
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} still on screen after {timeout}s:\n{self.screen()}")
            time.sleep(0.1)

    def alive(self) -> bool:
        return subprocess.run([*self.base, "has-session", "-t", "e2e"], capture_output=True).returncode == 0


@pytest.fixture
def tmux():
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    t = Tmux()
    yield t
    t("kill-server")


def test_ftbench_in_tmux(tmux, tmp_path):
    ws = make_workspace(tmp_path / "ws")
    ftbench = Path(sys.executable).with_name("ftbench")
    cmd = f"{ftbench if ftbench.exists() else sys.executable + ' -m ftbench.cli'} --workspace {ws.root}"
    env = "env -u COLUMNS -u LINES TERM=xterm-256color COLORTERM=truecolor LANG=C.UTF-8 FTBENCH_HOME= "
    start = time.monotonic()
    tmux("new-session", "-d", "-s", "e2e", "-x", "120", "-y", "36", env + cmd)
    tmux("set", "-s", "escape-time", "0")
    screen = tmux.wait_for("Jobs", "sft-alpaca-lora", gpu_pane_text())
    first_frame = time.monotonic() - start
    assert "▶ running" in screen and "✗ failed" in screen and "■ stopped" in screen
    assert f"{ws.root.parent.name}/{ws.root.name}" in screen  # header names the workspace (a long path keeps its end)
    print(f"first full frame in tmux after {first_frame:.2f}s")

    tmux("send-keys", "-t", "e2e", "2")
    tmux.wait_for("best eval", "sft-alpaca-lora-r8")
    tmux("send-keys", "-t", "e2e", "1")
    tmux.wait_for("Checkpoint now")
    tmux("send-keys", "-t", "e2e", "Enter")
    progress = json.loads((FIXTURES / RUNNING / "status.json").read_text())["progress"]  # recorded from a real run
    tmux.wait_for("Run monitor", f"step {progress['done']}/{progress['total']}", "checkpoint-24")
    tmux("send-keys", "-t", "e2e", "Escape")
    # back on Jobs: wait until the monitor is gone (its footer also says "Checkpoint now"), else the `q`
    # would follow the Escape so closely that the terminal reports the pair as alt+q
    tmux.wait_gone("Run monitor")
    tmux.wait_for("Checkpoint now", "progress")
    tmux("send-keys", "-t", "e2e", "q")
    deadline = time.monotonic() + 10
    while tmux.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not tmux.alive(), "q did not quit ftbench"
