"""ftbench's SFT path against TRL's SFTTrainer on the same work, side by side in one run.

Every side trains the demo SmolLM2 with the same LoRA (r 16, alpha 32, dropout 0.05, every linear layer), AdamW
at 2e-4 with a cosine schedule, batch size, max_length, seed, fp32 on the CPU and gradient checkpointing (TRL's
default, non-reentrant on both sides) for one epoch over the same first --rows rows of the demo alpaca data,
with the loss on the assistant answer only. TRL gets the rows as conversational prompt/completion pairs (so
`completion_only_loss` applies, rendered with the same chat template); ftbench gets the alpaca rows.

Sides (each in its own process, so peak RSS and start-up are its own; run one after another, interleaved over
--repeats on this shared box):

- trl-default:  SFTTrainer with its default data path (padded batches, full logits, token accuracy/entropy)
- trl-packing:  TRL's best CPU setting: packing (best-fit decreasing, padding-free rows whose position ids keep
                examples apart in SDPA)
- ftbench:      the recipe defaults (packing into max_length rows, logits only at trained positions)
- ftbench-unpacked: packing off (the same batches of examples as trl-default, so the same optimizer steps)

Reported per side: real (non-pad) tokens trained / wall time of the training loop, time from process launch to
the end of the first optimizer step, peak RSS (peak allocated VRAM on a GPU, where both sides train in bf16), and the eval loss on the held-out demo file after that epoch
(computed by one shared function, the same tokens on every side). Ratios are against trl-default.
TRL is not an ftbench dependency: install it (`pip install trl`) to run this bench.

    python bench/bench_sft_vs_trl.py [--rows 48] [--max-length 256] [--batch-size 4] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SIDES = ("trl-default", "trl-packing", "ftbench", "ftbench-unpacked")
# GPU levers (bench/gpu_check.py runs them): padding-free rows, Liger kernels, torch.compile, each on top of
# the recipe defaults; flash-attention varlen when flash_attn is installed.
LEVER_SIDES = ("ftbench-padding-free", "ftbench-liger", "ftbench-compile")
LORA = dict(r=16, lora_alpha=32, lora_dropout=0.05, task_type="CAUSAL_LM")


def shared_args(a: argparse.Namespace) -> dict:
    import torch

    return dict(
        output_dir=tempfile.mkdtemp(prefix="ftbench-vs-trl-"),
        num_train_epochs=1,
        per_device_train_batch_size=a.batch_size,
        learning_rate=2e-4,
        lr_scheduler_type="cosine",
        optim="adamw_torch",
        weight_decay=0.0,
        max_grad_norm=1.0,
        seed=0,
        data_seed=0,
        logging_steps=10**6,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        bf16=torch.cuda.is_available(),  # fp32 on the CPU, as ftbench's precision auto does
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        gradient_checkpointing=True,
        gradient_checkpointing_kwargs={"use_reentrant": False},
    )


class Timing:
    """Trainer callback: launch -> first optimizer step, and the training loop's wall time."""

    def __init__(self, launched: float) -> None:
        from transformers import TrainerCallback

        self.launched, self.first_step, self.begin, self.end = launched, None, 0.0, 0.0
        timing = self

        class _Cb(TrainerCallback):
            def on_train_begin(self, args, state, control, **kw):
                timing.begin = time.perf_counter()

            def on_step_end(self, args, state, control, **kw):
                if timing.first_step is None:
                    timing.first_step = time.time() - timing.launched

            def on_train_end(self, args, state, control, **kw):
                timing.end = time.perf_counter()

        self.callback = _Cb()


def alpaca_rows(a: argparse.Namespace):
    from ftbench.core.recipe import resolve_recipe_paths, validate_recipe
    from ftbench.train.data import load_rows

    recipe = validate_recipe(
        {
            "task": "sft",
            "model": a.model,
            "data": {"train": a.data, "eval": a.eval_data, "max_length": a.max_length, "max_rows": a.rows},
            "training": {"batch_size": a.batch_size, "gradient_checkpointing": True},
        }
    )
    recipe = resolve_recipe_paths(recipe, Path(a.workspace))
    return recipe, load_rows(recipe.data, "sft")


def eval_loss(model, tokenizer, recipe, rows) -> float:
    """Token-mean loss on the assistant answers of the eval rows (ftbench's masks), identical for every side."""
    import torch

    from ftbench.train.data import DataReport
    from ftbench.train.sft_tokens import tokenize_sft

    evals = rows.eval[: recipe.data.max_rows or None]  # as many eval rows as training rows
    examples = tokenize_sft(evals, rows.report.format, tokenizer, recipe.data, DataReport("alpaca"), workers=1)
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for ex in examples:
            labels = torch.tensor([ex["labels"]])
            out = model(input_ids=torch.tensor([ex["input_ids"]]), labels=labels)
            n = int((labels[:, 1:] != -100).sum())
            total += float(out.loss) * n
            count += n
    return total / count


def run_trl(a, recipe, rows, timing, packing: bool):
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from ftbench.train.data import row_messages

    tokenizer = AutoTokenizer.from_pretrained(recipe.model.path)
    pairs: list[dict] = []
    for row in rows.train:
        messages = row_messages(row, "alpaca")
        pairs.append({"prompt": messages[:-1], "completion": messages[-1:]})
    model = AutoModelForCausalLM.from_pretrained(recipe.model.path, dtype=model_dtype(), **attention(packing))
    config = SFTConfig(**shared_args(a), max_length=a.max_length, packing=packing)
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(pairs),
        processing_class=tokenizer,
        peft_config=LoraConfig(target_modules="all-linear", **LORA),
        callbacks=[timing.callback],
    )
    tokens = sum(len(ids) for ids in trainer.train_dataset["input_ids"])
    trainer.train()
    return trainer.model, tokenizer, tokens


def model_dtype():
    import torch

    return torch.bfloat16 if torch.cuda.is_available() else torch.float32


def attention(padding_free: bool) -> dict:
    """flash_attention_2 for padding-free rows on a GPU where flash_attn is installed; else the default (SDPA)."""
    import importlib.util

    import torch

    if padding_free and torch.cuda.is_available() and importlib.util.find_spec("flash_attn"):
        return {"attn_implementation": "flash_attention_2"}
    return {}


def run_ftbench(a, recipe, rows, timing, side: str):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments

    from ftbench.train.data import SftCollator, pack
    from ftbench.train.levers import use_sparse_logits
    from ftbench.train.methods import linear_module_names
    from ftbench.train.sft_tokens import tokenize_sft
    from ftbench.train.sparse_logits import causal_loss

    tokenizer = AutoTokenizer.from_pretrained(recipe.model.path)
    examples = tokenize_sft(rows.train, rows.report.format, tokenizer, recipe.data, rows.report)
    tokens = sum(len(ex["input_ids"]) for ex in examples)
    packing = side != "ftbench-unpacked"
    padding_free = side == "ftbench-padding-free"
    if packing:
        examples = pack(examples, recipe.data.max_length)
    model = AutoModelForCausalLM.from_pretrained(recipe.model.path, dtype=model_dtype(), **attention(padding_free))
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    model = get_peft_model(model, LoraConfig(target_modules=linear_module_names(model), **LORA))
    levers = {"use_liger_kernel": side == "ftbench-liger", "torch_compile": side == "ftbench-compile"}
    sparse = use_sparse_logits(recipe, model) and not levers["use_liger_kernel"]
    collator = SftCollator(tokenizer.pad_token_id, packed=packing, padding_free=padding_free, sparse_logits=sparse)
    args = {**shared_args(a), **levers, "gradient_checkpointing": False}  # applied above, as train/model.py does
    trainer = Trainer(
        model=model,
        args=TrainingArguments(**args, remove_unused_columns=False, prediction_loss_only=True),
        train_dataset=examples,
        data_collator=collator,
        callbacks=[timing.callback],
        compute_loss_func=causal_loss if sparse else None,
    )
    trainer.train()
    return trainer.model, tokenizer, tokens


def side_main(a: argparse.Namespace) -> int:
    """One side, in this process: prints one JSON line with its numbers."""
    import torch

    torch.manual_seed(0)
    if a.threads:
        torch.set_num_threads(a.threads)  # on a shared, oversubscribed box one thread per side spins least
    timing = Timing(a.launched)
    recipe, rows = alpaca_rows(a)
    if a.side.startswith("trl"):
        model, tokenizer, tokens = run_trl(a, recipe, rows, timing, packing=a.side == "trl-packing")
    else:
        model, tokenizer, tokens = run_ftbench(a, recipe, rows, timing, a.side)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if torch.cuda.is_available():
        peak_rss = torch.cuda.max_memory_allocated()  # on a GPU the memory that matters is VRAM
    loss = eval_loss(model, tokenizer, recipe, rows)
    result = {
        "side": a.side,
        "real_tokens": tokens,
        "tokens_per_s": tokens / max(timing.end - timing.begin, 1e-9),
        "first_step_s": timing.first_step,
        "peak_rss": peak_rss,
        "eval_loss": loss,
    }
    print("RESULT " + json.dumps(result), flush=True)
    return 0


def launch(side: str, a: argparse.Namespace) -> dict:
    argv = [sys.executable, __file__, "--side", side, "--launched", repr(time.time())]
    for key in ("workspace", "model", "data", "eval_data", "rows", "max_length", "batch_size", "threads"):
        argv += [f"--{key.replace('_', '-')}", str(getattr(a, key))]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"side {side} failed:\n{done.stderr[-3000:]}")


def table(results: list[dict]) -> str:
    from statistics import median

    by_side = {s: [r for r in results if r["side"] == s] for s in (*SIDES, *LEVER_SIDES)}
    med = {s: {k: median(r[k] for r in rs) for k in rs[0] if k != "side"} for s, rs in by_side.items() if rs}
    base = med["trl-default"]
    lines = [
        "| side | real tokens | tokens/s | x TRL default | first step (s) | peak memory (MiB) | x TRL default | eval loss |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for side, m in med.items():
        lines.append(
            f"| {side} | {m['real_tokens']:.0f} | {m['tokens_per_s']:.0f} | {m['tokens_per_s'] / base['tokens_per_s']:.2f}"
            f" | {m['first_step_s']:.1f} | {m['peak_rss'] / 2**20:.0f} | {m['peak_rss'] / base['peak_rss']:.2f}"
            f" | {m['eval_loss']:.4f} |"
        )
    spread = {s: max(r["eval_loss"] for r in rs) - min(r["eval_loss"] for r in rs) for s, rs in by_side.items() if rs}
    lines.append(f"\neval-loss spread between repeats of one side (noise): {json.dumps(spread)}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", default=str(REPO / ".ftbench-test-cache" / "demo"))
    parser.add_argument("--model", default="models/smollm2-135m-instruct")
    parser.add_argument("--data", default="datasets/demo/sentiment-alpaca.jsonl")
    parser.add_argument("--eval-data", default="datasets/demo/sentiment-alpaca-eval.jsonl")
    parser.add_argument("--rows", type=int, default=48, help="training rows (one epoch over them on every side)")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=0, help="torch threads per side (0: torch's default)")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of all sides, interleaved")
    parser.add_argument("--sides", default=",".join(SIDES))
    parser.add_argument("--json-out", type=Path, help="also write every side's numbers here (bench/gpu_check.py)")
    parser.add_argument("--side", help=argparse.SUPPRESS)
    parser.add_argument("--launched", type=float, default=0.0, help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a.side:
        return side_main(a)
    results = []
    for _ in range(a.repeats):
        for side in a.sides.split(","):
            results.append(launch(side, a))
            print(json.dumps(results[-1]), flush=True)
    print(table(results))
    if a.json_out:
        a.json_out.write_text(json.dumps({"results": results, "table": table(results)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
