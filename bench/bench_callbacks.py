"""Monitoring overhead: tokens/s of the same Trainer with ftbench's callbacks (events, control polling, GPU
sampler) against without them. Budget: >= 0.98x.

A tiny model makes steps short, which is the worst case for per-step overhead. The two configurations are
run interleaved (A B A B ...) and the best of each is compared, so background load hits both alike.

    python bench/bench_callbacks.py [--steps 300] [--rounds 3]
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
sys.path.insert(0, str(REPO / "tests"))


class BenchCtx:
    """The parts of JobContext the callbacks use, writing a real events.jsonl."""

    def __init__(self, folder: Path) -> None:
        from ftbench.core.events import EventWriter

        self.job_dir = folder
        self.events = EventWriter(folder / "events.jsonl")
        self.stop_requested = False
        self.attempt = 1

    def emit(self, type: str, **fields):
        return self.events.emit(type, **fields)

    def control_requested(self, action: str) -> bool:
        try:
            (self.job_dir / "control" / action).unlink()
            return True
        except FileNotFoundError:
            return False

    def log(self, message: str) -> None:
        self.emit("log", message=message)


def one_run(model_path: Path, dataset, steps: int, with_callbacks: bool, folder: Path) -> float:
    import torch
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

    from ftbench.train.callbacks import ControlCallback, EventsCallback, GpuSampler
    from ftbench.train.data import SftCollator

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_path)
    collator = SftCollator(0, packed=True)
    callbacks, sampler = [], None
    if with_callbacks:
        ctx = BenchCtx(folder)
        callbacks = [EventsCallback(ctx.emit, collator), ControlCallback(ctx)]
        sampler = GpuSampler(ctx.emit)
        sampler.start()
    args = TrainingArguments(
        output_dir=str(folder / "out"),
        max_steps=steps,
        per_device_train_batch_size=4,
        logging_steps=1 if with_callbacks else 10**6,
        save_strategy="no",
        report_to="none",
        use_cpu=not torch.cuda.is_available(),
        remove_unused_columns=False,
        disable_tqdm=True,
    )
    if not with_callbacks:
        args.logging_steps = 1  # same Trainer logging work on both sides; only our callbacks differ
    trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=collator, callbacks=callbacks)
    t0 = time.perf_counter()
    trainer.train()
    elapsed = time.perf_counter() - t0
    if sampler:
        sampler.stop()
    return collator.tokens / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from tinymodels import make_tiny_causal_lm

    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        model_path = make_tiny_causal_lm(tmpdir / "tiny")
        import random

        rng = random.Random(0)
        dataset = []
        for _ in range(64):
            n = rng.randint(32, 96)
            ids = [rng.randrange(3, 500) for _ in range(n)]
            dataset.append({"input_ids": ids, "labels": ids, "position_ids": list(range(n))})
        rates = {True: [], False: []}
        for r in range(args.rounds):
            for flag in (False, True):
                folder = tmpdir / f"run-{r}-{flag}"
                folder.mkdir()
                rates[flag].append(one_run(model_path, dataset, args.steps, flag, folder))
        best_with, best_without = max(rates[True]), max(rates[False])
        result = {
            "steps": args.steps,
            "rounds": args.rounds,
            "tokens_per_s_without": round(best_without, 1),
            "tokens_per_s_with": round(best_with, 1),
            "ratio": round(best_with / best_without, 4),
            "all_with": [round(x) for x in rates[True]],
            "all_without": [round(x) for x in rates[False]],
        }
    print(json.dumps(result, indent=2))
    print(f"Callback overhead ratio (with / without): {result['ratio']:.3f}x (budget >= 0.98x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
