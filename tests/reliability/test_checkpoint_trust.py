"""Attack 7: resuming unpickles a checkpoint's optimizer.pt / rng_state.pth / training_args.bin. Only checkpoints
ftbench saved in this workspace resume without the live `--trust-checkpoint` flag."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from ftbench.core.checkpoint_trust import KEY_FILE, check_resume, is_ours, mark_checkpoint
from ftbench.core.errors import FtbenchError
from ftbench.core.layout import JobLayout
from ftbench.core.workspace import Workspace


def make_checkpoint(ws: Workspace, run_id: str, step: int = 3) -> tuple[Path, Path]:
    run = ws.runs_dir / run_id
    ckpt = run / "checkpoints" / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    (ckpt / "optimizer.pt").write_bytes(b"pickle")
    return run, ckpt


def test_a_checkpoint_saved_through_the_trainer_callback_resumes(workspace: Workspace) -> None:
    pytest.importorskip("transformers")
    from ftbench.train.callbacks import EventsCallback

    run, ckpt = make_checkpoint(workspace, "20261122-000000-sft-a-ab12")
    events: list = []
    callback = EventsCallback(lambda *a, **k: events.append((a, k)))
    callback.on_save(SimpleNamespace(output_dir=str(run / "checkpoints")), SimpleNamespace(global_step=3), None)
    assert (ckpt / JobLayout.CHECKPOINT_MARK).is_file() and is_ours(run, ckpt)
    check_resume(run, ckpt, trusted=False)
    assert oct((workspace.root / KEY_FILE).stat().st_mode & 0o777) == oct(0o600)


def test_an_unmarked_checkpoint_is_refused_with_the_flag_named(workspace: Workspace) -> None:
    run, ckpt = make_checkpoint(workspace, "20261122-000000-sft-b-ab12")
    with pytest.raises(FtbenchError, match="not saved by ftbench in this workspace") as err:
        check_resume(run, ckpt, trusted=False)
    assert "--trust-checkpoint" in (err.value.hint or "")
    check_resume(run, ckpt, trusted=True)  # the live flag allows it


def test_a_forged_or_moved_mark_is_refused(workspace: Workspace, tmp_path: Path) -> None:
    run, ckpt = make_checkpoint(workspace, "20261122-000000-sft-c-ab12")
    mark_checkpoint(run, ckpt)
    # Forged: the attacker writes a mark of their own.
    other_run, other_ckpt = make_checkpoint(workspace, "20261122-000000-sft-d-ab12")
    (other_ckpt / JobLayout.CHECKPOINT_MARK).write_text(
        json.dumps({"run": other_run.name, "checkpoint": other_ckpt.name, "mac": "0" * 64})
    )
    assert not is_ours(other_run, other_ckpt)
    # Moved: a signed checkpoint copied into another run of the same workspace.
    shutil.rmtree(other_ckpt)
    shutil.copytree(ckpt, other_ckpt)
    assert not is_ours(other_run, other_ckpt)
    # Shared: a whole run folder signed in another workspace, copied here.
    elsewhere = Workspace.open(tmp_path / "elsewhere")
    foreign_run, foreign_ckpt = make_checkpoint(elsewhere, "20261122-000000-sft-e-ab12")
    mark_checkpoint(foreign_run, foreign_ckpt)
    assert is_ours(foreign_run, foreign_ckpt)
    shutil.copytree(foreign_run, workspace.runs_dir / foreign_run.name)
    copied = workspace.runs_dir / foreign_run.name
    with pytest.raises(FtbenchError):
        check_resume(copied, copied / "checkpoints" / foreign_ckpt.name, trusted=False)
