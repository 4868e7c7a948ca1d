"""Launch to first optimizer step of an SFT run, cold (empty tokenization cache) and warm (second run on the
same data), on the demo chat data and on a generated 50k-row chat dataset.

Each run is a real `ftbench train RECIPE --wait` (max_steps 1, the demo SmolLM2, LoRA) in a fresh workspace;
the time is from starting the command to the `t` of the first `train` event (logged at step 1). Beside it, the
data path alone in this process: the previous per-row path (1 + 2 x turns renderings, one tokenizer call per
segment), the new one cold (one rendering, batched, parallel) and the warm cache read, so the table says where
the start-up time goes.

    python bench/bench_first_step.py [--rows 50000] [--skip-runs]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEMO = REPO / ".ftbench-test-cache" / "demo"
WORDS = "the hub pairs with a short press and the app lists every device in the room after setup".split()


def generated_chats(path: Path, rows: int) -> Path:
    """`rows` messages rows, 1-3 turns of random words (seeded)."""
    rng = random.Random(0)
    with path.open("w", encoding="utf-8") as f:
        for _ in range(rows):
            messages = [{"role": "system", "content": "You are the Lumen Lane support assistant."}]
            for _turn in range(rng.randint(1, 3)):
                messages.append({"role": "user", "content": " ".join(rng.choices(WORDS, k=rng.randint(5, 30)))})
                messages.append({"role": "assistant", "content": " ".join(rng.choices(WORDS, k=rng.randint(5, 60)))})
            f.write(json.dumps({"messages": messages}) + "\n")
    return path


def recipe_for(data: Path) -> dict:
    return {
        "task": "sft",
        "model": str(DEMO / "models" / "smollm2-135m-instruct"),
        "data": {"train": str(data), "max_length": 256},
        "training": {"max_steps": 1, "batch_size": 2, "logging_steps": 1},
    }


def first_step_seconds(ws: Path, recipe: Path) -> float:
    """`ftbench train --wait` from launch to the first train event."""
    start = time.time()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "ftbench.cli", "--workspace", str(ws), "train", str(recipe), "--wait", "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"training failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    [events] = sorted(ws.glob("runs/*/events.jsonl"), key=lambda p: p.stat().st_mtime)[-1:]
    for line in events.read_text().splitlines():
        event = json.loads(line)
        if event.get("type") == "train" and event.get("step", 0) >= 1:
            return event["t"] - start
    raise RuntimeError(f"no train event in {events}")


def data_path_seconds(data: Path) -> dict[str, float]:
    """The tokenization phase alone: previous per-row path, new path cold, warm cache read."""
    from transformers import AutoTokenizer

    from ftbench.core.recipe import validate_recipe
    from ftbench.train.data import IGNORE, DataReport, load_rows, sft_segments
    from ftbench.train.sft_tokens import tokenize_sft
    from ftbench.train.token_cache import cached_tokenize, fingerprint

    recipe = validate_recipe(recipe_for(data))
    rows = load_rows(recipe.data, "sft")
    tok = AutoTokenizer.from_pretrained(recipe.model.path)
    fmt = rows.report.format
    t0 = time.perf_counter()
    for row in rows.train:  # the previous path, for the record
        segments, templated = sft_segments(row, fmt, tok)
        for j, (text, _) in enumerate(segments):
            tok(text, add_special_tokens=(j == 0 and not templated))
    previous = time.perf_counter() - t0
    cache = Path(tempfile.mkdtemp(prefix="ftbench-cache-"))
    key = fingerprint(recipe.data, fmt, tok)

    def build():
        return tokenize_sft(rows.train, fmt, tok, recipe.data, DataReport(fmt)), []

    t0 = time.perf_counter()
    cached_tokenize(cache, key, DataReport(fmt), build)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    hit = cached_tokenize(cache, key, DataReport(fmt), build)
    warm = time.perf_counter() - t0
    assert hit.from_cache and all(lab == IGNORE or lab >= 0 for ex in hit.train[:10] for lab in ex["labels"])
    shutil.rmtree(cache)
    return {"rows": len(rows.train), "previous_s": previous, "cold_s": cold, "warm_s": warm}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000, help="rows of the generated set (0: demo data only)")
    parser.add_argument("--skip-runs", action="store_true", help="only the data-path phase (no training runs)")
    a = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ftbench-first-step-"))
    # a private copy: the demo workspace is shared, and a rebuild there (new mtime) would rightly miss the cache
    demo = tmp / "support-chat.jsonl"
    shutil.copyfile(DEMO / "datasets" / "demo" / "support-chat.jsonl", demo)
    datasets = {"demo support-chat": demo}
    if a.rows:
        datasets[f"generated {a.rows / 1000:g}k"] = generated_chats(tmp / "chats.jsonl", a.rows)
    lines = [
        "| data | rows | tokenize: previous (s) | new cold (s) | warm read (s) | launch->step 1 cold (s) | warm (s) | warm/cold |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, data in datasets.items():
        phase = data_path_seconds(data)
        cold = warm = float("nan")
        if not a.skip_runs:
            ws = tmp / f"ws-{len(lines)}"
            recipe = tmp / f"recipe-{len(lines)}.json"
            recipe.write_text(json.dumps(recipe_for(data)))  # JSON is YAML
            cold = first_step_seconds(ws, recipe)
            warm = first_step_seconds(ws, recipe)
        lines.append(
            f"| {name} | {phase['rows']} | {phase['previous_s']:.1f} | {phase['cold_s']:.1f} | {phase['warm_s']:.2f}"
            f" | {cold:.1f} | {warm:.1f} | {warm / cold:.2f} |"
        )
        print(lines[-1], flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
