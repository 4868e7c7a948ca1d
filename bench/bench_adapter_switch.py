"""Adapter switching in chat: switch time (budget < 50 ms) and memory growth per adapter (budget ~ adapter size).

    python bench/bench_adapter_switch.py [--model HF_FOLDER] [--adapters 3] [--rank 16] [--device auto] [--json]

Loads the base once through the chat server's HF backend, adds N random LoRA adapters (q/k/v/o, made here
with peft), then measures: the time to switch the active variant (set_adapter between adapters, and
disable_adapter for the base), the growth of parameter bytes and of process RSS per adapter against the
adapter's file size, and a reload of the base for comparison. Without --model it uses the demo's
SmolLM2-135M-Instruct when a demo workspace is found, else a small random llama built in a temp folder.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO_MODEL = "models/smollm2-135m-instruct"


def find_model(explicit: str | None, scratch: Path) -> Path:
    if explicit:
        return Path(explicit).resolve()
    for root in (os.environ.get("FTBENCH_HOME"), str(REPO / ".ftbench-test-cache" / "demo")):
        if root and (Path(root) / DEMO_MODEL / "config.json").is_file():
            return Path(root) / DEMO_MODEL
    sys.path.insert(0, str(REPO / "tests"))
    from tinymodels import make_tiny_causal_lm

    return make_tiny_causal_lm(
        scratch / "llama",
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=8,
        num_attention_heads=8,
        num_key_value_heads=4,
    )


def make_adapters(model_path: Path, out: Path, n: int, rank: int) -> list[Path]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    paths = []
    for i in range(n):
        torch.manual_seed(i)
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
        cfg = LoraConfig(
            r=rank,
            lora_alpha=2 * rank,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
            task_type="CAUSAL_LM",
            init_lora_weights=False,
        )
        path = out / f"adapter{i}"
        get_peft_model(model, cfg).save_pretrained(path)
        paths.append(path)
        del model
    return paths


def rss_bytes() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="HF model folder (default: demo SmolLM2, else a random llama)")
    parser.add_argument("--adapters", type=int, default=3)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--switches", type=int, default=200)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import gc

    import torch

    from ftbench.chat.hf import HFBackend
    from ftbench.chat.protocol import VariantSpec

    with tempfile.TemporaryDirectory(prefix="ftbench-bench-") as tmp:
        scratch = Path(tmp)
        model_path = find_model(args.model, scratch)
        adapters = make_adapters(model_path, scratch, args.adapters, args.rank)
        gc.collect()

        backend = HFBackend(device=args.device)
        rss0 = rss_bytes()
        base_info = backend.load(VariantSpec(name="base", kind="hf", path=str(model_path)))
        rss_base = rss_bytes()
        rows = []
        for i, path in enumerate(adapters):
            before = rss_bytes()
            info = backend.load(VariantSpec(name=f"a{i}", kind="adapter", path=str(path), base=str(model_path)))
            gc.collect()
            rows.append(
                {
                    "adapter": f"a{i}",
                    "file_bytes": (path / "adapter_model.safetensors").stat().st_size,
                    "param_growth_bytes": info["adapter_param_bytes"],
                    "rss_growth_bytes": rss_bytes() - before,
                    "load_s": info["adapter_load_s"],
                }
            )
        names = ["base", *[r["adapter"] for r in rows]]
        times = []
        sync = (
            torch.cuda.synchronize
            if backend.bases[str(model_path.resolve())].device.startswith("cuda")
            else (lambda: None)
        )
        for k in range(args.switches):
            name = names[k % len(names)]
            t0 = time.perf_counter()
            with backend.switch(name):
                sync()
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        # For scale: what a switch would cost if each variant were loaded from disk instead.
        reload = HFBackend(device=args.device)
        t0 = time.perf_counter()
        reload.load(VariantSpec(name="again", kind="hf", path=str(model_path)))
        reload_s = time.perf_counter() - t0

    median = statistics.median(times)
    p95 = times[int(0.95 * (len(times) - 1))]
    param_ratio = statistics.mean(r["param_growth_bytes"] / r["file_bytes"] for r in rows)
    result = {
        "model": str(model_path),
        "device": backend.bases and next(iter(backend.bases.values())).device,
        "base_param_bytes": base_info["param_bytes"] - sum(r["param_growth_bytes"] for r in rows),
        "base_rss_growth_bytes": rss_base - rss0,
        "adapters": rows,
        "switch_ms_median": round(median, 3),
        "switch_ms_p95": round(p95, 3),
        "switch_budget_ms": 50.0,
        "switch_ok": p95 < 50.0,
        "reload_base_s": round(reload_s, 3),
        "switch_vs_reload": round(median / 1000 / reload_s, 5),
        "param_growth_over_file_size": round(param_ratio, 3),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0 if result["switch_ok"] else 1
    mb = 1 / 2**20
    print(f"model            {result['model']} on {result['device']}")
    print(
        f"base             {result['base_param_bytes'] * mb:.1f} MiB parameters, RSS +{result['base_rss_growth_bytes'] * mb:.1f} MiB"
    )
    for r in rows:
        print(
            f"adapter {r['adapter']:<8} file {r['file_bytes'] * mb:.2f} MiB, parameters +{r['param_growth_bytes'] * mb:.2f} MiB "
            f"(ratio {r['param_growth_bytes'] / r['file_bytes']:.3f}), RSS +{r['rss_growth_bytes'] * mb:.2f} MiB, load {r['load_s'] * 1000:.0f} ms"
        )
    print(
        f"switch           median {median:.3f} ms, p95 {p95:.3f} ms over {len(times)} switches (budget < 50 ms): {'OK' if result['switch_ok'] else 'OVER'}"
    )
    print(f"reload instead   {reload_s:.2f} s -> a switch costs {result['switch_vs_reload']:.5f}x a reload")
    print(f"memory per adapter / adapter file size = {param_ratio:.3f} (budget ~1: adapters share one base)")
    return 0 if result["switch_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
