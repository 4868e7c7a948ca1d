"""Faults, atomic checkpoints and outputs: a checkpoint whose save was cut short (killed, disk full) is never
resumed from, exported or chatted with; resume falls back to the newest whole, signed checkpoint; the final
adapter/ appears only once whole.

The runs go through the real training job target in this process (tests/integration/test_train_tasks.py
`run_inline`), on the session's tiny llama, so each takes seconds.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

from ftbench.core.artifacts import resolve
from ftbench.core.events import read_events
from ftbench.core.layout import JobLayout

pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from test_train_tasks import base_recipe, run_inline, toy_alpaca, write_jsonl  # noqa: E402


@pytest.fixture(scope="module")
def trained(tiny_llama, tmp_path_factory):
    """One finished 6-step run with checkpoints 2, 4, 6 (trained once; each test works on a copy)."""
    from ftbench.core.workspace import Workspace

    folder = tmp_path_factory.mktemp("trained")
    data = write_jsonl(folder / "toy.jsonl", toy_alpaca(24))
    recipe = base_recipe(
        tiny_llama,
        data,
        data={"train": str(data), "max_length": 48, "eval_split": 0},
        training={"max_steps": 6, "save_steps": 2, "logging_steps": 1, "eval_steps": None, "save_total_limit": 5},
    )
    ws = Workspace.open(folder / "ws")
    run_dir, _ = run_inline(ws, recipe)
    return ws, run_dir, recipe


@pytest.fixture
def copied(trained, tmp_path):
    """The trained workspace copied (with its key, so the checkpoints' signatures stay valid)."""
    from ftbench.core.workspace import Workspace

    ws, run_dir, recipe = trained
    shutil.copytree(ws.root, tmp_path / "ws", symlinks=True)
    return Workspace.open(tmp_path / "ws"), tmp_path / "ws" / "runs" / run_dir.name, recipe


def cut_short(checkpoint: Path, how: str) -> None:
    """What a kill -9 or a full disk leaves in the middle of the Trainer's save."""
    state = checkpoint / JobLayout.TRAINER_STATE
    if how == "truncated":
        state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    elif how == "missing":
        state.unlink()
        (checkpoint / "optimizer.pt").write_bytes((checkpoint / "optimizer.pt").read_bytes()[:100])
    elif how == "unsigned":  # killed after the Trainer's save, before ftbench signed it
        (checkpoint / JobLayout.CHECKPOINT_MARK).unlink()


@pytest.mark.parametrize(
    "how",
    ["truncated", pytest.param("missing", marks=pytest.mark.slow), pytest.param("unsigned", marks=pytest.mark.slow)],
)
def test_resume_falls_back_past_a_checkpoint_cut_short(copied, how) -> None:
    workspace, run_dir, recipe = copied
    layout = JobLayout(run_dir)
    assert [c.step for c in layout.checkpoints() if c.complete] == [2, 4, 6]
    assert layout.adapter.is_dir() and not (run_dir / "adapter.partial").exists()
    # As if attempt 1 had died while saving checkpoint-6 (before its adapter/ was written).
    cut_short(layout.checkpoints_dir / "checkpoint-6", how)
    shutil.rmtree(layout.adapter)
    if how != "unsigned":
        assert [c.step for c in layout.checkpoints() if c.complete] == [2, 4]
        assert resolve(workspace, f"{run_dir.name}@last", want=("adapter",)).checkpoint == "checkpoint-4"

    run_dir, second = run_inline(workspace, recipe, attempt=2, job_dir=run_dir)
    messages = [e["message"] for e in read_events(run_dir / "events.jsonl", ["log"]) if e["attempt"] == 2]
    assert "Resuming from checkpoint-4 (attempt 2)." in messages
    resumed = [e["step"] for e in read_events(run_dir / "events.jsonl", ["train"]) if e["attempt"] == 2]
    assert resumed == [5, 6]
    assert second["steps"] == 6 and layout.adapter.is_dir()
    assert [c.step for c in layout.checkpoints() if c.complete] == [2, 4, 6]  # checkpoint-6 written again, whole


def test_the_disk_preflight_uses_measured_sizes(trained, tmp_path) -> None:
    """The estimate of one LoRA checkpoint is within 0.8-1.6x of a real one (it was about half before), and a
    refusal names sizes people can read, never "0.0 GiB"."""
    from ftbench.core.errors import FtbenchError
    from ftbench.core.recipe import validate_recipe
    from ftbench.train import worker

    ws, run_dir, recipe = trained
    resolved = validate_recipe(recipe)
    real = sum(f.stat().st_size for f in (run_dir / "checkpoints" / "checkpoint-2").rglob("*") if f.is_file())
    per_checkpoint, final = worker.checkpoint_sizes(resolved)
    assert 0.8 <= per_checkpoint / real <= 1.6, (per_checkpoint, real)
    real_final = sum(f.stat().st_size for f in (run_dir / "adapter").rglob("*") if f.is_file())
    assert 0.7 <= final / real_final <= 1.6, (final, real_final)
    from small_disk import fill, tmpfs

    with tmpfs(tmp_path / "disk", "2m") as mount:
        fill(mount, leave=300 * 1024)
        with pytest.raises(FtbenchError) as caught:
            worker.check_disk(resolved, mount)
    message = caught.value.message
    assert "GiB" not in message and re.search(r"need about \d+\.\d MB, \d+\.\d KB is free\.$", message), message
