"""`ftbench datasets`, `ftbench models`, `ftbench estimate`: tables, JSON, and clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_catalog_datasets import write_jsonl
from test_catalog_models import LLAMA_CONFIG, make_gguf, make_model

from ftbench.cli import main


@pytest.fixture
def filled(workspace):
    write_jsonl(workspace.datasets_dir / "chat.jsonl", [{"messages": [{"role": "user", "content": "hi"}]}] * 4)
    make_model(workspace.models_dir / "tiny", {"x": np.zeros((10, 10), np.float16)}, dict(LLAMA_CONFIG, vocab_size=100))
    make_gguf(workspace.models_dir / "tiny.gguf")
    return workspace


def test_datasets_table_and_json(filled, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-w", str(filled.root), "datasets", "--no-hf-cache"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["NAME", "FILE", "FORMAT", "ROWS", "SIZE", "AGE", "PROBLEM"]
    assert "chat.jsonl" in out and "messages" in out
    assert main(["-w", str(filled.root), "datasets", "--json", "--no-hf-cache"]) == 0
    [entry] = json.loads(capsys.readouterr().out)
    assert (entry["name"], entry["format"], entry["rows"], entry["kind"]) == ("chat.jsonl", "messages", 4, "jsonl")


def test_models_json(filled, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-w", str(filled.root), "models", "--json", "--no-hf-cache"]) == 0
    found = {m["name"]: m for m in json.loads(capsys.readouterr().out)}
    assert found["tiny"]["params"] == 100 and found["tiny"]["dtype"] == "F16"
    assert found["tiny.gguf"]["context_length"] == 4096


def test_estimate_by_name_json(filled, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "-w",
                str(filled.root),
                "estimate",
                "tiny",
                "--method",
                "lora",
                "--seq-len",
                "128",
                "--batch",
                "2",
                "--json",
            ]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    [est] = data["estimates"]
    assert (est["method"], est["seq_len"], est["batch"], est["params"]) == ("lora", 128, 2, 100)
    assert est["total"] == sum(est[k] for k in ("weights", "gradients", "optimizer", "activations", "overhead"))
    assert main(["-w", str(filled.root), "estimate", str(filled.models_dir / "tiny.gguf")]) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()[2:5]] == ["full", "lora", "qlora"]


def test_estimate_takes_a_workspace_relative_path_like_recipes(filled, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)  # not the workspace: the path is resolved against the workspace
    assert main(["-w", str(filled.root), "estimate", "models/tiny", "--method", "full", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["estimates"][0]["params"] == 100


def test_estimate_unknown_model_is_one_sentence(filled, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-w", str(filled.root), "estimate", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: No model named 'nope'") and "hint:" in err and "Traceback" not in err


def test_models_table_is_the_same_from_the_cache(filled, capsys: pytest.CaptureFixture[str]) -> None:
    """The first run reads every file, the second only the cache; what `ftbench models` prints is the same."""
    from ftbench.catalog.cache import cache_path

    runs = []
    for args in (["models", "--no-hf-cache"], ["models", "--json", "--no-hf-cache"]) * 2:
        assert main(["-w", str(filled.root), *args]) == 0
        runs.append(capsys.readouterr())
    assert cache_path(filled.root, "models").is_file()
    assert runs[0].out == runs[2].out and runs[1].out == runs[3].out and not any(r.err for r in runs)
    table = [line.split() for line in runs[0].out.splitlines()]
    assert table[0] == ["NAME", "KIND", "ARCHITECTURE", "PARAMS", "DTYPE", "CONTEXT", "CHAT", "SIZE", "BASE/LICENSE"]
    assert table[1][:7] == ["tiny.gguf", "gguf", "llama", "19.3K", "F16", "4096", "yes"]
    assert table[2][:7] == ["tiny", "hf", "LlamaForCausalLM", "100", "F16", "2048", "yes"]


def test_models_notes_a_skipped_folder_on_stderr_only(filled, monkeypatch, capsys: pytest.CaptureFixture[str]) -> None:
    import os
    from pathlib import Path

    locked = filled.models_dir / "locked"
    locked.mkdir()
    real_scandir = os.scandir

    def scandir(path):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert main(["-w", str(filled.root), "models", "--json", "--no-hf-cache"]) == 0
    captured = capsys.readouterr()
    assert [m["name"] for m in json.loads(captured.out)] == ["tiny.gguf", "tiny"]
    assert captured.err == f"note: skipped {locked}: Permission denied\n"
