"""The demo LoRA SFT recipe on SmolLM2-135M-Instruct, on the CPU: the adapter teaches the answer format.

The recipe (recipes/sft-lora-sentiment.yaml) trains on reviews whose answers are exactly
`Sentiment: positive|negative|neutral`. After a few steps, greedy decoding of a held-out review with the
adapter must follow that format, and the base model's answer must not.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_train_tasks import run_inline

from ftbench.core.recipe import load_recipe, resolve_recipe_paths

REPO = Path(__file__).resolve().parents[2]
FORMAT = re.compile(r"^Sentiment: (positive|negative|neutral)\b")


def greedy(model, tokenizer, prompt: str) -> str:
    import torch

    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
    )
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=6, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True).strip()


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_demo_lora_adapter_teaches_the_format(demo_workspace, workspace):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    recipe = load_recipe(
        REPO / "recipes" / "sft-lora-sentiment.yaml",
        [
            "training.max_steps=4",
            "training.batch_size=2",
            "data.max_length=128",
            "data.eval=null",
            "training.eval_steps=null",
        ],
    )
    recipe = resolve_recipe_paths(recipe, demo_workspace.root)
    job_dir, result = run_inline(workspace, recipe.to_dict())
    assert result["steps"] == 4

    held_out = [
        json.loads(line)
        for line in (demo_workspace.root / "datasets/demo/sentiment-alpaca-eval.jsonl").read_text().splitlines()[:1]
    ]
    tokenizer = AutoTokenizer.from_pretrained(job_dir / "adapter")
    base = AutoModelForCausalLM.from_pretrained(recipe.model.path, dtype=torch.float32).eval()
    prompts = [f"{row['instruction']}\n\n{row['input']}" for row in held_out]
    base_answers = [greedy(base, tokenizer, p) for p in prompts]
    tuned = PeftModel.from_pretrained(base, job_dir / "adapter").merge_and_unload().eval()
    tuned_answers = [greedy(tuned, tokenizer, p) for p in prompts]
    assert all(FORMAT.match(a) for a in tuned_answers), tuned_answers
    assert not any(FORMAT.match(a) for a in base_answers), base_answers
