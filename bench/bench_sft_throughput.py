"""SFT throughput: real (non-padding) tokens/s of ftbench's default SFT data path against the tutorials' recipe.

Both sides train the same model with the same LoRA adapter, optimizer and batch size on the same rows of the
demo data, with a plain transformers Trainer; only the data path differs:

- tutorial: every example tokenized with padding="max_length", max_length=512 (truncation on), labels =
  input ids with padding masked, as the common Alpaca/Trainer tutorials do;
- ftbench: the default recipe's path (chat-template rendering, prompt masked, first-fit packing into rows of
  data.max_length with restarting position ids, pad to the longest row).

Real tokens are counted per batch (non-pad positions), time is wall time of the timed steps after a warm-up
step. Prints both rates and their ratio (budget: >= 3x).

    python bench/bench_sft_throughput.py --workspace .ftbench-test-cache/demo [--steps 5] [--batch-size 4]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


class Clock:
    """Times training forwards after the first (warm-up) one and sums the real tokens they consumed.

    The collator wrapper queues each batch's real-token count as it is built; a forward pre-hook on the model
    takes them in order (the Trainer prefetches batches, so counting at collation time would misattribute)."""

    def __init__(self, collator) -> None:
        from collections import deque

        from transformers import TrainerCallback

        self.inner = collator
        self.queue: deque[int] = deque()
        self.forwards = 0
        self.tokens = 0
        self.t0 = self.t1 = 0.0
        clock = self

        class _End(TrainerCallback):
            def on_step_end(self, args, state, control, **kw):
                clock.t1 = time.perf_counter()

        self.callback = _End()

    def collate(self, batch):
        before = self.inner.tokens
        out = self.inner(batch)
        self.queue.append(self.inner.tokens - before)
        return out

    def hook(self, module, args, kwargs):
        if not module.training:
            return
        self.forwards += 1
        count = self.queue.popleft() if self.queue else 0
        if self.forwards == 2:
            self.t0 = time.perf_counter()
        if self.forwards >= 2:
            self.tokens += count

    def rate(self) -> float:
        return self.tokens / max(self.t1 - self.t0, 1e-9)


class TutorialCollator:
    """Stacks pre-padded rows; counts real tokens the way ftbench's collator does (attention_mask sum)."""

    def __init__(self) -> None:
        self.tokens = 0

    def __call__(self, batch):
        import torch

        out = {k: torch.tensor([b[k] for b in batch]) for k in ("input_ids", "attention_mask", "labels")}
        self.tokens += int(out["attention_mask"].sum())
        return out


def run(model_path: str, dataset, collator, steps: int, batch_size: int, seed: int = 0) -> float:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

    from ftbench.train.methods import linear_module_names

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    model = get_peft_model(
        model,
        LoraConfig(
            r=16, lora_alpha=32, lora_dropout=0.05, target_modules=linear_module_names(model), task_type="CAUSAL_LM"
        ),
    )
    clock = Clock(collator)
    model.register_forward_pre_hook(clock.hook, with_kwargs=True)
    args = TrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="ftbench-bench-"),
        max_steps=steps + 1,
        per_device_train_batch_size=batch_size,
        learning_rate=2e-4,
        logging_steps=10**6,
        save_strategy="no",
        report_to="none",
        use_cpu=not torch.cuda.is_available(),
        remove_unused_columns=False,
        disable_tqdm=True,
        dataloader_num_workers=0,
        seed=seed,
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
    )
    Trainer(
        model=model, args=args, train_dataset=dataset, data_collator=clock.collate, callbacks=[clock.callback]
    ).train()
    return clock.rate()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", default=str(REPO / ".ftbench-test-cache" / "demo"))
    parser.add_argument("--model", default="models/smollm2-135m-instruct")
    parser.add_argument("--data", default="datasets/demo/sentiment-alpaca.jsonl")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per side (after one warm-up step)")
    parser.add_argument("--batch-size", type=int, default=4, help="the recipe default")
    parser.add_argument("--max-length", type=int, default=1024, help="ftbench's data.max_length (the recipe default)")
    parser.add_argument("--tutorial-length", type=int, default=512)
    args = parser.parse_args()

    from transformers import AutoTokenizer

    from ftbench.core.recipe import resolve_recipe_paths, validate_recipe
    from ftbench.train.data import SftCollator, alpaca_prompt, load_rows, pack
    from ftbench.train.sft_tokens import tokenize_sft

    ws = Path(args.workspace)
    recipe = resolve_recipe_paths(
        validate_recipe(
            {"task": "sft", "model": args.model, "data": {"train": args.data, "max_length": args.max_length}}
        ),
        ws,
    )
    rows = load_rows(recipe.data, "sft")
    tokenizer = AutoTokenizer.from_pretrained(recipe.model.path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token

    ours = pack(
        tokenize_sft(rows.train, rows.report.format, tokenizer, recipe.data, rows.report), recipe.data.max_length
    )
    need = (args.steps + 1) * args.batch_size
    ours = ours[:need]
    n_examples_used = sum(p["position_ids"].count(0) for p in ours)

    tutorial = []
    for row in rows.train[: max(need, 1)]:
        text = alpaca_prompt(row["instruction"], row.get("input")) + row["output"] + tokenizer.eos_token
        enc = tokenizer(text, padding="max_length", max_length=args.tutorial_length, truncation=True)
        labels = [t if m else -100 for t, m in zip(enc["input_ids"], enc["attention_mask"], strict=True)]
        tutorial.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels})

    tut_rate = run(recipe.model.path, tutorial, TutorialCollator(), args.steps, args.batch_size)
    our_rate = run(
        recipe.model.path, ours, SftCollator(tokenizer.pad_token_id, packed=True), args.steps, args.batch_size
    )
    result = {
        "model": Path(recipe.model.path).name,
        "data": Path(recipe.data.train).name,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "ftbench_max_length": args.max_length,
        "tutorial_max_length": args.tutorial_length,
        "examples_per_ftbench_step": round(n_examples_used / len(ours) * args.batch_size, 1),
        "tutorial_real_tokens_per_s": round(tut_rate, 1),
        "ftbench_real_tokens_per_s": round(our_rate, 1),
        "ratio": round(our_rate / tut_rate, 2),
    }
    print(json.dumps(result, indent=2))
    print(f"SFT throughput ratio (ftbench / tutorial, real tokens/s): {result['ratio']:.2f}x (budget >= 3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
