"""A user over SSH: launch a run from New run in a real terminal, watch its loss move, lose the terminal,
come back, and find the same run still training with its whole history.

The run is real (a tiny random llama built here, LoRA SFT on a toy alpaca file), launched through the New run
screen's `$EDITOR` path (EDITOR copies a prepared recipe into the editor's file, as a user's edit would) and
`f5`. Killing the tmux server hangs up the TUI like an SSH drop; the job lives in its own session.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import time
from pathlib import Path

import pytest
from test_tmux import Tmux, gpu_pane_text

from ftbench.core.job_stop import stop_job
from ftbench.core.jobs import find_job, pid_alive, read_status
from ftbench.core.workspace import Workspace

pytestmark = pytest.mark.e2e

STEP = re.compile(r"step (\d+)(?:/\d+)? · epoch")
RECIPE = """\
task: sft
name: e2e-live
model: models/tiny
data:
  train: datasets/toy.jsonl
  max_length: 64
method:
  name: lora
  r: 4
training:
  max_steps: 1000000
  batch_size: 4
  lr: 0.005
  logging_steps: 1
  eval_steps: 100000
  save_steps: 100000
"""


def shown_step(screen: str) -> int:
    found = STEP.findall(screen)
    return max(int(s) for s in found) if found else -1


def open_tui(tmux: Tmux, ws: Workspace, editor: str) -> None:
    ftbench = Path(sys.executable).with_name("ftbench")
    cmd = (
        f"{ftbench} --workspace {ws.root}"
        if ftbench.exists()
        else f"{sys.executable} -m ftbench.cli --workspace {ws.root}"
    )
    env = f"env -u COLUMNS -u LINES TERM=xterm-256color LANG=C.UTF-8 FTBENCH_HOME= EDITOR={shlex.quote(editor)} "
    tmux("new-session", "-d", "-s", "e2e", "-x", "120", "-y", "36", env + cmd)
    tmux("set", "-s", "escape-time", "0")


def wait_step_above(tmux: Tmux, floor: int, timeout: float = 90.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        step = shown_step(tmux.screen())
        if step > floor:
            return step
        time.sleep(0.2)
    raise AssertionError(f"the monitor never showed a step above {floor}:\n{tmux.screen()}")


@pytest.fixture
def tmux():
    t = Tmux()
    yield t
    t("kill-server")


def test_launch_from_new_run_watch_drop_and_reattach(tmux, tmp_path):
    from tinymodels import make_tiny_causal_lm

    ws = Workspace.open(tmp_path / "ws")
    make_tiny_causal_lm(ws.models_dir / "tiny", initializer_range=0.1)
    rows = [{"instruction": f"Say the word number {i % 7}.", "output": f"word {i % 7}"} for i in range(200)]
    (ws.datasets_dir / "toy.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    prepared = tmp_path / "prepared.yaml"
    prepared.write_text(RECIPE)

    open_tui(tmux, ws, f"cp {prepared}")
    tmux.wait_for("Jobs", gpu_pane_text(), timeout=30)
    tmux("send-keys", "-t", "e2e", "5")
    tmux.wait_for("recipe.yaml", "$EDITOR")
    tmux("send-keys", "-t", "e2e", "F4")  # $EDITOR: the app suspends, `cp` writes the recipe, the app resumes
    tmux.wait_for("✓ valid", "sft · lora · tiny · toy.jsonl")
    tmux("send-keys", "-t", "e2e", "F5")
    try:
        first = wait_step_above(tmux, 0)
        later = wait_step_above(tmux, first)  # the loss/step line moves while we watch
        assert later > first

        job = find_job(Workspace.open(ws.root), "last")  # the only run: ids are references, names are not
        assert job.status["name"] == "e2e-live"
        assert job.state == "running" and job.status["kind"] == "train"
        tmux("kill-server")  # the terminal goes away: SIGHUP to the TUI
        time.sleep(1.0)
        status = read_status(job.dir)
        assert status["state"] == "running" and pid_alive(status["pid"], status.get("proc_start"))
        seen_before_drop = later

        open_tui(tmux, ws, "true")
        tmux.wait_for("e2e-live", "▶ running", timeout=30)
        tmux("send-keys", "-t", "e2e", "Enter")  # the run's monitor, from its whole history
        reopened = wait_step_above(tmux, seen_before_drop)
        assert wait_step_above(tmux, reopened) > reopened  # still live after reattaching
        events = [json.loads(line) for line in (job.dir / "events.jsonl").read_text().splitlines()]
        train_steps = [e["step"] for e in events if e["type"] == "train"]
        assert train_steps[:3] == [1, 2, 3] and train_steps[-1] >= reopened
    finally:  # whatever failed, the million-step run must not outlive the test
        stopped = stop_job(find_job(Workspace.open(ws.root), "last"), grace_s=30)
        assert stopped.state == "stopped"
