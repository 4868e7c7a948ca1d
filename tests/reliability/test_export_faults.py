"""Faults, exports: an export killed (kill -9) or stopped mid-merge or mid-quantization leaves no merged model,
no `.partial` or intermediate file, and nothing `ftbench models` lists as a model but finished GGUF files; a
GGUF that finished before the export ended is on the card, marked as coming from an unfinished export."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")

from export_models import make_arch_model, make_lora  # noqa: E402

from ftbench.catalog.model_listing import discover_models  # noqa: E402
from ftbench.core.events import read_events  # noqa: E402
from ftbench.core.export_card import render_card  # noqa: E402
from ftbench.core.job_stop import stop_job  # noqa: E402
from ftbench.core.jobs import read_status, refresh, start_job, wait_job  # noqa: E402


@pytest.fixture(scope="module")
def adapter(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export-faults")
    base = make_arch_model(root / "base", "llama", hidden_size=256, intermediate_size=512)
    return make_lora(base, root / "run-adapter")


def start_export(ws, adapter: Path):
    params = {"source": str(adapter), "quants": ["q8_0", "q4_k_m"], "keep": False, "verify": True}
    return start_job(ws, "export", name="run-adapter", params=params)


def wait_for_phase(job, prefix: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        phases = [e.get("phase") or "" for e in read_events(job.events_path, ["progress"])]
        if any(p.startswith(prefix) for p in phases):
            return
        assert refresh(job).active, refresh(job).status
        time.sleep(0.02)
    raise AssertionError(f"no {prefix} phase")


def leftovers(folder: Path) -> list[str]:
    return sorted(
        p.name for p in folder.iterdir() if p.name.endswith((".partial", ".intermediate")) or "merged" in p.name
    )


def models_from(ws, job) -> list[tuple[str, str]]:
    return [(m.kind, Path(m.path).name) for m in discover_models(ws, hf_cache=False) if str(job.dir) in m.path]


@pytest.mark.parametrize("phase", ["merge", pytest.param("quantize", marks=pytest.mark.slow)])
def test_kill_9_mid_export_leaves_no_model_behind(workspace, adapter, phase) -> None:
    job = start_export(workspace, adapter)
    wait_for_phase(job, phase)
    if phase == "merge":  # kill while the merged model is being written, if we catch it
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any((job.dir / n).exists() for n in (".merged.partial", ".merged")):
            time.sleep(0.005)
    os.kill(read_status(job.dir)["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 20
    while refresh(job).active and time.monotonic() < deadline:
        time.sleep(0.05)
    ended = refresh(job)
    assert ended.state == "failed" and "vanished" in ended.status["error"]["message"]
    assert leftovers(job.dir) == []
    listed = models_from(workspace, job)
    assert all(kind == "gguf" for kind, _ in listed), listed
    if phase == "merge":
        assert listed == []


@pytest.mark.slow
def test_a_stopped_export_marks_the_files_it_finished(workspace, adapter) -> None:
    job = start_export(workspace, adapter)
    wait_for_phase(job, "quantize")
    ended = stop_job(job, grace_s=20)
    ended = wait_job(ended, timeout_s=30)
    assert ended.state == "stopped"
    result = ended.status["result"]
    assert result["failed"] is True
    names = [Path(f["path"]).name for f in result["files"]]
    assert "run-adapter-Q8_0.gguf" in names and all(f["role"] == "unfinished" for f in result["files"])
    card = render_card(result)
    assert card.splitlines()[0] == "Export of run-adapter - did not finish"
    assert "not verified" in card
    assert leftovers(job.dir) == []
    assert all(kind == "gguf" for kind, _ in models_from(workspace, job))
