"""Every causal-LM recipe in recipes/ validates and passes the data preflight on the demo workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftbench.core.recipe import load_recipe, resolve_recipe_paths

REPO = Path(__file__).resolve().parents[2]
CAUSAL = {
    "sft-lora-sentiment.yaml": ("lora", "alpaca"),
    "sft-qlora-support-chat.yaml": ("qlora", "messages"),
    "sft-lora-sharegpt-support.yaml": ("lora", "sharegpt"),
    "sft-lora-domain-qa.yaml": ("lora", "alpaca"),
    "dpo-lora-preferences.yaml": ("lora", "preference"),
    "prompt-tuning-sentiment.yaml": ("prompt_tuning", "alpaca"),
    "full-finetune-notes.yaml": ("full", "text"),
}


@pytest.mark.parametrize("name", sorted(CAUSAL))
def test_recipe_runs_on_demo_data(demo_workspace, name):
    from ftbench.commands.train import preflight_here

    path = REPO / "recipes" / name
    text = path.read_text()
    assert text.startswith("# ") and "Shows:" in text  # the comment header says what it shows
    recipe = resolve_recipe_paths(load_recipe(path), demo_workspace.root, path.parent)
    report = preflight_here(recipe)
    method, fmt = CAUSAL[name]
    assert recipe.method.name == method and report.format == fmt
    assert report.train_rows > 0 and report.bad_rows == 0
    assert recipe.data.eval or recipe.data.eval_split > 0  # every recipe reports eval loss
