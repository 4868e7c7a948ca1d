"""One prepared GPU check: everything GPU-specific ftbench does, measured in one short run (< 8 min on one H100).

    python bench/gpu_check.py OUT_DIR [--workspace WS] [--quick]

Writes OUT_DIR/gpu_check.json and OUT_DIR/gpu_check.md with one section per check:

- nvml_vs_torch: NVML's memory readings against torch.cuda.mem_get_info, per device;
- lora_step / qlora_step: one bf16 LoRA and one QLoRA (nf4) optimizer step on the demo model (SmolLM2-135M)
  through ftbench's own loader (ftbench.train.model.load_model);
- estimate_vs_measured: ftbench.core.estimate against torch.cuda.max_memory_allocated for full / LoRA / QLoRA
  on the demo model and on a ~1.5 B model with random weights from Qwen2.5-1.5B's config (no download), at
  two sequence lengths;
- sft_tokens_per_s: real tokens/s of one LoRA SFT step loop with padded SDPA batches against padding-free
  packed rows (SDPA, and flash-attention varlen when flash_attn is installed);
- sft_vs_trl: bench/bench_sft_vs_trl.py on the GPU (bf16): TRL's SFTTrainer default and packed against ftbench's
  defaults (padding-free rows, with flash-attention varlen where installed), its padded batches and each GPU
  lever (Liger kernels, torch.compile): tokens/s, time to first step, peak VRAM, eval loss (skipped when trl is
  not installed);
- gpu_queue: two `ftbench train --gpus 0,` runs on one GPU: the second waits `queued`, then runs;
- ddp: a 2-process run on 2 GPUs (only with 2+ GPUs);
- llama_cpp_offload: GGUF generation with every layer on the GPU against none (only with a CUDA build).

It exits 2 at once when CUDA is missing (a GPU check that skips everything would prove nothing) and uses no
network: the demo workspace is built from PyPI-carried models if it is not there yet. A failing section is
recorded with its error and the run goes on; the exit code is 1 if any section failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MIB = 1024**2
GIB = 1024**3
# Qwen2.5-1.5B's config.json values (public model card); the weights are random, nothing is downloaded.
QWEN25_15B = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "hidden_size": 1536,
    "intermediate_size": 8960,
    "num_hidden_layers": 28,
    "num_attention_heads": 12,
    "num_key_value_heads": 2,
    "vocab_size": 151936,
    "max_position_embeddings": 32768,
    "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
    "hidden_act": "silu",
    "torch_dtype": "bfloat16",
    "bos_token_id": 151643,
    "eos_token_id": 151643,
}
SEQ_LENS = (512, 2048)
ESTIMATE_BATCH = 2
METHODS = ("full", "lora", "qlora")


# ---------------------------------------------------------------------------------------------------------
# pure parts (unit-tested without a GPU)
# ---------------------------------------------------------------------------------------------------------
def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else round(a / b, 3)


def nvml_torch_rows(nvml: list[dict[str, Any]], cuda: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per device: NVML used/total against torch's (total - free)/total, and the gap in MiB.

    Both see the same driver counters, so the gap should be a few MiB (allocations between the two reads)."""
    rows = []
    for n, t in zip(nvml, cuda, strict=False):
        torch_used = t["total"] - t["free"]
        rows.append(
            {
                "index": n["index"],
                "name": n.get("name"),
                "nvml_used_mib": _mib(n.get("mem_used")),
                "torch_used_mib": _mib(torch_used),
                "nvml_total_mib": _mib(n.get("mem_total")),
                "torch_total_mib": _mib(t["total"]),
                "used_gap_mib": None if n.get("mem_used") is None else round(abs(n["mem_used"] - torch_used) / MIB, 1),
                "total_gap_mib": None
                if n.get("mem_total") is None
                else round(abs(n["mem_total"] - t["total"]) / MIB, 1),
            }
        )
    return rows


def _mib(value: int | None) -> float | None:
    return None if value is None else round(value / MIB, 1)


def estimate_row(
    model: str,
    method: str,
    seq_len: int,
    batch: int,
    estimate: dict[str, Any],
    measured: int | None,
    reserved: int | None = None,
) -> dict[str, Any]:
    """One line of the estimate-vs-measured table; `over` > 1 means the estimate is on the safe side."""
    return {
        "model": model,
        "method": method,
        "seq_len": seq_len,
        "batch": batch,
        "estimate_gib": round(estimate["total"] / GIB, 2),
        "estimate_without_overhead_gib": round((estimate["total"] - estimate["overhead"]) / GIB, 2),
        "measured_gib": None if measured is None else round(measured / GIB, 2),
        "reserved_gib": None if reserved is None else round(reserved / GIB, 2),
        "over": ratio(estimate["total"], measured),
        "parts_gib": {
            k: round(estimate[k] / GIB, 3) for k in ("weights", "gradients", "optimizer", "activations", "overhead")
        },
    }


def markdown_table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    """A GitHub table of `rows` with (key, header) columns; None is shown as n/a."""
    head = "| " + " | ".join(h for _, h in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(_cell(r.get(k)) for k, _ in columns) + " |" for r in rows]
    return "\n".join([head, rule, *body])


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value).replace("|", "\\|")


ESTIMATE_COLUMNS = [
    ("model", "model"),
    ("method", "method"),
    ("seq_len", "seq"),
    ("batch", "batch"),
    ("estimate_gib", "estimate GiB"),
    ("measured_gib", "max allocated GiB"),
    ("reserved_gib", "max reserved GiB"),
    ("over", "estimate / measured"),
]
NVML_COLUMNS = [
    ("index", "GPU"),
    ("name", "name"),
    ("nvml_used_mib", "NVML used MiB"),
    ("torch_used_mib", "torch used MiB"),
    ("used_gap_mib", "gap MiB"),
    ("nvml_total_mib", "NVML total MiB"),
    ("torch_total_mib", "torch total MiB"),
]


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: the environment, then each section's status, table or numbers."""
    env = report.get("environment", {})
    lines = [
        f"# ftbench GPU check ({report.get('finished', '?')})",
        "",
        f"{env.get('gpus', '?')} · torch {env.get('torch', '?')} (CUDA {env.get('cuda', '?')}) · driver {env.get('driver', '?')} · "
        f"ftbench {env.get('ftbench', '?')} · {report.get('seconds', '?')} s in all",
        "",
    ]
    for name, section in report.get("sections", {}).items():
        status = section.get("status", "?")
        lines += [f"## {name}: {status} ({section.get('seconds', '?')} s)", ""]
        if status == "failed":
            lines += [f"**Error:** {section.get('error')}", "", "```", *section.get("traceback", [])[-8:], "```", ""]
            continue
        if status == "skipped":
            lines += [section.get("reason", ""), ""]
            continue
        data = section.get("data", {})
        if name == "nvml_vs_torch":
            lines += [markdown_table(data.get("rows", []), NVML_COLUMNS), ""]
        elif name == "estimate_vs_measured":
            lines += [markdown_table(data.get("rows", []), ESTIMATE_COLUMNS), ""]
        elif name == "sft_vs_trl":
            lines += [data.get("table", ""), ""]
        else:
            for key, value in data.items():
                lines.append(f"- {key}: {_cell(value)}")
            lines.append("")
    failed = [n for n, s in report.get("sections", {}).items() if s.get("status") == "failed"]
    lines.append(
        f"**{len(failed)} section(s) failed: {', '.join(failed)}**"
        if failed
        else "All sections passed or were skipped with a reason."
    )
    return "\n".join(lines) + "\n"


class Skip(Exception):
    """A section that does not apply on this machine (one GPU for DDP, a CPU build of llama.cpp)."""


def run_section(
    name: str, fn: Callable[[], dict[str, Any]], sections: dict[str, Any], log: Callable[[str], None] = print
) -> None:
    """Run one check, recording its data, or its skip reason, or its error and traceback, and its time."""
    log(f"== {name}")
    t0 = time.perf_counter()
    try:
        sections[name] = {"status": "ok", "data": fn()}
    except Skip as exc:
        sections[name] = {"status": "skipped", "reason": str(exc)}
    except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others' numbers
        sections[name] = {
            "status": "failed",
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc().splitlines(),
        }
    sections[name]["seconds"] = round(time.perf_counter() - t0, 1)
    log(f"   {sections[name]['status']} in {sections[name]['seconds']} s")


# ---------------------------------------------------------------------------------------------------------
# the checks (need CUDA)
# ---------------------------------------------------------------------------------------------------------
class Check:
    def __init__(self, out: Path, workspace: Path, quick: bool) -> None:
        self.out, self.quick = out, quick
        self.tmp = Path(tempfile.mkdtemp(prefix="ftbench-gpu-check-"))
        from ftbench.core.workspace import Workspace

        self.ws = Workspace.open(workspace)
        self.demo_model = self.ws.models_dir / "smollm2-135m-instruct"
        self.demo_gguf = self.ws.models_dir / "smollm2-135m-instruct-q4_1.gguf"
        self.data = self.tmp / "alpaca.jsonl"
        self.data.write_text(
            "".join(
                json.dumps({"instruction": f"Say the number {i} in words.", "output": f"The number is {i}."}) + "\n"
                for i in range(64)
            )
        )

    # -- helpers ------------------------------------------------------------------------------------------
    def ensure_demo(self) -> None:
        if not (self.demo_model / "config.json").is_file():
            from ftbench.demo.build import build_demo

            build_demo(self.ws.root)

    def recipe(self, model: Path, method: str, seq_len: int = 512, batch: int = ESTIMATE_BATCH, **training: Any) -> Any:
        from ftbench.core.recipe import validate_recipe

        return validate_recipe(
            {
                "task": "sft",
                "model": str(model),
                "data": {"train": str(self.data), "max_length": seq_len},
                "method": {"name": method},
                "training": {"batch_size": batch, **training},
            }
        )

    def random_15b(self) -> Path:
        """Qwen2.5-1.5B's shape with random bf16 weights, saved once (QLoRA quantizes at load, so it needs files)."""
        folder = self.tmp / "qwen2.5-1.5b-random"
        if (folder / "config.json").is_file():
            return folder
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        config = AutoConfig.for_model(
            **{k: v for k, v in QWEN25_15B.items() if k not in ("architectures", "torch_dtype")}
        )
        config.architectures = QWEN25_15B["architectures"]
        torch.manual_seed(0)
        with torch.device("cuda"):
            model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
        model.save_pretrained(folder)
        del model
        torch.cuda.empty_cache()
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):  # ids are random anyway
            if (self.demo_model / name).is_file():
                (folder / name).write_bytes((self.demo_model / name).read_bytes())
        return folder

    def train_step(self, model_path: Path, method: str, seq_len: int, batch: int) -> dict[str, Any]:
        """Load through ftbench's loader, run one forward/backward/AdamW step on random ids; peak memory and loss."""
        import gc

        import torch

        from ftbench.train.model import load_model

        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        recipe = self.recipe(model_path, method, seq_len, batch)
        loaded = load_model(recipe, "bf16")
        model = loaded.model
        if method != "qlora":
            model.to("cuda")
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=1e-4)
        vocab = model.config.vocab_size
        ids = torch.randint(0, vocab, (batch, seq_len), device="cuda")
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        out = {
            "loss": float(loss.item()),
            "step_s": round(seconds, 3),
            "max_allocated": torch.cuda.max_memory_allocated(),
            "max_reserved": torch.cuda.max_memory_reserved(),
            "trainable": sum(p.numel() for p in params),
            "params": loaded.info.get("total_params"),
        }
        del model, loaded, optimizer, params, loss
        gc.collect()
        torch.cuda.empty_cache()
        if not out["loss"] == out["loss"] or out["loss"] <= 0:  # NaN or impossible
            raise RuntimeError(f"{method} step on {model_path.name} gave loss {out['loss']}")
        return out

    # -- sections -----------------------------------------------------------------------------------------
    def nvml_vs_torch(self) -> dict[str, Any]:
        import torch

        from ftbench.core.gpu import reset_sampler, sample_gpus

        reset_sampler()
        report = sample_gpus()
        if not report.available:
            raise RuntimeError(f"NVML sees no GPU ({report.reason}) while torch sees {torch.cuda.device_count()}")
        cuda = []
        for i in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(i)
            cuda.append({"free": free, "total": total})
        rows = nvml_torch_rows([g.as_event() for g in report.gpus], cuda)
        return {"rows": rows, "nvml_devices": len(report.gpus), "torch_devices": torch.cuda.device_count()}

    def lora_step(self) -> dict[str, Any]:
        self.ensure_demo()
        return self.train_step(self.demo_model, "lora", 512, 4)

    def qlora_step(self) -> dict[str, Any]:
        self.ensure_demo()
        return self.train_step(self.demo_model, "qlora", 512, 4)

    def estimate_vs_measured(self) -> dict[str, Any]:
        from ftbench.catalog.models import inspect_model
        from ftbench.core.estimate import estimate_for_model

        self.ensure_demo()
        models = [("smollm2-135m (demo)", self.demo_model)]
        if not self.quick:
            models.append(("qwen2.5-1.5b (random)", self.random_15b()))
        rows = []
        for label, path in models:
            info = inspect_model(path)
            for method in METHODS:
                for seq_len in SEQ_LENS:
                    est = estimate_for_model(info, method, seq_len, ESTIMATE_BATCH).to_dict()
                    measured = self.train_step(path, method, seq_len, ESTIMATE_BATCH)
                    rows.append(
                        estimate_row(
                            label,
                            method,
                            seq_len,
                            ESTIMATE_BATCH,
                            est,
                            measured["max_allocated"],
                            measured["max_reserved"],
                        )
                    )
        under = [r for r in rows if r["over"] is not None and r["over"] < 1.0]
        return {"rows": rows, "underestimates": len(under)}

    def sft_vs_trl(self) -> dict[str, Any]:
        """The TRL bench on this GPU, every side in its own process (bench/bench_sft_vs_trl.py)."""
        import importlib.util

        if importlib.util.find_spec("trl") is None:
            raise Skip("trl is not installed (pip install trl)")
        self.ensure_demo()
        sides = ["trl-default", "trl-packing", "ftbench", "ftbench-padded", "ftbench-compile"]
        if importlib.util.find_spec("liger_kernel") is not None:
            sides.append("ftbench-liger")
        out = self.tmp / "sft_vs_trl.json"
        cmd = [sys.executable, str(REPO / "bench" / "bench_sft_vs_trl.py"), "--workspace", str(self.ws.root)]
        cmd += ["--rows", "64" if self.quick else "200", "--max-length", "1024", "--sides", ",".join(sides)]
        done = subprocess.run([*cmd, "--json-out", str(out)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-2000:])
        report = json.loads(out.read_text())
        report["liger"] = "measured" if "ftbench-liger" in sides else "liger-kernel not installed"
        return report

    def sft_tokens_per_s(self) -> dict[str, Any]:
        """LoRA SFT steps over the same variable-length sequences: padded batches vs packed padding-free rows."""
        import importlib.util
        import random

        import torch

        from ftbench.train.model import load_model

        self.ensure_demo()
        rng = random.Random(0)
        lengths = [rng.randint(64, 1024) for _ in range(96)]
        results: dict[str, Any] = {"sequences": len(lengths), "real_tokens": sum(lengths)}
        modes = [("sdpa_padded", "sdpa", False), ("sdpa_packed", "sdpa", True)]
        if importlib.util.find_spec("flash_attn") is not None:
            modes.append(("flash_attention_2_packed", "flash_attention_2", True))
        else:
            results["flash_attention_2_packed"] = "flash_attn not installed"
        for name, attn, packed in modes:
            recipe = self.recipe(self.demo_model, "lora", 4096, 8)
            recipe = recipe.model_copy(update={"model": recipe.model.model_copy(update={"attn_implementation": attn})})
            model = load_model(recipe, "bf16").model.to("cuda")
            model.train()
            optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
            vocab = model.config.vocab_size
            batches = _packed_batches(lengths, 4096, vocab) if packed else _padded_batches(lengths, 8, vocab)
            for i, batch in enumerate(batches):
                if i == 1:  # the first step warms up kernels and the allocator
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    tokens = 0
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    loss = model(**{k: v.to("cuda") for k, v in batch.items()}).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                if i >= 1:
                    tokens += int((batch["labels"] != -100).sum())
            torch.cuda.synchronize()
            results[name] = round(tokens / (time.perf_counter() - t0))
            del model, optimizer
            torch.cuda.empty_cache()
        results["packed_over_padded"] = ratio(results["sdpa_packed"], results["sdpa_padded"])
        return results

    def gpu_queue(self) -> dict[str, Any]:
        """Two real runs pinned to GPU 0 (`--gpus 0,`): the second must wait `queued` with a reason, then succeed after the first."""
        from ftbench.core.jobs import find_job, read_status, wait_job

        self.ensure_demo()
        ws_root = self.tmp / "queue-ws"
        recipe = self.tmp / "queue.yaml"
        recipe.write_text(
            json.dumps(
                {
                    "task": "sft",
                    "model": str(self.demo_model),
                    "data": {"train": str(self.data), "max_length": 256},
                    "training": {"max_steps": 30, "batch_size": 4, "logging_steps": 5},
                }
            )
        )
        ids = []
        for _ in range(2):
            out = _ftbench(ws_root, "train", str(recipe), "--gpus", "0,")
            ids.append(out.splitlines()[0])
        from ftbench.core.workspace import Workspace

        ws = Workspace.open(ws_root)
        second = find_job(ws, ids[1])
        reason, deadline = None, time.monotonic() + 120
        while time.monotonic() < deadline and reason is None:
            status = read_status(second.dir)
            if status.get("state") == "queued" and (status.get("queue") or {}).get("reason"):
                reason = status["queue"]["reason"]
            elif status.get("state") not in ("starting", "queued"):
                break
            time.sleep(0.2)
        first = wait_job(find_job(ws, ids[0]), timeout_s=300)
        second = wait_job(find_job(ws, ids[1]), timeout_s=300)
        ok = first.state == second.state == "succeeded" and reason is not None
        overlap = (second.status.get("started_at") or 0) < (first.status.get("ended_at") or 0)
        data = {
            "first": first.state,
            "second": second.state,
            "second_waited_with": reason,
            "gpus": [first.status.get("gpus"), second.status.get("gpus")],
            "second_started_after_first_ended": not overlap,
        }
        if not ok or overlap:
            raise RuntimeError(f"queue misbehaved: {data}")
        return data

    def ddp(self) -> dict[str, Any]:
        import torch

        if torch.cuda.device_count() < 2:
            raise Skip(f"needs 2 GPUs, this machine has {torch.cuda.device_count()}")
        self.ensure_demo()
        recipe = self.tmp / "ddp.yaml"
        recipe.write_text(
            json.dumps(
                {
                    "task": "sft",
                    "model": str(self.demo_model),
                    "data": {"train": str(self.data), "max_length": 256},
                    "training": {"max_steps": 10, "batch_size": 4, "logging_steps": 1, "devices": 2},
                }
            )
        )
        ws_root = self.tmp / "ddp-ws"
        job_id = _ftbench(ws_root, "train", str(recipe), "--gpus", "2", "--wait").splitlines()[0]
        from ftbench.core.jobs import find_job
        from ftbench.core.workspace import Workspace

        job = find_job(Workspace.open(ws_root), job_id)
        result = job.status.get("result") or {}
        if job.state != "succeeded" or result.get("processes") != 2:
            raise RuntimeError(f"DDP run ended {job.state} with result {result}")
        return {
            "state": job.state,
            "processes": result.get("processes"),
            "train_loss": result.get("train_loss"),
            "gpus": job.status.get("gpus"),
        }

    def llama_cpp_offload(self) -> dict[str, Any]:
        import llama_cpp

        if not llama_cpp.llama_supports_gpu_offload():
            raise Skip("llama-cpp-python is a CPU build (rebuild with CMAKE_ARGS=-DGGML_CUDA=on)")
        self.ensure_demo()
        out: dict[str, Any] = {}
        for label, layers in (("gpu_all_layers", -1), ("cpu_only", 0)):
            llm = llama_cpp.Llama(model_path=str(self.demo_gguf), n_gpu_layers=layers, n_ctx=512, verbose=False, seed=0)
            llm("Hello", max_tokens=4)  # warm-up
            t0 = time.perf_counter()
            reply = llm("Write a short poem about GPUs.", max_tokens=128, temperature=0.0)
            seconds = time.perf_counter() - t0
            out[f"{label}_tokens_per_s"] = round(reply["usage"]["completion_tokens"] / seconds, 1)
            del llm
        out["gpu_over_cpu"] = ratio(out["gpu_all_layers_tokens_per_s"], out["cpu_only_tokens_per_s"])
        return out


def _padded_batches(lengths: list[int], batch: int, vocab: int) -> list[dict[str, Any]]:
    import torch

    g = torch.Generator().manual_seed(0)
    out = []
    for i in range(0, len(lengths), batch):
        chunk = lengths[i : i + batch]
        width = max(chunk)
        ids = torch.randint(0, vocab, (len(chunk), width), generator=g)
        mask = torch.zeros_like(ids)
        for row, n in enumerate(chunk):
            mask[row, :n] = 1
        labels = ids.masked_fill(mask == 0, -100)
        out.append({"input_ids": ids, "attention_mask": mask, "labels": labels})
    return out


def _packed_batches(lengths: list[int], row_len: int, vocab: int) -> list[dict[str, Any]]:
    """First-fit rows of <= row_len tokens, one row per batch, position ids restarting per sequence (no mask)."""
    import torch

    g = torch.Generator().manual_seed(0)
    rows: list[list[int]] = []
    for n in sorted(lengths, reverse=True):
        for row in rows:
            if sum(row) + n <= row_len:
                row.append(n)
                break
        else:
            rows.append([n])
    out = []
    for row in rows:
        ids = torch.randint(0, vocab, (1, sum(row)), generator=g)
        positions = torch.cat([torch.arange(n) for n in row]).unsqueeze(0)
        labels = ids.clone()
        start = 0
        for n in row:  # the first token of each sequence predicts nothing from the previous one
            labels[0, start] = -100
            start += n
        out.append({"input_ids": ids, "position_ids": positions, "labels": labels})
    return out


def _ftbench(ws_root: Path, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "ftbench.cli", "-w", str(ws_root), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))},
    )
    if out.returncode != 0:
        raise RuntimeError(f"ftbench {' '.join(args)} exited {out.returncode}: {out.stderr.strip()[-500:]}")
    return out.stdout


def environment() -> dict[str, Any]:
    import torch

    import ftbench
    from ftbench.core.gpu import sample_gpus

    report = sample_gpus()
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {
        "gpus": ", ".join(names),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "driver": report.driver,
        "ftbench": ftbench.__version__,
        "python": platform.python_version(),
        "host": platform.node(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder for gpu_check.json and gpu_check.md")
    parser.add_argument(
        "--workspace",
        type=Path,
        default=REPO / ".ftbench-test-cache" / "demo",
        help="workspace holding (or to build) the demo models",
    )
    parser.add_argument("--quick", action="store_true", help="skip the 1.5 B model (about half the time)")
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        reason = "torch is a CPU build" if torch.version.cuda is None else "no CUDA device is visible"
        print(
            f"error: bench/gpu_check.py needs a CUDA GPU and {reason}.\nhint: run it on the GPU box, with a CUDA build of torch.",
            file=sys.stderr,
        )
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    check = Check(args.out, args.workspace, args.quick)
    report: dict[str, Any] = {"environment": environment(), "sections": {}}
    for name in (
        "nvml_vs_torch",
        "lora_step",
        "qlora_step",
        "estimate_vs_measured",
        "sft_tokens_per_s",
        "sft_vs_trl",
        "gpu_queue",
        "ddp",
        "llama_cpp_offload",
    ):
        run_section(name, getattr(check, name), report["sections"])
        _write(args.out, report, t0)  # a partial report survives a crash or a timeout
    _write(args.out, report, t0)
    print(f"wrote {args.out / 'gpu_check.json'} and {args.out / 'gpu_check.md'}")
    return 1 if any(s["status"] == "failed" for s in report["sections"].values()) else 0


def _write(out: Path, report: dict[str, Any], t0: float) -> None:
    from ftbench.core.atomic import atomic_write_json, atomic_write_text

    report["seconds"] = round(time.perf_counter() - t0, 1)
    report["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    atomic_write_json(out / "gpu_check.json", report)
    atomic_write_text(out / "gpu_check.md", render_markdown(report))


if __name__ == "__main__":
    sys.exit(main())
