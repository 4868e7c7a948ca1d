"""Benchmark GGUF export on the demo SmolLM2-135M-Instruct: time, params/s and peak RSS for F16 and Q4_K_M.

Each phase runs in its own child process so its peak RSS is its own (ru_maxrss of the child), and the
baseline RSS of a child that only imports the exporter is measured the same way. Streaming is judged by
(peak RSS - baseline) against the model's largest tensor and against the whole checkpoint.

    python bench/bench_export.py [--model DIR] [--workspace DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
phase, src, dst, pre = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] or None
from ftbench.export.gguf.writer import convert
from ftbench.export.quantize import quantize_with_llama_cpp
t0, c0 = time.perf_counter(), time.process_time()
if phase == "baseline":
    import gguf, numpy  # noqa: F401
elif phase == "f16":
    convert(src, dst, "f16", pre=pre)
elif phase == "q4_k_m":
    quantize_with_llama_cpp(src, dst, "q4_k_m")
print(json.dumps({"seconds": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_child(phase: str, src: str, dst: str, pre: str = "") -> dict:
    """Run one phase in a fresh process; returns its wall time, CPU time and its own peak RSS (MB).

    The child's RUSAGE_SELF is used, so helper processes it starts (the tokenizer probe) do not count.
    """
    proc = subprocess.run([sys.executable, "-c", CHILD, phase, src, dst, pre], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{phase} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def find_demo_model(workspace: str | None) -> Path:
    candidates = []
    if workspace:
        candidates.append(Path(workspace) / "models" / "smollm2-135m-instruct")
    repo = Path(__file__).resolve().parents[1]
    candidates.append(repo / ".ftbench-test-cache" / "demo" / "models" / "smollm2-135m-instruct")
    for c in candidates:
        if (c / "config.json").is_file():
            return c
    raise SystemExit("No demo SmolLM2 folder found; build the demo (ftbench demo) or pass --model DIR.")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--workspace", default=None)
    args = ap.parse_args()
    model = Path(args.model) if args.model else find_demo_model(args.workspace)

    from ftbench.export.gguf.hf import load_hf_model

    hf = load_hf_model(model)
    params = hf.n_params()
    largest = max(t.nbytes for t in hf.tensors.values())
    with tempfile.TemporaryDirectory() as tmp:
        f16 = os.path.join(tmp, "m-F16.gguf")
        q4 = os.path.join(tmp, "m-Q4_K_M.gguf")
        from ftbench.export.gguf.tokenizer import pre_tokenizer_name

        t = time.perf_counter()
        pre = pre_tokenizer_name(model) or ""  # the export job does this once, with transformers loaded
        probe_s = time.perf_counter() - t
        base = run_child("baseline", str(model), "")
        t = time.perf_counter()
        conv = run_child("f16", str(model), f16, pre)
        quant = run_child("q4_k_m", f16, q4)
        total = time.perf_counter() - t
        sizes = {"f16_mb": os.path.getsize(f16) / 1e6, "q4_k_m_mb": os.path.getsize(q4) / 1e6}
    print(f"model: {model} ({params / 1e6:.1f} M params, checkpoint {hf.nbytes() / 1e6:.0f} MB, largest tensor {largest / 1e6:.1f} MB)")
    print(f"pre-tokenizer probe (transformers, separate process): {pre or 'n/a'} in {probe_s:.2f} s")
    print(f"baseline child (python + gguf + numpy): peak RSS {base['peak_rss_mb']:.0f} MB")
    print(f"F16    : {conv['seconds']:.2f} s wall ({conv['cpu_s']:.2f} s CPU), {params / conv['seconds'] / 1e6:.0f} M params/s, "
          f"peak RSS {conv['peak_rss_mb']:.0f} MB, file {sizes['f16_mb']:.0f} MB")
    print(f"Q4_K_M : {quant['seconds']:.2f} s wall ({quant['cpu_s']:.2f} s CPU) from F16, {params / quant['seconds'] / 1e6:.0f} M params/s, "
          f"peak RSS {quant['peak_rss_mb']:.0f} MB, file {sizes['q4_k_m_mb']:.0f} MB")
    extra = conv["peak_rss_mb"] - base["peak_rss_mb"]
    print(f"streaming: F16 peak RSS above baseline = {extra:.0f} MB = {extra * 1e6 / largest:.1f}x the largest tensor, "
          f"{extra * 1e6 / hf.nbytes():.2f}x the checkpoint")
    print(f"total F16 + Q4_K_M: {total:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
