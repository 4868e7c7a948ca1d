"""Recipe schema: defaults, shorthands, --set overrides, and error messages that name key, value and fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ftbench.core.errors import FtbenchError
from ftbench.core.recipe import apply_overrides, load_recipe, resolve_recipe_paths, validate_recipe

THREE_LINES = {"task": "sft", "model": "models/m", "data": "datasets/d.jsonl"}


def test_three_line_recipe_gets_every_default():
    r = validate_recipe(THREE_LINES)
    assert r.model.path == "models/m" and r.data.train == "datasets/d.jsonl"
    assert r.method.name == "lora" and r.method.target_modules == "auto" and r.method.r == 16
    assert r.data.format == "auto" and r.data.packing is False and r.data.padding_free is True
    assert r.data.train_on_prompt is False and r.training.fast_dropout is True
    assert r.training.precision == "auto" and r.training.devices == "auto" and r.model.trust_remote_code is False
    assert r.learning_rate() == 2e-4
    assert validate_recipe({**THREE_LINES, "method": "full"}).learning_rate() == 2e-5
    dumped = yaml.safe_load(r.to_yaml())
    assert dumped["training"]["batch_size"] == 4 and dumped["method"]["alpha"] == 32.0  # every default written out


def test_set_overrides_are_typed_by_the_schema(tmp_path: Path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(THREE_LINES))
    r = load_recipe(
        path,
        [
            "training.lr=1e-4",
            "training.batch_size=8",
            "data.packing=true",
            "method.name=qlora",
            "method.target_modules=[q_proj, v_proj]",
        ],
    )
    assert r.training.lr == 1e-4 and r.training.batch_size == 8 and r.data.packing is True
    assert r.method.name == "qlora" and r.method.target_modules == ["q_proj", "v_proj"]
    assert r.name == "r"
    # --set into a shorthand section expands it
    assert apply_overrides(THREE_LINES, ["model.dtype=bfloat16"])["model"] == {"path": "models/m", "dtype": "bfloat16"}


def test_typo_suggests_nearest_key():
    with pytest.raises(FtbenchError) as exc:
        validate_recipe({**THREE_LINES, "training": {"learning_rte": 1e-4}})
    assert "training.learning_rte" in exc.value.message
    with pytest.raises(FtbenchError) as exc:
        validate_recipe({**THREE_LINES, "training": {"batchsize": 4}})
    assert exc.value.hint == "Did you mean 'training.batch_size'?"
    with pytest.raises(FtbenchError) as exc:
        validate_recipe({**THREE_LINES, "modle": "x"})
    assert "Did you mean 'model'" in exc.value.hint


@pytest.mark.parametrize(
    ("patch", "words"),
    [
        ({"task": "summarize"}, ["task", "'summarize'", "'sft'"]),
        ({"training": {"batch_size": "many"}}, ["training.batch_size", "'many'", "integer"]),
        ({"training": {"batch_size": 0}}, ["training.batch_size", "greater than or equal to 1"]),
        ({"method": {"name": "lora", "r": 1.5}}, ["method.r", "1.5"]),
        ({"data": {"train": "d.jsonl", "eval_split": 1.5}}, ["data.eval_split", "1.5"]),
        ({"task": "dpo", "data": {"train": "d.jsonl", "format": "alpaca"}}, ["data.format", "alpaca", "preference"]),
        ({"method": {"name": "prompt_tuning", "prompt_init": "text"}}, ["prompt_init_text"]),
        ({"training": {"devices": 0}}, ["training.devices"]),
    ],
)
def test_bad_values_name_key_value_and_allowed(patch, words):
    with pytest.raises(FtbenchError) as exc:
        validate_recipe({**THREE_LINES, **patch}, source="r.yaml")
    for word in words:
        assert word in exc.value.message, exc.value.message
    assert exc.value.message.startswith("r.yaml")
    assert exc.value.hint


def test_missing_keys_and_broken_files(tmp_path: Path):
    with pytest.raises(FtbenchError) as exc:
        validate_recipe({"task": "sft", "data": "d.jsonl"})
    assert "'model'" in exc.value.message and "model:" in exc.value.hint
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: sft\nmodel: [unclosed\n")
    with pytest.raises(FtbenchError, match="not valid YAML at line"):
        load_recipe(bad)
    with pytest.raises(FtbenchError, match="does not exist"):
        load_recipe(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(FtbenchError, match="mapping"):
        load_recipe(tmp_path / "list.yaml")
    with pytest.raises(FtbenchError, match="key.path=value"):
        apply_overrides(THREE_LINES, ["training.lr"])


def test_paths_resolve_against_workspace_then_recipe_folder(tmp_path: Path):
    ws = tmp_path / "ws"
    (ws / "models" / "m").mkdir(parents=True)
    (ws / "datasets").mkdir()
    (ws / "datasets" / "d.jsonl").write_text("{}\n")
    here = tmp_path / "recipes"
    here.mkdir()
    (here / "local.jsonl").write_text("{}\n")
    r = resolve_recipe_paths(
        validate_recipe({**THREE_LINES, "data": {"train": "datasets/d.jsonl", "eval": "local.jsonl"}}), ws, here
    )
    assert r.model.path == str(ws / "models" / "m")
    assert r.data.train == str(ws / "datasets" / "d.jsonl") and r.data.eval == str(here / "local.jsonl")
    hub = resolve_recipe_paths(validate_recipe({**THREE_LINES, "model": "HuggingFaceTB/SmolLM2-135M"}), ws)
    assert hub.model.path == "HuggingFaceTB/SmolLM2-135M"
