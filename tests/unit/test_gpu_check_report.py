"""bench/gpu_check.py's pure parts: the NVML/torch rows, the estimate-vs-measured table, the Markdown report,
section bookkeeping, the packed/padded batches, and the loud refusal without CUDA."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("gpu_check", REPO / "bench" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpu_check)
GIB, MIB = gpu_check.GIB, gpu_check.MIB


def test_nvml_torch_rows_show_the_gap():
    nvml = [{"index": 0, "name": "H100", "mem_used": 1000 * MIB, "mem_total": 81559 * MIB}]
    cuda = [{"free": 80555 * MIB, "total": 81559 * MIB}]
    (row,) = gpu_check.nvml_torch_rows(nvml, cuda)
    assert row["torch_used_mib"] == 1004.0 and row["nvml_used_mib"] == 1000.0
    assert row["used_gap_mib"] == 4.0 and row["total_gap_mib"] == 0.0
    (unknown,) = gpu_check.nvml_torch_rows([{"index": 1, "mem_used": None, "mem_total": None}], cuda)
    assert unknown["used_gap_mib"] is None and unknown["nvml_total_mib"] is None


def test_estimate_row_ratio_and_parts():
    est = {
        "total": 12 * GIB,
        "weights": 3 * GIB,
        "gradients": 3 * GIB,
        "optimizer": 4 * GIB,
        "activations": GIB,
        "overhead": GIB,
    }
    row = gpu_check.estimate_row("m", "full", 512, 2, est, 10 * GIB, 11 * GIB)
    assert row["estimate_gib"] == 12.0 and row["measured_gib"] == 10.0 and row["over"] == 1.2
    assert row["estimate_without_overhead_gib"] == 11.0 and row["parts_gib"]["optimizer"] == 4.0
    assert gpu_check.estimate_row("m", "lora", 512, 2, est, None)["over"] is None


def test_markdown_report_has_tables_errors_and_skips():
    est = {
        "total": 2 * GIB,
        "weights": GIB,
        "gradients": 0,
        "optimizer": 0,
        "activations": GIB // 2,
        "overhead": GIB // 2,
    }
    report = {
        "finished": "2026-11-30 04:00:00 UTC",
        "seconds": 300.0,
        "environment": {"gpus": "NVIDIA H200", "torch": "2.13.0", "cuda": "12.8", "driver": "570.1", "ftbench": "0.1"},
        "sections": {
            "estimate_vs_measured": {
                "status": "ok",
                "seconds": 90.0,
                "data": {"rows": [gpu_check.estimate_row("demo", "lora", 512, 2, est, GIB)]},
            },
            "sft_tokens_per_s": {
                "status": "ok",
                "seconds": 30.0,
                "data": {"sdpa_padded": 10000, "sdpa_packed": 25000, "packed_over_padded": 2.5},
            },
            "ddp": {"status": "skipped", "seconds": 0.0, "reason": "needs 2 GPUs, this machine has 1"},
            "qlora_step": {
                "status": "failed",
                "seconds": 2.0,
                "error": "RuntimeError: boom",
                "traceback": ["Traceback", "RuntimeError: boom"],
            },
        },
    }
    md = gpu_check.render_markdown(report)
    assert "| demo | lora | 512 | 2 | 2 | 1 | n/a | 2 |" in md
    assert "- packed_over_padded: 2.5" in md and "- sdpa_packed: 25000" in md
    assert "## ddp: skipped (0.0 s)\n\nneeds 2 GPUs, this machine has 1" in md
    assert "**Error:** RuntimeError: boom" in md and md.rstrip().endswith("**1 section(s) failed: qlora_step**")


def test_run_section_records_ok_skip_and_failure():
    sections: dict = {}
    gpu_check.run_section("a", lambda: {"x": 1}, sections, log=lambda _: None)

    def skip():
        raise gpu_check.Skip("not here")

    def fail():
        raise ValueError("bad")

    gpu_check.run_section("b", skip, sections, log=lambda _: None)
    gpu_check.run_section("c", fail, sections, log=lambda _: None)
    assert sections["a"]["status"] == "ok" and sections["a"]["data"] == {"x": 1}
    assert sections["b"] == {"status": "skipped", "reason": "not here", "seconds": sections["b"]["seconds"]}
    assert sections["c"]["status"] == "failed" and sections["c"]["error"] == "ValueError: bad"
    assert sections["c"]["traceback"][-1] == "ValueError: bad"


def test_packed_and_padded_batches_hold_the_same_real_tokens():
    pytest.importorskip("torch")
    lengths = [5, 300, 17, 1000, 64, 900]
    padded = gpu_check._padded_batches(lengths, 4, 100)
    packed = gpu_check._packed_batches(lengths, 1024, 100)
    assert sum(int(b["attention_mask"].sum()) for b in padded) == sum(lengths)
    assert sum(b["input_ids"].shape[1] for b in packed) == sum(lengths)
    assert all(b["input_ids"].shape[1] <= 1024 for b in packed)
    first = packed[0]["position_ids"][0].tolist()
    assert first[0] == 0 and first.count(0) == int((packed[0]["labels"][0] == -100).sum())


def test_refuses_loudly_without_cuda(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the refusal is for machines without it")
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "gpu_check.py"), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert "needs a CUDA GPU" in out.stderr and not (tmp_path / "out").exists()
