"""The one resolver: lookup order, ambiguity, prefixes and handles, checkpoint selectors, and every kind."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from ftbench.core.artifacts import AmbiguousReference, GGUFFile, Run, Weights, classify, resolve
from ftbench.core.errors import FtbenchError
from ftbench.core.handles import candidates, split_selector, unique_prefixes
from ftbench.core.layout import JobLayout


def model_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    return path


def adapter_dir(path: Path, base: str = "models/base", with_config: bool = False) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "base_model_name_or_path": base}))
    if with_config:
        (path / "config.json").write_text("{}")
    return path


def make_run(ws, run_id: str, created: float, final: str | None = "adapter", kind: str = "train") -> Path:
    run = ws.jobs_parent(kind) / run_id
    run.mkdir(parents=True)
    (run / "status.json").write_text(
        json.dumps({"id": run_id, "kind": kind, "state": "succeeded", "created_at": created})
    )
    if final == "adapter":
        adapter_dir(run / "adapter")
    elif final == "model":
        model_dir(run / "model")
    return run


def add_checkpoint(
    run: Path, step: int, eval_loss: float | None = None, complete: bool = True, full: bool = False
) -> Path:
    cp = run / "checkpoints" / f"checkpoint-{step}"
    model_dir(cp) if full else adapter_dir(cp, with_config=True)
    if complete:
        history = [{"step": step, "loss": 1.0}] + (
            [{"step": step, "eval_loss": eval_loss}] if eval_loss is not None else []
        )
        (cp / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": history}))
    return cp


def gguf_bytes(keys: dict[str, object]) -> bytes:
    """A GGUF header with string / uint32 keys, then a tokenizer key (the peek stops there) and no tensors."""

    def string(s: str) -> bytes:
        raw = s.encode()
        return struct.pack("<Q", len(raw)) + raw

    body = b""
    items = [*keys.items(), ("tokenizer.ggml.tokens", ["a", "b"])]
    for key, value in items:
        body += string(key)
        if isinstance(value, str):
            body += struct.pack("<I", 8) + string(value)
        elif isinstance(value, list):
            body += struct.pack("<IIQ", 9, 8, len(value)) + b"".join(string(v) for v in value)
        else:
            body += struct.pack("<II", 4, int(value))
    return b"GGUF" + struct.pack("<IQQ", 3, 0, len(items)) + body


# ------------------------------------------------------------------------------------------ classify
def test_classify_every_kind(workspace, tmp_path):
    assert classify(model_dir(tmp_path / "m")) == "model"
    assert classify(adapter_dir(tmp_path / "a")) == "adapter"
    # adapter_config.json wins over config.json (trainer checkpoints of PEFT models hold both)
    assert classify(adapter_dir(tmp_path / "both", with_config=True)) == "adapter"
    assert classify(make_run(workspace, "20261130-010000-r-aaaa", 1.0)) == "run"
    assert classify(make_run(workspace, "20261130-010000-e-bbbb", 1.0, final=None, kind="export")) == "export"
    assert classify(make_run(workspace, "20261130-010000-d-cccc", 1.0, final=None, kind="demo")) == "job"
    (tmp_path / "f.gguf").write_bytes(gguf_bytes({"general.architecture": "llama"}))
    assert classify(tmp_path / "f.gguf") == "gguf"
    for name in ("d.jsonl", "d.csv", "d.parquet", "d.jsonl.gz"):
        (tmp_path / name).write_text("")
        assert classify(tmp_path / name) == "dataset"
    (tmp_path / "saved").mkdir()
    (tmp_path / "saved" / "state.json").write_text("{}")
    assert classify(tmp_path / "saved") == "dataset"
    (tmp_path / "notes.md").write_text("")
    (tmp_path / "empty").mkdir()
    assert classify(tmp_path / "notes.md") is None and classify(tmp_path / "empty") is None
    assert classify(tmp_path / "missing") is None


def test_gguf_header_peek_reads_arch_quant_and_lora_base(tmp_path):
    model = tmp_path / "m.gguf"
    model.write_bytes(
        gguf_bytes({"general.architecture": "qwen2", "general.file_type": 15, "qwen2.context_length": 4096})
    )
    lora = tmp_path / "l.gguf"
    lora.write_bytes(
        gguf_bytes(
            {
                "general.architecture": "llama",
                "general.type": "adapter",
                "adapter.type": "lora",
                "general.base_model.0.name": "SmolLM2",
            }
        )
    )
    found = resolve(None, str(model))
    assert isinstance(found, GGUFFile)
    assert (found.architecture, found.quant_type, found.is_lora, found.base) == ("qwen2", "Q4_K_M", False, None)
    found = resolve(None, str(lora))
    assert isinstance(found, GGUFFile) and found.is_lora and found.base == "SmolLM2" and found.architecture == "llama"
    (tmp_path / "bad.gguf").write_bytes(b"NOPE" + b"\0" * 20)
    with pytest.raises(FtbenchError, match="bad.gguf"):
        resolve(None, str(tmp_path / "bad.gguf"))


# ------------------------------------------------------------------------------------------ lookup order
def test_same_folder_from_any_current_directory(workspace, tmp_path):
    target = model_dir(workspace.models_dir / "x")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for cwd in (workspace.root, elsewhere, workspace.models_dir.parent / "runs"):
        assert resolve(workspace, "models/x", cwd=cwd).path == target
        assert resolve(workspace, "x", want=("model",), cwd=cwd).path == target  # a name under the model folders
    assert resolve(workspace, str(target), cwd=elsewhere).path == target  # absolute
    local = model_dir(elsewhere / "mine")
    assert resolve(workspace, "mine", cwd=elsewhere).path == local  # relative to the current folder


def test_two_different_matches_name_both(workspace, tmp_path):
    in_ws = model_dir(workspace.models_dir / "x")
    cwd = tmp_path / "project"
    in_cwd = model_dir(cwd / "models" / "x")
    with pytest.raises(AmbiguousReference) as err:
        resolve(workspace, "models/x", cwd=cwd)
    assert str(in_ws) in err.value.message and str(in_cwd) in err.value.message
    assert "./" in err.value.hint
    # a candidate of a kind nobody asked for does not count
    (cwd / "data").mkdir()
    (cwd / "data" / "x.jsonl").write_text("{}\n")
    model_dir(workspace.root / "data" / "x.jsonl")
    assert resolve(workspace, "data/x.jsonl", want=("dataset",), cwd=cwd).path == cwd / "data" / "x.jsonl"


def test_not_found_names_what_was_tried(workspace, tmp_path):
    with pytest.raises(FtbenchError) as err:
        resolve(workspace, "nope", want=("model",), cwd=tmp_path)
    message = err.value.message
    assert (
        "No model 'nope'" in message
        and "job id" in message
        and str(tmp_path) in message
        and str(workspace.root) in message
    )
    (tmp_path / "data.jsonl").write_text("{}\n")
    with pytest.raises(FtbenchError, match="a dataset, not a model"):
        resolve(workspace, "data.jsonl", want=("model",), cwd=tmp_path)
    adapter_dir(tmp_path / "ad", base="models/base")
    with pytest.raises(FtbenchError) as err:
        resolve(workspace, "ad", want=("model",), cwd=tmp_path)
    assert "PEFT adapter" in err.value.message and "models/base" in err.value.hint


# ------------------------------------------------------------------------------------------ run ids and handles
def test_ids_prefixes_and_last(workspace, tmp_path):
    old = make_run(workspace, "20261130-010000-sft-a-1111", 100.0)
    new = make_run(workspace, "20261130-020000-sft-b-2222", 200.0)
    make_run(workspace, "20261130-030000-export-x-3333", 300.0, final=None, kind="export")
    assert resolve(workspace, old.name, want=("run",), cwd=tmp_path).path == old
    assert resolve(workspace, "20261130-02", want=("run",), cwd=tmp_path).path == new
    assert resolve(workspace, "last", want=("run",), cwd=tmp_path).path == new  # exports are not runs
    assert resolve(workspace, "last~1", want=("run",), cwd=tmp_path).path == old
    with pytest.raises(FtbenchError, match="needs 3 runs"):
        resolve(workspace, "last~2", want=("run",), cwd=tmp_path)
    with pytest.raises(AmbiguousReference, match="start of 3 job ids"):
        resolve(workspace, "20261130-0", cwd=tmp_path)
    found = resolve(workspace, "last", want=("adapter",), cwd=tmp_path)
    assert isinstance(found, Weights) and found.path == new / "adapter" and found.run is not None
    assert found.label == "sft-b-2222" and found.note is None


def test_unique_prefixes_are_shortest_and_unique():
    ids = ["20261130-021955-run-2755", "20261130-021955-run-9911", "20261130-031000-x-0001", "20261201-000000-y-0002"]
    prefixes = unique_prefixes(ids)
    assert prefixes["20261130-021955-run-2755"] == "20261130-021955-run-2"
    assert prefixes["20261130-031000-x-0001"] == "20261130-03"
    assert prefixes["20261201-000000-y-0002"] == "20261201"
    for job_id, prefix in prefixes.items():
        assert job_id.startswith(prefix) and [i for i in ids if i.startswith(prefix)] == [job_id]


def test_candidates_for_completion(workspace):
    run = make_run(workspace, "20261130-010000-sft-a-1111", 100.0)
    add_checkpoint(run, 3)
    add_checkpoint(run, 6, complete=False)
    assert candidates(workspace, "la") == ["last", "last~1"]
    assert candidates(workspace, "2026") == [run.name]
    assert candidates(workspace, "last@") == ["last@last", "last@best", "last@checkpoint-3"]
    assert candidates(workspace, f"{run.name}@ch") == [f"{run.name}@checkpoint-3"]


# ------------------------------------------------------------------------------------------ checkpoints
def test_checkpoint_selectors(workspace, tmp_path):
    run = make_run(workspace, "20261130-010000-sft-a-1111", 100.0, final=None)
    assert split_selector("last@checkpoint-12") == ("last", "checkpoint-12")
    assert split_selector("a@b") == ("a@b", None)
    with pytest.raises(FtbenchError, match="no weights yet"):
        resolve(workspace, "last", want=("adapter",), cwd=tmp_path)
    c3 = add_checkpoint(run, 3, eval_loss=0.9)
    c6 = add_checkpoint(run, 6, eval_loss=0.7)
    c9 = add_checkpoint(run, 9, eval_loss=0.8)
    add_checkpoint(run, 12, complete=False)  # killed mid-save: never picked
    # No final weights: the newest complete checkpoint, with a note saying which.
    found = resolve(workspace, "last", want=("adapter",), cwd=tmp_path)
    assert found.path == c9 and "checkpoint-9" in (found.note or "")
    assert isinstance(found, Weights) and found.label == "sft-a-1111@checkpoint-9" and found.base == "models/base"
    assert resolve(workspace, "last@last", want=("adapter",), cwd=tmp_path).note is None
    assert resolve(workspace, "last@checkpoint-3", want=("adapter",), cwd=tmp_path).path == c3
    assert resolve(workspace, f"{run.name[:12]}@best", want=("adapter",), cwd=tmp_path).path == c6
    with pytest.raises(FtbenchError, match="incomplete"):
        resolve(workspace, "last@checkpoint-12", want=("adapter",), cwd=tmp_path)
    with pytest.raises(
        FtbenchError, match=r"no checkpoint-4 \(complete checkpoints: checkpoint-3, checkpoint-6, checkpoint-9\)"
    ):
        resolve(workspace, "last@checkpoint-4", want=("adapter",), cwd=tmp_path)
    # A checkpoint path given directly still knows its run.
    direct = resolve(workspace, str(c3), want=("adapter",))
    assert isinstance(direct, Weights) and direct.checkpoint == "checkpoint-3" and direct.run is not None
    # Final weights win `last`, and `best` when their eval_loss is the lowest.
    adapter_dir(run / "adapter")
    assert resolve(workspace, "last@last", want=("adapter",), cwd=tmp_path).path == run / "adapter"
    (run / "metrics.json").write_text(json.dumps({"eval_loss": 0.75}))
    assert resolve(workspace, "last@best", want=("adapter",), cwd=tmp_path).path == c6
    (run / "metrics.json").write_text(json.dumps({"eval_loss": 0.6}))
    assert resolve(workspace, "last@best", want=("adapter",), cwd=tmp_path).path == run / "adapter"


def test_best_needs_evaluation_and_full_checkpoints_are_models(workspace, tmp_path):
    run = make_run(workspace, "20261130-010000-full-1111", 100.0, final=None)
    add_checkpoint(run, 2, full=True)
    with pytest.raises(FtbenchError, match="no eval_loss"):
        resolve(workspace, "last@best", want=("adapter", "model"), cwd=tmp_path)
    found = resolve(workspace, "last@checkpoint-2", want=("adapter", "model"), cwd=tmp_path)
    assert found.kind == "model"
    with pytest.raises(FtbenchError, match="model folder weights"):
        resolve(workspace, "last@checkpoint-2", want=("adapter",), cwd=tmp_path)


def test_runs_exports_and_jobs_as_themselves(workspace, tmp_path):
    run = make_run(workspace, "20261130-010000-sft-a-1111", 100.0)
    export = make_run(workspace, "20261130-020000-export-b-2222", 200.0, final=None, kind="export")
    (export / "b-Q8_0.gguf").write_bytes(gguf_bytes({"general.architecture": "llama", "general.file_type": 7}))
    (export / "b-LoRA-F32.gguf").write_bytes(gguf_bytes({"general.architecture": "llama", "general.type": "adapter"}))
    found = resolve(workspace, run.name, want=("run", "export", "job"))
    assert isinstance(found, Run) and found.kind == "run" and found.outputs == [run / "adapter"]
    assert found.layout == JobLayout(run)
    exp = resolve(workspace, export.name, want=("export",))
    assert isinstance(exp, Run) and [p.name for p in exp.files] == ["b-Q8_0.gguf", "b-LoRA-F32.gguf"]
    model_file = resolve(workspace, export.name, want=("gguf",))
    assert (
        isinstance(model_file, GGUFFile) and model_file.path.name == "b-Q8_0.gguf" and model_file.quant_type == "Q8_0"
    )
    data = workspace.datasets_dir / "d.jsonl"
    data.write_text("{}\n")
    assert resolve(workspace, "d.jsonl", want=("dataset",), cwd=tmp_path).kind == "dataset"
    assert resolve(workspace, "datasets/d.jsonl", want=("dataset",), cwd=tmp_path).path == data


def test_layout_owns_the_job_file_names(tmp_path):
    layout = JobLayout(tmp_path)
    assert layout.status == tmp_path / "status.json" and layout.events == tmp_path / "events.jsonl"
    assert layout.log == tmp_path / "log.txt" and layout.spec == tmp_path / "job.json"
    assert layout.control_file("stop") == tmp_path / "control" / "stop" and layout.recipe == tmp_path / "recipe.yaml"
    assert layout.final_output() is None and layout.checkpoints() == []


# ------------------------------------------------------------------------------------------ every command, one answer
def test_export_chat_estimate_and_recipe_mean_the_same_folder_from_any_cwd(workspace, tmp_path, monkeypatch, capsys):
    """`ftbench export models/x`, `ftbench chat models/x`, `ftbench estimate models/x` and a recipe's `model:`."""
    from test_catalog_models import LLAMA_CONFIG, make_model

    from ftbench.chat.variants import build_variants
    from ftbench.cli import main
    from ftbench.core.recipe import resolve_recipe_paths, validate_recipe
    from ftbench.export.pipeline import resolve_source

    target = workspace.models_dir / "x"
    make_model(target, {"w": np.zeros((10, 10), np.float16)}, dict(LLAMA_CONFIG, vocab_size=100))
    (workspace.datasets_dir / "d.jsonl").write_text('{"text": "hi"}\n')
    recipe_dir = tmp_path / "recipes"
    recipe_dir.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for cwd in (elsewhere, workspace.root, workspace.runs_dir, recipe_dir):
        monkeypatch.chdir(cwd)
        assert resolve_source(workspace, "models/x").model_dir == target
        [column] = build_variants(workspace, "models/x", [])
        assert (column.kind, column.path) == ("hf", str(target))
        recipe = validate_recipe({"task": "sft", "model": "models/x", "data": "datasets/d.jsonl"})
        assert resolve_recipe_paths(recipe, workspace, recipe_dir).model.path == str(target)
        assert main(["-w", str(workspace.root), "estimate", "models/x", "--method", "full", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["params"] == 100
    # The same name somewhere else under the current folder is not silently preferred: both are named.
    make_model(elsewhere / "models" / "x", {"w": np.zeros((2, 2), np.float16)}, LLAMA_CONFIG)
    monkeypatch.chdir(elsewhere)
    assert main(["-w", str(workspace.root), "estimate", "models/x"]) == 2
    err = capsys.readouterr().err
    assert "matches two different things" in err and str(target) in err and str(elsewhere / "models" / "x") in err


def test_predict_takes_run_handles_and_explains_checkpoints(workspace, tmp_path):
    from ftbench.commands.predict import run_dir_of
    from ftbench.train.predict import weights_folder

    run = make_run(workspace, "20261130-010000-cls-1111", 100.0, final=None)
    add_checkpoint(run, 3)
    assert run_dir_of("last", workspace) == run
    checkpoint = run_dir_of("last@checkpoint-3", workspace)
    assert checkpoint == run / "checkpoints" / "checkpoint-3"
    with pytest.raises(FtbenchError) as err:
        weights_folder(checkpoint)
    assert "is a checkpoint" in err.value.message and f"ftbench export {run.name}@checkpoint-3" in err.value.hint
