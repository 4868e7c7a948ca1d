"""A new user's first session in an 80x24 tmux pane, from the demo workspace to a stopped run.

Start ftbench on a fresh workspace holding the demo's models and datasets: the first-run guide greets us; every
screen is visited by its key (the digit where no text box has focus, ctrl+PgDn from inside one); a run is
launched from New run without Tab (F2 jumps to the recipe list, End, Enter loads the workspace's recipe, F5
launches it); its monitor opens; `s` stops it; `q` quits. Every step asserts on what the terminal shows. The
run is stopped in `finally` whatever fails, so no training job outlives the test.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path

import pytest
from test_tmux import Tmux, gpu_pane_text

from ftbench.core.job_stop import stop_job
from ftbench.core.jobs import find_job
from ftbench.core.workspace import Workspace

pytestmark = pytest.mark.e2e

RECIPE = """\
task: sft
name: e2e-walk
model: models/tiny
data:
  train: datasets/toy.jsonl
  max_length: 64
method:
  name: lora
  r: 4
training:
  max_steps: 400
  batch_size: 4
  lr: 0.005
  logging_steps: 1
  eval_steps: 100000
  save_steps: 100000
"""


def walkthrough_workspace(root: Path, demo: Workspace) -> Workspace:
    """The demo's models and datasets linked in (read-only), plus a tiny model, a toy file and one recipe."""
    from tinymodels import make_tiny_causal_lm

    ws = Workspace.open(root)
    # `s` waits for the next training step to save a checkpoint; a loaded CI box may not get there soon
    config = ws.config_path.read_text().replace("stop_grace_s = 60", "stop_grace_s = 3")
    ws.config_path.write_text(config)
    ws = Workspace.open(root)
    for folder, demo_folder in ((ws.models_dir, demo.models_dir), (ws.datasets_dir, demo.datasets_dir)):
        for entry in demo_folder.iterdir():
            (folder / entry.name).symlink_to(entry)
    make_tiny_causal_lm(ws.models_dir / "tiny", initializer_range=0.1)
    rows = [{"instruction": f"Say the word number {i % 7}.", "output": f"word {i % 7}"} for i in range(200)]
    (ws.datasets_dir / "toy.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (ws.root / "recipes").mkdir()
    (ws.root / "recipes" / "zz-e2e-walk.yaml").write_text(RECIPE)  # sorts last: End selects it
    return ws


def press(tmux: Tmux, *keys: str) -> None:
    for key in keys:
        tmux("send-keys", "-t", "e2e", key)


def load_last_recipe(tmux: Tmux, tries: int = 3) -> None:
    """F2 (focus the recipe list), End, Enter; a key that lands before the focus moved is simply tried again."""
    for _ in range(tries):
        for key in ("F2", "End", "Enter"):
            press(tmux, key)
            time.sleep(0.3)  # the focus change is not visible in plain text, so give it a moment
        try:
            tmux.wait_for("name: e2e-walk", timeout=5)
            return
        except AssertionError:
            continue
    tmux.wait_for("name: e2e-walk", timeout=1)


@pytest.fixture
def tmux():
    t = Tmux()
    yield t
    t("kill-server")


def test_first_session_at_80x24(tmux, tmp_path, demo_workspace) -> None:
    ws = walkthrough_workspace(tmp_path / "ws", demo_workspace)
    ftbench = Path(sys.executable).with_name("ftbench")
    cmd = (
        f"{ftbench if ftbench.exists() else sys.executable + ' -m ftbench.cli'} --workspace {shlex.quote(str(ws.root))}"
    )
    env = "env -u COLUMNS -u LINES TERM=xterm-256color LANG=C.UTF-8 FTBENCH_HOME= "
    started = time.monotonic()
    tmux("new-session", "-d", "-s", "e2e", "-x", "80", "-y", "24", env + cmd)
    tmux("set", "-s", "escape-time", "0")
    try:
        # a new workspace: the guide, over the Jobs screen; the tab bar names every screen
        tmux.wait_for("Start here", "Look at a dataset", "1 Jobs", "7 Evals", timeout=30)
        press(tmux, "Escape")
        tmux.wait_for("No jobs yet", gpu_pane_text())
        press(tmux, "2")
        tmux.wait_for("filter:", "0/0 runs")
        press(tmux, "3")
        tmux.wait_for("datasets", "found", "toy.jsonl")
        press(tmux, "4")
        tmux.wait_for("models", "tiny", "smollm2-135m", "VRAM estimate")
        press(tmux, "5")
        tmux.wait_for("recipe.yaml", "start from", "Launch")
        # the recipe editor has focus: a digit would be typed into it; ctrl+PgDn leaves from anywhere
        press(tmux, "C-PageDown")
        tmux.wait_for("Message every column")
        press(tmux, "C-PageDown")  # the chat box has focus too
        tmux.wait_for("No eval selected")
        press(tmux, "5")
        tmux.wait_for("recipe.yaml", "Launch")
        load_last_recipe(tmux)
        tmux.wait_for("✓ valid", "sft · lora · tiny · toy.jsonl")
        press(tmux, "F5")
        screen = tmux.wait_for("e2e-walk", "▶ running", "checkpoints", timeout=30)  # its monitor, live
        assert "Start here" not in screen and "GPU: sampling" not in screen
        job = find_job(Workspace.open(ws.root), "last")
        assert job.status["name"] == "e2e-walk" and job.status["kind"] == "train"
        press(tmux, "s")
        tmux.wait_for("■ stopped", timeout=60)
        assert find_job(Workspace.open(ws.root), "last").state == "stopped"
        press(tmux, "q")
        deadline = time.monotonic() + 10
        while tmux.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not tmux.alive(), "q did not quit ftbench"
        print(f"walkthrough took {time.monotonic() - started:.1f}s in the terminal")
    finally:  # whatever failed, the run must not outlive the test
        try:
            job = find_job(Workspace.open(ws.root), "last")
        except Exception:  # noqa: BLE001 - no run was started
            job = None
        if job is not None and job.active:
            assert stop_job(job, grace_s=30).state == "stopped"
