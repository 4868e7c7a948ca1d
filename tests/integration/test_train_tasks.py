"""SFT x {full, lora, qlora, prompt_tuning} and DPO x lora end to end on a tiny random llama, in-process.

Each run trains a few dozen steps on a learnable toy task (a fixed answer format per input word) and must
lower the loss; the outputs (adapter or model, tokenizer, recipe, metrics, model card) must be complete.
Runs go through the real job target (`ftbench.train.worker.run`) with a real JobContext, only without the
detached process, so they take seconds; the detached path is covered in test_train_lifecycle.py.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from inlinejob import run_job_inline

from ftbench.core.events import read_events
from ftbench.core.jobs import new_job_id

WORDS = {"positive": ["great", "good", "happy", "love"], "negative": ["bad", "terrible", "sad", "hate"]}


def toy_alpaca(n: int = 48, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.choice(list(WORDS))
        rows.append({"instruction": f"Review: it is {rng.choice(WORDS[label])}", "output": f"Sentiment: {label}"})
    return rows


def toy_preferences(n: int = 32, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.choice(list(WORDS))
        other = "negative" if label == "positive" else "positive"
        rows.append(
            {
                "prompt": f"Review: it is {rng.choice(WORDS[label])}",
                "chosen": f"Sentiment: {label}",
                "rejected": f"Sentiment: {other}",
            }
        )
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def run_inline(
    ws: Any, recipe: dict[str, Any], attempt: int = 1, job_dir: Path | None = None
) -> tuple[Path, dict[str, Any]]:
    """Run the training job target in this process with a real JobContext; returns (run dir, result)."""
    from ftbench.core.recipe import validate_recipe

    job_dir = job_dir or ws.root / "runs" / new_job_id("train", "t")
    params = {"recipe": validate_recipe(recipe).to_dict()}
    run_job_inline(ws.root, job_dir, "train", "ftbench.train.worker:run", params, attempt)
    return job_dir, json.loads((job_dir / "status.json").read_text())["result"]


def losses(job_dir: Path) -> list[float]:
    return [e["loss"] for e in read_events(job_dir / "events.jsonl", ["train"])]


def base_recipe(model: Path, data_path: Path, **sections: Any) -> dict[str, Any]:
    recipe: dict[str, Any] = {
        "task": "sft",
        "model": str(model),
        "data": {"train": str(data_path), "max_length": 64, "eval_split": 0.125},
        "method": {"name": "lora", "r": 8},
        "training": {
            "max_steps": 30,
            "batch_size": 4,
            "lr": 5e-3,
            "logging_steps": 5,
            "eval_steps": 15,
            "save_steps": 30,
            "warmup_steps": 2,
        },
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(recipe.get(key), dict):
            recipe[key] = {**recipe[key], **value}
        else:
            recipe[key] = value
    return recipe


def assert_learned(job_dir: Path, result: dict[str, Any], drop: float = 0.7) -> None:
    curve = losses(job_dir)
    assert len(curve) >= 4, curve
    first, last = curve[0], sum(curve[-2:]) / 2
    assert last < first * drop, f"loss did not fall enough: {curve}"
    assert result["steps"] == 30
    assert result["tokens"] > 0
    assert (job_dir / "README.md").read_text().count("| learning_rate |") == 1
    assert json.loads((job_dir / "metrics.json").read_text())["train_loss"] == pytest.approx(
        result["train_loss"], rel=1e-4
    )


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny llama with a wider init (0.1): at the default 0.02 its random LM head caps logits near 1, so
    methods that leave the head frozen (LoRA, prompt tuning, DPO with an adapter) cannot show learning."""
    from tinymodels import make_tiny_causal_lm

    return make_tiny_causal_lm(tmp_path_factory.mktemp("tiny") / "llama-wide", initializer_range=0.1)


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("toy")
    return {
        "alpaca": write_jsonl(d / "alpaca.jsonl", toy_alpaca()),
        "pref": write_jsonl(d / "pref.jsonl", toy_preferences()),
    }


@pytest.mark.parametrize("method", ["lora", "full", "prompt_tuning"])
def test_sft_methods_learn(workspace, tiny_lm, toy_data, method):
    extra: dict[str, Any] = {"method": {"name": method}}
    if method == "prompt_tuning":
        extra["method"] = {"name": method, "num_virtual_tokens": 8}
        extra["training"] = {"lr": 1e-1}
    job_dir, result = run_inline(workspace, base_recipe(tiny_lm, toy_data["alpaca"], **extra))
    assert_learned(job_dir, result, drop=0.85 if method == "prompt_tuning" else 0.5)
    assert result["eval_loss"] > 0 and result["perplexity"] == pytest.approx(
        __import__("math").exp(result["eval_loss"]), rel=1e-6
    )
    out = job_dir / ("model" if method == "full" else "adapter")
    assert (out / "tokenizer_config.json").is_file() and "chat_template" in (
        out / "tokenizer_config.json"
    ).read_text() + "".join(p.name for p in out.iterdir())
    if method == "full":
        assert (out / "config.json").is_file()
    else:
        config = json.loads((out / "adapter_config.json").read_text())
        assert config["peft_type"] == ("LORA" if method == "lora" else "PROMPT_TUNING")
    if method == "lora":
        info = json.loads((job_dir / "metrics.json").read_text())["info"]
        assert info["target_modules"] == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
        assert sorted(json.loads((out / "adapter_config.json").read_text())["target_modules"]) == info["target_modules"]


def test_sft_qlora_learns_on_cpu(workspace, tiny_lm, toy_data):
    pytest.importorskip("bitsandbytes")
    job_dir, result = run_inline(workspace, base_recipe(tiny_lm, toy_data["alpaca"], method={"name": "qlora"}))
    assert_learned(job_dir, result, drop=0.5)
    assert json.loads((job_dir / "adapter" / "adapter_config.json").read_text())["peft_type"] == "LORA"


def test_dpo_lora_prefers_chosen(workspace, tiny_lm, toy_data):
    recipe = base_recipe(tiny_lm, toy_data["pref"], task="dpo")
    job_dir, result = run_inline(workspace, recipe)
    curve = losses(job_dir)
    assert curve[0] == pytest.approx(0.6931, abs=0.01)  # log 2: policy == reference at step 0
    assert sum(curve[-2:]) / 2 < 0.45, curve
    assert result["rewards/accuracy"] >= 0.75
    assert result["rewards/chosen"] > result["rewards/rejected"]
    assert (job_dir / "adapter" / "adapter_config.json").is_file()
    evals = read_events(job_dir / "events.jsonl", ["eval"])
    assert evals and "rewards/accuracy" in evals[-1]


@pytest.mark.gpu
def test_gpu_sampler_reports_memory():
    import torch

    from ftbench.train.callbacks import GpuSampler

    events: list[dict[str, Any]] = []
    sampler = GpuSampler(lambda type, **fields: events.append({"type": type, **fields}), interval_s=0.1)
    keep = torch.ones(1024, 1024, device="cuda")
    sampler.sample_once()
    assert events[0]["type"] == "gpu" and events[0]["torch_peak_allocated"] >= keep.numel() * 4
    assert events[0]["devices"] and events[0]["devices"][0]["mem_total"] > 0
    # ...and the monitor's reader finds it under the same key: the peak-memory line shows on a real GPU run
    from ftbench.core.event_schema import encode_event, parse_event, problems
    from ftbench.tui.widgets.run_data import RunView

    fields = {k: v for k, v in events[0].items() if k != "type"}
    assert problems("gpu", fields) == []
    view = RunView()
    view.add(parse_event(encode_event("gpu", fields, attempt=1)))
    assert view.torch_peak_allocated == events[0]["torch_peak_allocated"] and len(view.gpu_latest) == len(
        fields["devices"]
    )
