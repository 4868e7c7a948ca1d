"""Bad input fails at `ftbench train` with one clear line (exit 2, no traceback) before any model loads, and
no run folder is left behind; checks that need the job's machine (devices, disk, writable folder,
bitsandbytes) are tested on the preflight functions directly."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml

from ftbench.cli import main
from ftbench.core.errors import FtbenchError
from ftbench.core.recipe import validate_recipe


@pytest.fixture
def fake_model(tmp_path: Path) -> Path:
    """A folder that passes the model preflight (config.json only; nothing here loads weights)."""
    path = tmp_path / "model"
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    return path


def train(workspace, tmp_path: Path, recipe: dict, capsys) -> tuple[int, str]:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    code = main(["-w", str(workspace.root), "train", str(path)])
    err = capsys.readouterr().err
    return code, err


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("content", "extra", "words"),
    [
        ("", {}, ["has no rows"]),
        (
            '{"instruction": "a", "output": "b"}\nnot json\n{"instruction": "c", "output": "d"}\n{broken\n',
            {},
            ["2 row(s)", "row 2, 4", "skip_bad_rows"],
        ),
        (
            '{"instruction": "a", "output": "b"}\n{"instruction": "c"}\n',
            {"format": "alpaca"},
            ["row 2", "'output'", "columns present: instruction"],
        ),
        ('{"question": "a", "reply": "b"}\n', {}, ["Cannot tell the format", "question, reply"]),
        ('{"prompt": "a", "chosen": "b", "rejected": "c"}\n', {}, ["preference format", "task sft cannot"]),
    ],
)
def test_bad_data_fails_before_launch(workspace, tmp_path, fake_model, capsys, content, extra, words):
    data = write(tmp_path / "d.jsonl", content)
    code, err = train(
        workspace, tmp_path, {"task": "sft", "model": str(fake_model), "data": {"train": str(data), **extra}}, capsys
    )
    assert code == 2
    first = err.splitlines()[0]
    assert first.startswith("error: ") and "Traceback" not in err
    for word in words:
        assert word in err, err
    assert not any((workspace.root / "runs").iterdir())  # nothing launched, nothing to clean up


def test_skip_bad_rows_counts_instead_of_failing(tmp_path):
    from ftbench.train.data import load_rows

    data = write(
        tmp_path / "d.jsonl",
        '{"instruction": "a", "output": "b"}\nnot json\n{"instruction": "c"}\n{"instruction": "e", "output": "f"}\n',
    )
    recipe = validate_recipe(
        {"task": "sft", "model": "m", "data": {"train": str(data), "format": "alpaca", "skip_bad_rows": True}}
    )
    rows = load_rows(recipe.data, "sft")
    assert len(rows.train) == 2 and rows.report.bad_lines == 1 and rows.report.bad_rows == 1


@pytest.mark.parametrize(
    ("model", "words"),
    [
        ("missing-folder/x/y", ["does not exist"]),
        ("EMPTY", ["has no config.json"]),
        ("REMOTE", ["--trust-remote-code", "auto_map"]),
    ],
)
def test_bad_model_paths(workspace, tmp_path, capsys, model, words):
    data = write(tmp_path / "d.jsonl", '{"text": "hello"}\n')
    if model == "EMPTY":
        (tmp_path / "empty").mkdir()
        model = str(tmp_path / "empty")
    elif model == "REMOTE":
        remote = tmp_path / "remote"
        remote.mkdir()
        (remote / "config.json").write_text(
            json.dumps({"model_type": "mystery_lm", "auto_map": {"AutoModelForCausalLM": "modeling.Mystery"}})
        )
        model = str(remote)
    code, err = train(workspace, tmp_path, {"task": "sft", "model": model, "data": str(data)}, capsys)
    assert code == 2
    for word in words:
        assert word in err, err


def test_unknown_key_and_wrong_type_at_the_prompt(workspace, tmp_path, fake_model, capsys):
    data = write(tmp_path / "d.jsonl", '{"text": "hello"}\n')
    code, err = train(
        workspace,
        tmp_path,
        {"task": "sft", "model": str(fake_model), "data": str(data), "training": {"epoch": 2}},
        capsys,
    )
    assert code == 2 and "unknown key 'training.epoch'" in err and "Did you mean 'training.epochs'?" in err
    code, err = train(
        workspace,
        tmp_path,
        {"task": "sft", "model": str(fake_model), "data": str(data), "training": {"lr": "fast"}},
        capsys,
    )
    assert code == 2 and "training.lr = 'fast'" in err


def test_validate_prints_resolved_recipe(workspace, tmp_path, fake_model, capsys):
    data = write(tmp_path / "d.jsonl", '{"text": "hello"}\n')
    path = write(tmp_path / "r.yaml", f"task: sft\nmodel: {fake_model}\ndata: {data}\n")
    assert main(["-w", str(workspace.root), "validate", str(path), "--data", "--set", "training.seed=7"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert (
        resolved["training"]["seed"] == 7
        and resolved["data"]["padding_free"] is True
        and resolved["method"]["target_modules"] == "auto"
    )


def test_job_side_preflight(tmp_path, fake_model, monkeypatch):
    import torch

    from ftbench.train import worker
    from ftbench.train.model import check_bitsandbytes

    gpus = torch.cuda.device_count()  # this machine's real count: the message must name it, whatever it is
    asked = gpus + 4
    recipe = validate_recipe(
        {"task": "sft", "model": str(fake_model), "data": "d.jsonl", "training": {"devices": asked}}
    )
    monkeypatch.delenv("FTBENCH_DDP_CPU", raising=False)
    with pytest.raises(FtbenchError, match=f"training.devices is {asked} but this machine has {gpus} GPU"):
        worker.check_devices(recipe)
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)
    with pytest.raises(FtbenchError, match="qlora needs bitsandbytes"):
        check_bitsandbytes(validate_recipe({"task": "sft", "model": "m", "data": "d", "method": "qlora"}))
    (fake_model / "model.safetensors").write_bytes(b"\0" * 4096)
    full = validate_recipe({"task": "sft", "model": str(fake_model), "data": "d", "method": "full"})
    per_checkpoint, final = worker.checkpoint_sizes(full)
    companions = sum(f.stat().st_size for f in fake_model.iterdir() if f.suffix != ".safetensors")
    assert final == 4096 + companions  # the weights as measured, plus the tokenizer and config copies
    assert per_checkpoint >= 4096 * 3  # weights plus two optimizer states
    assert worker.needed_disk(full) == per_checkpoint * 3 + final
    monkeypatch.setattr(worker.shutil, "disk_usage", lambda p: type("U", (), {"free": 1000})())
    with pytest.raises(FtbenchError, match="Not enough free disk"):
        worker.check_disk(full, tmp_path)


@pytest.fixture
def read_only_dir(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    yield locked
    locked.chmod(0o700)


@pytest.mark.skipif(
    os.geteuid() == 0, reason="root writes into read-only folders; the refusal is tested as a normal user"
)
def test_read_only_run_folder_is_refused(read_only_dir):
    from ftbench.train import worker

    with pytest.raises(FtbenchError, match="not writable"):
        worker.check_writable(read_only_dir)
    assert list(read_only_dir.iterdir()) == []  # the probe left nothing behind


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can write into a 0500 folder; tested as root")
def test_root_may_write_a_read_only_run_folder(read_only_dir):
    """As root the probe succeeds (the kernel lets root write), so training is not refused for nothing."""
    from ftbench.train import worker

    worker.check_writable(read_only_dir)
    assert list(read_only_dir.iterdir()) == []
