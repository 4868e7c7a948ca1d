"""Launch to first optimizer step of an SFT run, cold (empty tokenization cache) and warm (second run on the
same data), on the demo chat data and on a generated 50k-row multi-turn chat dataset.

Each launch is a real `ftbench train RECIPE --wait` (max_steps 1, LoRA) in one workspace per dataset; a cold
launch first deletes the workspace's tokenization cache (`.cache/tokenized`), a warm one finds the entry the
cold one wrote. Rounds interleave cold and warm on every dataset (this box is shared: the load drifts) and
the table gives the median per phase, read from the run's events.jsonl:

- spawn: launch to the job's `running` state (the CLI starting the detached job process)
- start-up: `running` to the `loading model` event (imports, preflight reading and checking the rows)
- model load: the `loading model` events
- data: model loaded to the `training` event (tokenization or the cache read, packing, Trainer set-up)
- first step: `training` to the first `train` event (the optimizer step itself)

By default both sides train a small model with SmolLM2's config shape cut down (2 layers, hidden 64) and
SmolLM2's real tokenizer and vocabulary, so tokenization costs what it costs for the demo model while the one
optimizer step does not drown the data phase on 2 CPU cores; `--model demo` uses the demo SmolLM2-135M.

Beside it, the data path alone in this process: the previous per-row path (1 + 2 x turns renderings, one
tokenizer call per segment; no switch reaches it in the job any more), the new one cold (one rendering,
batched, parallel) and the warm cache read.

    python bench/bench_first_step.py [--rows 50000] [--rounds 3] [--model small|demo] [--skip-runs]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEMO = REPO / ".ftbench-test-cache" / "demo"
DEMO_MODEL = DEMO / "models" / "smollm2-135m-instruct"
WORDS = (
    "the hub pairs with a short press and the app lists every device in the room after setup; if the light "
    "blinks red twice, hold the reset button for ten seconds, then try again from the settings page"
).split()
PHASES = ("spawn_s", "startup_s", "model_load_s", "data_s", "first_step_s", "total_s")


def generated_chats(path: Path, rows: int) -> Path:
    """`rows` messages rows (seeded): an optional system prompt, 1-4 turns, answers from 3 to 150 words."""
    rng = random.Random(0)
    with path.open("w", encoding="utf-8") as f:
        for _ in range(rows):
            messages = []
            if rng.random() < 0.7:
                messages.append({"role": "system", "content": "You are the Lumen Lane support assistant."})
            for _turn in range(rng.randint(1, 4)):
                messages.append({"role": "user", "content": " ".join(rng.choices(WORDS, k=rng.randint(3, 40)))})
                answer = " ".join(rng.choices(WORDS, k=int(rng.lognormvariate(3.0, 0.8)) % 148 + 3))
                messages.append({"role": "assistant", "content": answer})
            f.write(json.dumps({"messages": messages}) + "\n")
    return path


def small_model(folder: Path) -> Path:
    """The demo SmolLM2's config cut to 2 layers of hidden 64, random weights, with its real tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(DEMO_MODEL)
    config.update(
        dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4)
        | dict(num_key_value_heads=2, head_dim=16)
    )
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (DEMO_MODEL / name).exists():
            shutil.copyfile(DEMO_MODEL / name, folder / name)
    return folder


def recipe_for(data: Path, model: Path) -> dict:
    return {
        "task": "sft",
        "model": str(model),
        "data": {"train": str(data), "max_length": 256},
        "training": {"max_steps": 1, "batch_size": 2, "logging_steps": 1},
    }


def launch_phases(ws: Path, recipe: Path) -> dict[str, float]:
    """`ftbench train --wait`, timed by phase from launch to the first train event."""
    start = time.time()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "ftbench.cli", "--workspace", str(ws), "train", str(recipe), "--wait", "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"training failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    [events] = sorted(ws.glob("runs/*/events.jsonl"), key=lambda p: p.stat().st_mtime)[-1:]
    marks: dict[str, float] = {}
    for line in events.read_text().splitlines():
        event = json.loads(line)
        if event.get("type") == "state":
            marks.setdefault(f"state:{event['state']}", event["t"])
        elif event.get("type") == "progress":
            marks.setdefault(f"{event['phase']}:{event.get('done')}", event["t"])
        elif event.get("type") == "train" and event.get("step", 0) >= 1:
            marks.setdefault("step", event["t"])
    loading, loaded, training = marks["loading model:0"], marks["loading model:1"], marks["training:0"]
    return {
        "spawn_s": marks["state:running"] - start,
        "startup_s": loading - marks["state:running"],
        "model_load_s": loaded - loading,
        "data_s": training - loaded,
        "first_step_s": marks["step"] - training,
        "total_s": marks["step"] - start,
        "from_cache": float("Tokenized examples read from the workspace cache" in events.read_text()),
    }


def data_path_seconds(data: Path, model: Path) -> dict[str, float]:
    """The tokenization phase alone: previous per-row path, new path cold, warm cache read."""
    from transformers import AutoTokenizer

    from ftbench.core.recipe import validate_recipe
    from ftbench.train.data import IGNORE, DataReport, load_rows, sft_segments
    from ftbench.train.sft_tokens import tokenize_sft
    from ftbench.train.token_cache import cached_tokenize, fingerprint

    recipe = validate_recipe(recipe_for(data, model))
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


def launches(datasets: dict[str, Path], model: Path, tmp: Path, rounds: int) -> dict[tuple[str, str], list[dict]]:
    """Every dataset cold then warm, `rounds` times over, interleaved; the phase timings of each launch."""
    timings: dict[tuple[str, str], list[dict]] = {}
    for r in range(rounds):
        for i, (name, data) in enumerate(datasets.items()):
            ws, recipe = tmp / f"ws-{i}", tmp / f"recipe-{i}.json"
            recipe.write_text(json.dumps(recipe_for(data, model)))  # JSON is YAML
            for side in ("cold", "warm"):
                if side == "cold":
                    shutil.rmtree(ws / ".cache" / "tokenized", ignore_errors=True)
                phases = launch_phases(ws, recipe)
                if phases["from_cache"] != (side == "warm"):
                    raise RuntimeError(f"{side} launch on {name} {'missed' if side == 'warm' else 'hit'} the cache")
                timings.setdefault((name, side), []).append(phases)
                cells = ", ".join(f"{k} {phases[k]:.1f}" for k in PHASES)
                print(f"round {r + 1} {name} {side}: {cells}", flush=True)
    return timings


def launch_table(timings: dict[tuple[str, str], list[dict]], names: list[str]) -> list[str]:
    lines = [
        "| data | launch | spawn (s) | start-up (s) | model load (s) | data (s) | first step (s) | launch->step 1 (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        med = {
            side: {k: statistics.median(t[k] for t in timings[(name, side)]) for k in PHASES}
            for side in ("cold", "warm")
        }
        for side in ("cold", "warm"):
            lines.append(f"| {name} | {side} | " + " | ".join(f"{med[side][k]:.2f}" for k in PHASES) + " |")
        ratio = {k: med["warm"][k] / med["cold"][k] for k in PHASES}
        lines.append(f"| {name} | **warm/cold** | " + " | ".join(f"{ratio[k]:.2f}" for k in PHASES) + " |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000, help="rows of the generated set (0: demo data only)")
    parser.add_argument("--rounds", type=int, default=3, help="cold+warm launches per dataset (median reported)")
    parser.add_argument("--model", choices=("small", "demo"), default="small", help="small: 2-layer SmolLM2 shape")
    parser.add_argument("--skip-runs", action="store_true", help="only the data-path phase (no training runs)")
    a = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ftbench-first-step-"))
    model = small_model(tmp / "small-smollm2") if a.model == "small" else DEMO_MODEL
    # a private copy: the demo workspace is shared, and a rebuild there (new mtime) would rightly miss the cache
    demo = tmp / "support-chat.jsonl"
    shutil.copyfile(DEMO / "datasets" / "demo" / "support-chat.jsonl", demo)
    datasets = {"demo support-chat": demo}
    if a.rows:
        datasets[f"generated {a.rows / 1000:g}k"] = generated_chats(tmp / "chats.jsonl", a.rows)
    print(f"model: {a.model} ({model.name}); load before: {os.getloadavg()[0]:.2f}", flush=True)
    lines = [
        "| data | rows | tokenize: previous per-row (s) | new cold (s) | warm cache read (s) | previous/warm |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, data in datasets.items():
        p = data_path_seconds(data, model)
        lines.append(
            f"| {name} | {p['rows']} | {p['previous_s']:.2f} | {p['cold_s']:.2f} | {p['warm_s']:.2f}"
            f" | {p['previous_s'] / p['warm_s']:.1f}x |"
        )
        print(lines[-1], flush=True)
    if not a.skip_runs:
        lines += ["", *launch_table(launches(datasets, model, tmp, a.rounds), list(datasets))]
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nmodel: {a.model}; rounds: {a.rounds}; load after: {os.getloadavg()[0]:.2f}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
