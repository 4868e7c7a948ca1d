"""`ftbench eval` against the tutorials' evaluation loop: examples/s on a base model + 2 adapters, same answers.

    python bench/bench_eval.py [--model HF_FOLDER] [--prompts 64] [--max-tokens 16] [--batch-size 64]
                               [--threads 2] [--rounds 3]

Peer (the loop of the Hugging Face / PEFT tutorials): for each variant, load the base, wrap it with
PeftModel.from_pretrained for an adapter, then one `model.generate` per prompt. ftbench: one `ftbench eval
MODEL --adapter A --adapter B --data prompts.jsonl --wait` (a real job process, model loading included, the
reference perplexity pass off since the peer does not compute it). Both sides are fresh processes timed from
start to exit (interpreter, imports and model loading included on both), with the same torch thread count
(OMP_NUM_THREADS), greedy, the same chat template and token budget. They run interleaved in rounds (the order
alternating) so a shared machine's load falls on both; the bench prints each round, the median ratio, examples/s
at the median times, how many answers are identical, and the load average before and after.
Without --model it uses the demo's SmolLM2-135M-Instruct (demo workspace) and its sentiment eval prompts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO_ROOTS = (os.environ.get("FTBENCH_HOME"), str(REPO / ".ftbench-test-cache" / "demo"))


def demo_root() -> Path | None:
    for root in DEMO_ROOTS:
        if root and (Path(root) / "models/smollm2-135m-instruct/config.json").is_file():
            return Path(root)
    return None


def make_adapters(model_path: Path, out: Path, n: int = 2, rank: int = 8) -> list[Path]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    paths = []
    for i in range(n):
        torch.manual_seed(100 + i)
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
        cfg = LoraConfig(
            r=rank,
            lora_alpha=rank,
            target_modules=["q_proj", "v_proj"],
            task_type="CAUSAL_LM",
            init_lora_weights="gaussian",
        )
        peft_model = get_peft_model(model, cfg)
        with torch.no_grad():  # a visible but mild change, so the adapters answer differently from the base
            for name, p in peft_model.named_parameters():
                if "lora_B" in name:
                    p.normal_(0.0, 0.02)
        path = out / f"adapter{i}"
        peft_model.save_pretrained(path)
        paths.append(path)
    return paths


def prompts_file(root: Path | None, out: Path, n: int) -> Path:
    rows = []
    if root is not None:
        for line in (root / "datasets/demo/sentiment-alpaca-eval.jsonl").read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            rows.append({"prompt": f"{r['instruction']}\n\n{r['input']}", "reference": r["output"]})
    while len(rows) < n:
        rows.append(
            {
                "prompt": f"Write one short sentence about the number {len(rows)}.",
                "reference": f"{len(rows)} is a number.",
            }
        )
    path = out / "prompts.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[:n]), encoding="utf-8")
    return path


def tutorial_loop(model_path: Path, adapters: list[Path], prompts: list[str], max_tokens: int) -> list[list[str]]:
    """One variant at a time, loaded from scratch; one generate call per prompt."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    answers = []
    for adapter in [None, *adapters]:
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
        if adapter is not None:
            model = PeftModel.from_pretrained(model, str(adapter))
        model.eval()
        out = []
        for prompt in prompts:
            text = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
            ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
            with torch.no_grad():
                gen = model.generate(
                    **ids, max_new_tokens=max_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
                )
            out.append(tokenizer.decode(gen[0, ids["input_ids"].shape[1] :], skip_special_tokens=True).strip())
        answers.append(out)
        del model
    return answers


def side_env(threads: int) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def ftbench_eval(
    model_path: Path, adapters: list[Path], data: Path, ws: Path, max_tokens: int, batch: int, threads: int
) -> tuple[list[list[str]], float]:
    cmd = [
        sys.executable,
        "-m",
        "ftbench.cli",
        "eval",
        str(model_path),
        *sum((["--adapter", str(a)] for a in adapters), []),
        "--data",
        str(data),
        "--max-tokens",
        str(max_tokens),
        "--batch-size",
        str(batch),
        "--no-perplexity",
        "--workspace",
        str(ws),
        "--wait",
        "--json",
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=side_env(threads))
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"ftbench eval failed:\n{proc.stderr}")
    summary = json.loads(proc.stdout)
    job_dir = next(p for p in (ws / "jobs").iterdir() if p.name == summary["id"])
    rows = [json.loads(line) for line in (job_dir / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    names = [v["name"] for v in summary["variants"]]
    return [[r["answers"][name]["prediction"] for r in rows] for name in names], wall


def loop_side(model: Path, adapters: list[Path], data: Path, out: Path, max_tokens: int, threads: int) -> float:
    """The tutorial loop in a fresh process (this script with --loop-side), timed like ftbench's from start to exit."""
    cmd = [sys.executable, __file__, "--loop-side", str(out), "--model", str(model), "--data", str(data)]
    cmd += ["--max-tokens", str(max_tokens), *sum((["--adapter", str(a)] for a in adapters), [])]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=side_env(threads))
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"the tutorial loop failed:\n{proc.stderr}")
    return wall


def measure_rounds(
    model: Path, adapters: list[Path], data: Path, scratch: Path, args: argparse.Namespace
) -> tuple[list[tuple[float, float]], list[list[list[str]]], list[list[str]]]:
    """Both sides `rounds` times, interleaved (ftbench first in even rounds, the loop first in odd ones), so load
    from other processes on a shared machine falls on both; returns (ftbench s, loop s) per round, ftbench's answers
    of every round and the loop's."""
    times: list[tuple[float, float]] = []
    ours: list[list[list[str]]] = []
    answers = scratch / "loop-answers.json"
    for r in range(args.rounds):
        for side in ("ftbench", "loop") if r % 2 == 0 else ("loop", "ftbench"):
            if side == "ftbench":
                got, ours_s = ftbench_eval(
                    model, adapters, data, scratch / f"ws{r}", args.max_tokens, args.batch_size, args.threads
                )
                ours.append(got)
            else:
                peer_s = loop_side(model, adapters, data, answers, args.max_tokens, args.threads)
        times.append((ours_s, peer_s))
        print(
            f"  round {r + 1}: ftbench {ours_s:.1f} s, loop {peer_s:.1f} s, ratio {peer_s / ours_s:.2f}x "
            f"(load {os.getloadavg()[0]:.2f})",
            file=sys.stderr,
            flush=True,
        )
    return times, ours, json.loads(answers.read_text(encoding="utf-8"))


def run_loop_side(args: argparse.Namespace) -> int:
    prompts = [json.loads(line)["prompt"] for line in Path(args.data).read_text(encoding="utf-8").splitlines()]
    answers = tutorial_loop(Path(args.model), [Path(a) for a in args.adapter], prompts, args.max_tokens)
    Path(args.loop_side).write_text(json.dumps(answers, ensure_ascii=False), encoding="utf-8")
    return 0


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=64, help="ftbench eval --batch-size (default 64)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads of each side (default 2: the 2-core target)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of both sides; the median counts")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--loop-side", default=None, help=argparse.SUPPRESS)  # internal: run the peer, write answers
    ap.add_argument("--data", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--adapter", action="append", default=[], help=argparse.SUPPRESS)
    return ap.parse_args()


def summarize(
    args: argparse.Namespace, model: Path, times: list[tuple[float, float]], ours: list, peer: list, load: tuple
) -> dict:
    n = args.prompts * len(peer)
    ours_s = statistics.median(t[0] for t in times)
    peer_s = statistics.median(t[1] for t in times)
    # ftbench (like chat) drops the replacement character a token budget ending inside a multi-byte character
    # leaves (a Korean prompt's answer does at 16 tokens); the loop's decode keeps it, so it is not compared
    same = min(
        sum(
            a == b.rstrip("\ufffd").strip()
            for mine, theirs in zip(got, peer, strict=True)
            for a, b in zip(mine, theirs, strict=True)
        )
        for got in ours
    )
    return {
        "model": model.name,
        "variants": len(peer),
        "prompts": args.prompts,
        "max_tokens": args.max_tokens,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "rounds": [
            {"ftbench_eval_s": round(a, 2), "tutorial_loop_s": round(b, 2), "ratio": round(b / a, 2)} for a, b in times
        ],
        "ftbench_examples_per_s": round(n / ours_s, 3),
        "tutorial_examples_per_s": round(n / peer_s, 3),
        "median_ratio": round(statistics.median(b / a for a, b in times), 2),
        "identical_answers": same,
        "answers": n,
        "load_average_before_after": [round(load[0], 2), round(os.getloadavg()[0], 2)],
    }


def main() -> int:
    args = parse_args()
    if args.loop_side:
        return run_loop_side(args)
    root = demo_root()
    model = Path(args.model).resolve() if args.model else (root / "models/smollm2-135m-instruct" if root else None)
    if model is None:
        raise SystemExit("No demo workspace found: build it with `ftbench demo` or pass --model HF_FOLDER.")
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        adapters = make_adapters(model, scratch)
        data = prompts_file(root, scratch, args.prompts)
        times, ours, peer = measure_rounds(model, adapters, data, scratch, args)
    result = summarize(args, model, times, ours, peer, load)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['variants']} variants x {args.prompts} prompts, {args.max_tokens} new tokens, greedy, {model.name}")
    print(
        f"  ftbench eval (batch {args.batch_size}, shared base, prompt prefix once, chunked prefill): "
        f"{result['ftbench_examples_per_s']:.2f} examples/s (median round)"
    )
    print(f"  tutorial loop (1 generate/prompt, 1 model/variant): {result['tutorial_examples_per_s']:.2f} examples/s")
    print(
        f"  median ratio {result['median_ratio']:.2f}x over {len(times)} interleaved round(s), {args.threads} "
        f"thread(s) a side; identical answers {result['identical_answers']}/{result['answers']} (worst round); "
        f"load average {result['load_average_before_after'][0]} before, {result['load_average_before_after'][1]} after"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
