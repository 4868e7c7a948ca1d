"""ftbench's SFT path against TRL's SFTTrainer on the same work, side by side in one run.

Every side trains the demo SmolLM2 with the same LoRA (r 16, alpha 32, dropout 0.05, every linear layer), AdamW
at 2e-4 with a cosine schedule, batch size, max_length, seed, fp32 on the CPU and gradient checkpointing (TRL's
default, non-reentrant on both sides) for one epoch over the same first --rows rows of the demo alpaca data,
with the loss on the assistant answer only. TRL gets the rows as conversational prompt/completion pairs (so
`completion_only_loss` applies, rendered with the same chat template); ftbench gets the alpaca rows and trains
through its own load path (train/model.py `load_model`) and batch layout (train/tasks/sft.py `batch_layout`).

Sides (each in its own process, so peak RSS and start-up are its own; run one after another, interleaved over
--repeats on this shared box; round k runs every side with seed k):

- trl-default:  SFTTrainer with its default data path (padded batches, full logits, token accuracy/entropy)
- trl-packing:  TRL's best CPU setting: packing (best-fit decreasing, padding-free rows whose position ids keep
                examples apart in SDPA); a packed step holds more examples, so an epoch takes fewer steps
- ftbench:      the recipe defaults (padding-free rows of each batch's examples, logits only at trained
                positions, cheap LoRA dropout masks), with TRL's gradient checkpointing
- ftbench-padded: padding-free rows off (TRL default's padded batches)
- ftbench-packing: data.packing on (the whole set packed into max_length rows: fewer, fuller steps)
- ftbench-peft-dropout: training.fast_dropout off (peft's own nn.Dropout)
- ftbench-no-checkpointing: ftbench's own default, gradient checkpointing off (faster, more memory)

Reported per side: real (non-pad) tokens trained / wall time of the training loop, optimizer steps, time from
process launch to the end of the first optimizer step, peak RSS (peak allocated VRAM on a GPU, where both sides
train in bf16), and the eval loss on the held-out demo file after that epoch (computed by one shared function,
the same tokens on every side). Ratios are against trl-default. TRL is not an ftbench dependency: install it
(`pip install trl`) to run this bench.

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
# ftbench sides: recipe overrides on top of the bench's shared settings
FTBENCH_SIDES: dict[str, dict] = {
    "ftbench": {},
    "ftbench-padded": {"data": {"padding_free": False}},
    "ftbench-packing": {"data": {"packing": True}},
    "ftbench-peft-dropout": {"training": {"fast_dropout": False}},
    "ftbench-no-checkpointing": {"training": {"gradient_checkpointing": False}},
    # GPU levers (bench/gpu_check.py runs them) on top of the defaults; flash-attention varlen rows are the
    # default layout there when flash_attn is installed
    "ftbench-liger": {"training": {"liger": True}},
    "ftbench-compile": {"training": {"torch_compile": True}},
}
SIDES = ("trl-default", "trl-packing", "ftbench", "ftbench-padded", "ftbench-packing")
LORA = dict(r=16, lora_alpha=32, lora_dropout=0.05, task_type="CAUSAL_LM")
METHOD = {"name": "lora", "r": 16, "alpha": 32, "dropout": 0.05, "target_modules": "auto"}


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
        seed=a.seed,
        data_seed=a.seed,
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


def alpaca_rows(a: argparse.Namespace, overrides: dict | None = None):
    from ftbench.core.recipe import resolve_recipe_paths, validate_recipe
    from ftbench.train.data import load_rows

    overrides = overrides or {}
    model = {"path": a.model}
    if gpu_varlen():
        model["attn_implementation"] = "flash_attention_2"
    recipe = validate_recipe(
        {
            "task": "sft",
            "model": model,
            "method": METHOD,
            "data": {
                "train": a.data,
                "eval": a.eval_data,
                "max_length": a.max_length,
                "max_rows": a.rows,
                **overrides.get("data", {}),
            },
            "training": {
                "batch_size": a.batch_size,
                "gradient_checkpointing": True,
                "seed": a.seed,
                **overrides.get("training", {}),
            },
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
    import torch
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
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[model_dtype()]
    model = AutoModelForCausalLM.from_pretrained(recipe.model.path, dtype=dtype, **attention(packing))
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
    return trainer.model, tokenizer, tokens, trainer.state.global_step


def model_dtype() -> str:
    import torch

    return "bf16" if torch.cuda.is_available() else "fp32"


def gpu_varlen() -> bool:
    """Whether padding-free rows get flash-attention's varlen kernel here (a GPU with flash_attn installed)."""
    import importlib.util

    import torch

    return torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None


def attention(padding_free: bool) -> dict:
    """flash_attention_2 for TRL's padding-free rows where gpu_varlen(); else the default (SDPA)."""
    return {"attn_implementation": "flash_attention_2"} if padding_free and gpu_varlen() else {}


def run_ftbench(a, recipe, rows, timing, side: str):
    from transformers import Trainer, TrainingArguments

    from ftbench.train.levers import trainer_overrides, use_sparse_logits
    from ftbench.train.model import load_model
    from ftbench.train.sft_tokens import tokenize_sft
    from ftbench.train.sparse_logits import causal_loss
    from ftbench.train.tasks.sft import batch_layout

    loaded = load_model(recipe, model_dtype())
    model, tokenizer = loaded.model, loaded.tokenizer
    examples = tokenize_sft(rows.train, rows.report.format, tokenizer, recipe.data, rows.report)
    tokens = sum(len(ex["input_ids"]) for ex in examples)
    sparse = use_sparse_logits(recipe, model)
    examples, _, collator = batch_layout(
        recipe, lambda line: print(line, file=sys.stderr), examples, [], tokenizer.pad_token_id, sparse
    )
    args = {**shared_args(a), **trainer_overrides(recipe), "gradient_checkpointing": False}  # load_model applied it
    trainer = Trainer(
        model=model,
        args=TrainingArguments(**args, remove_unused_columns=False, prediction_loss_only=True),
        train_dataset=examples,
        data_collator=collator,
        callbacks=[timing.callback],
        compute_loss_func=causal_loss if collator.sparse_logits else None,
    )
    trainer.train()
    return trainer.model, tokenizer, tokens, trainer.state.global_step


def side_main(a: argparse.Namespace) -> int:
    """One side, in this process: prints one JSON line with its numbers."""
    import torch

    torch.manual_seed(a.seed)
    if a.threads:
        torch.set_num_threads(a.threads)  # on a shared, oversubscribed box one thread per side spins least
    timing = Timing(a.launched)
    recipe, rows = alpaca_rows(a, FTBENCH_SIDES.get(a.side))
    if a.side.startswith("trl"):
        model, tokenizer, tokens, steps = run_trl(a, recipe, rows, timing, packing=a.side == "trl-packing")
    else:
        model, tokenizer, tokens, steps = run_ftbench(a, recipe, rows, timing, a.side)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if torch.cuda.is_available():
        peak_rss = torch.cuda.max_memory_allocated()  # on a GPU the memory that matters is VRAM
    loss = eval_loss(model, tokenizer, recipe, rows)
    result = {
        "side": a.side,
        "seed": a.seed,
        "real_tokens": tokens,
        "steps": steps,
        "tokens_per_s": tokens / max(timing.end - timing.begin, 1e-9),
        "first_step_s": timing.first_step,
        "peak_rss": peak_rss,
        "eval_loss": loss,
    }
    print("RESULT " + json.dumps(result), flush=True)
    return 0


def launch(side: str, a: argparse.Namespace) -> dict:
    argv = [sys.executable, __file__, "--side", side, "--launched", repr(time.time())]
    for key in ("workspace", "model", "data", "eval_data", "rows", "max_length", "batch_size", "threads", "seed"):
        argv += [f"--{key.replace('_', '-')}", str(getattr(a, key))]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"side {side} failed:\n{done.stderr[-3000:]}")


def table(results: list[dict]) -> str:
    """Medians over the rounds; each ratio is the median of the per-round ratios against the same round's TRL
    default (same seed, neighbouring in time). Eval loss: each side's largest gap to TRL default at the same
    seed, beside TRL default's own spread over the seeds (the noise a different seed makes)."""
    from statistics import median

    by_side = {s: [r for r in results if r["side"] == s] for s in dict.fromkeys(r["side"] for r in results)}
    trl = {r["seed"]: r for r in by_side["trl-default"]}

    def ratio(rs: list[dict], key: str) -> float:
        return median(r[key] / trl[r["seed"]][key] for r in rs)

    lines = [
        "| side | real tokens | steps | tokens/s | x TRL default | first step (s) | peak memory (MiB) | x TRL default"
        " | eval loss | gap to TRL default |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for side, rs in by_side.items():
        m = {k: median(r[k] for r in rs) for k in rs[0] if k != "side"}
        gap = max(abs(r["eval_loss"] - trl[r["seed"]]["eval_loss"]) for r in rs)
        lines.append(
            f"| {side} | {m['real_tokens']:.0f} | {m['steps']:.0f} | {m['tokens_per_s']:.0f}"
            f" | {ratio(rs, 'tokens_per_s'):.2f} | {m['first_step_s']:.1f} | {m['peak_rss'] / 2**20:.0f}"
            f" | {ratio(rs, 'peak_rss'):.2f} | {m['eval_loss']:.4f} | {gap:.4f} |"
        )
    losses = [r["eval_loss"] for r in by_side["trl-default"]]
    lines.append(
        f"\nrounds (seeds): {len(trl)}; TRL default's eval loss over the seeds: {min(losses):.4f} to {max(losses):.4f}"
        f" (spread {max(losses) - min(losses):.4f}, the noise a seed makes; 0 with one round)"
    )
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
    parser.add_argument("--repeats", type=int, default=1, help="rounds of all sides, interleaved; round k: seed k")
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--sides", default=",".join(SIDES))
    parser.add_argument("--json-out", type=Path, help="also write every side's numbers here (bench/gpu_check.py)")
    parser.add_argument("--side", help=argparse.SUPPRESS)
    parser.add_argument("--launched", type=float, default=0.0, help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a.side:
        return side_main(a)
    unknown = [s for s in a.sides.split(",") if not s.startswith("trl-") and s not in FTBENCH_SIDES]
    unknown += [s for s in a.sides.split(",") if s.startswith("trl-") and s not in ("trl-default", "trl-packing")]
    if unknown:
        parser.error(f"unknown side {unknown[0]!r}; sides: trl-default, trl-packing, {', '.join(FTBENCH_SIDES)}")
    results = []
    if "trl-default" not in a.sides.split(","):
        parser.error("--sides needs trl-default: every ratio is against it")
    for round_ in range(a.repeats):
        a.seed = round_
        for side in a.sides.split(","):
            results.append(launch(side, a))
            print(json.dumps(results[-1]), flush=True)
    print(table(results))
    if a.json_out:
        a.json_out.write_text(json.dumps({"results": results, "table": table(results)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
