"""Every recipe in recipes/: the causal-LM ones validate and pass the data preflight on the demo workspace, and
every one trains a few steps on the demo's real models and data with its own method, task and learning rate,
its loss falling (the run repeats a few rows, so a recipe that learns nothing fails)."""

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
    "orpo-lora-preferences.yaml": ("lora", "preference"),
    "simpo-lora-preferences.yaml": ("lora", "preference"),
    "kto-lora-feedback.yaml": ("lora", "unpaired"),
    "grpo-lora-answer-format.yaml": ("lora", "prompts"),
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


ALL_RECIPES = sorted(p.name for p in (REPO / "recipes").glob("*.yaml"))
NEEDS_CUDA = {"sft-qlora-support-chat.yaml"}  # 4-bit bitsandbytes kernels


def few_steps(recipe: dict, steps: int = 6) -> dict:
    """The recipe as written, shrunk: a few rows seen several times, no eval, no checkpoints, every step logged.

    The causal-LM recipes train the real 135M-parameter demo model, so their rows are cut to 64 tokens and
    two per batch (a DPO step is four sequences through the model, one of them twice); the encoder recipes keep
    128 tokens, which their QA contexts need to hold an answer.
    """
    data, training = recipe["data"], recipe["training"]
    causal = recipe["task"] in ("sft", "dpo")
    length = 64 if causal else 128
    data.update(max_rows=4 if causal else 8, max_length=min(data.get("max_length") or length, length))
    data.update(eval=None, eval_split=0.0)
    if "dpo" in recipe:
        recipe["dpo"]["max_prompt_length"] = min(recipe["dpo"].get("max_prompt_length") or 32, 32)
    training.update(
        max_steps=steps,
        epochs=1,
        batch_size=min(training["batch_size"], 2 if causal else 4),
        gradient_accumulation=1,
        logging_steps=1,
        eval_steps=None,
        save_steps=10_000,
        early_stopping_patience=None,
        warmup_steps=0,
        warmup_ratio=0.0,
    )
    return recipe


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.gpu) if n in NEEDS_CUDA else n for n in ALL_RECIPES]
)
def test_recipe_trains_and_its_loss_falls(demo_workspace, workspace, name):
    from test_encoder_tasks import run_inline

    from ftbench.core.events import read_events

    recipe = resolve_recipe_paths(load_recipe(REPO / "recipes" / name), demo_workspace.root, REPO / "recipes").to_dict()
    job_dir, status = run_inline(workspace, few_steps(recipe))
    assert status["result"]["steps"] == 6
    if recipe["task"] == "grpo":  # a policy-gradient loss hovers near 0; what must move is the sampled reward
        rewards = [e["reward"] for e in read_events(job_dir / "events.jsonl", ["objective"])]
        assert len(rewards) == 6 and len(set(rewards)) > 1, f"{name}: the reward never moved: {rewards}"
        return
    losses = [e["loss"] for e in read_events(job_dir / "events.jsonl", ["train"])]
    assert len(losses) == 6 and all(isinstance(v, float) for v in losses)
    assert sum(losses[-2:]) / 2 < sum(losses[:2]) / 2, f"{name}: loss did not fall over 6 steps: {losses}"
