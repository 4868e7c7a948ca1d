"""The Models screen in a tiny host app: the list, the detail panel, the VRAM estimate and GPU fit, snapshot."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from safetensors.numpy import save_file
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from ftbench.core.estimate import GIB
from ftbench.core.gpu import GpuInfo, GpuReport
from ftbench.core.humanize import human_size
from ftbench.core.workspace import Workspace
from ftbench.tui.screens.models import ModelsScreen, estimate_table, info_table
from ftbench.tui.services import Services

SIZE = (130, 34)
FAKE_GPUS = GpuReport(
    True, [GpuInfo(0, "NVIDIA H100 80GB HBM3", 10 * GIB, 80 * GIB), GpuInfo(1, "NVIDIA L4", 23 * GIB, 24 * GIB)]
)
CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 2048,
    "intermediate_size": 8192,
    "num_hidden_layers": 16,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "max_position_embeddings": 131072,
    "vocab_size": 128256,
    "tie_word_embeddings": True,
}


class Host(App[None]):
    """Stands in for FtbenchApp: the app's latest GPU sample is a fixed fake report."""

    def __init__(self, ws: Workspace) -> None:
        super().__init__()
        self.ws = ws
        self.services = Services(gpu_report=lambda: FAKE_GPUS)

    def on_mount(self) -> None:
        self.push_screen(ModelsScreen(self.ws, hf_cache=False))


def text_of(renderable: object) -> str:
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A Llama-3.2-1B-shaped config over a tiny weight file (the count comes from the header, not the config)."""
    ws = Workspace.open(tmp_path / "ws")
    model = ws.models_dir / "llama-1b-shape"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(CONFIG))
    (model / "README.md").write_text("---\nlicense: llama3.2\n---\n")
    save_file({"w": np.zeros((1000, 1000), np.float16)}, str(model / "model.safetensors"))
    adapter = ws.models_dir / "my-adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(
        json.dumps({"peft_type": "LORA", "base_model_name_or_path": "llama-1b-shape"})
    )
    return ws


async def wait_for(pilot: Pilot, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await pilot.pause(0.02)
    raise AssertionError("condition not met in time")


def listed(app: App) -> Callable[[], bool]:
    return lambda: isinstance(app.screen, ModelsScreen) and app.screen.listing_done and bool(app.screen.estimates)


async def test_details_estimate_and_fit(ws: Workspace) -> None:
    app = Host(ws)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, listed(app))
        screen = app.screen
        assert [m.name for m in screen.models] == ["llama-1b-shape", "my-adapter"]
        assert screen.current.params == 1_000_000 and screen.current.license == "llama3.2"
        assert [(e.method, e.seq_len, e.batch) for e in screen.estimates] == [
            ("full", 1024, 4),
            ("lora", 1024, 4),
            ("qlora", 1024, 4),
        ]
        shown = text_of(estimate_table(screen.estimates, FAKE_GPUS))
        assert "GPU 0 NVIDIA H100 80GB HBM3: 70.0 GB free" in shown
        total_full = screen.estimates[0].total / GIB
        assert f"{total_full:.2f}" in shown

        act_1024 = screen.estimates[0].activations
        await pilot.press("e")
        seq = screen.query_one("#md-seq", Input)
        assert seq.has_focus
        seq.value = "4096"
        await wait_for(pilot, lambda: screen.estimates[0].seq_len == 4096)
        assert screen.estimates[0].activations == 4 * act_1024

        screen.query_one("#md-list", DataTable).focus()
        await pilot.press("down")
        await wait_for(pilot, lambda: screen.current.name == "my-adapter")
        assert "base model     llama-1b-shape" in text_of(info_table(screen.current))


async def test_the_estimate_learns_from_measured_runs(ws: Workspace) -> None:
    """GPU runs recorded in the workspace set the CUDA context the estimate uses and say how far it was off."""
    from ftbench.core.estimate import CUDA_CONTEXT
    from ftbench.core.vram_calibration import record_run

    for peak in (11 * GIB, 12 * GIB, 13 * GIB):
        record_run(ws.root, {"estimate": 10 * GIB, "measured_peak": peak, "cuda_context": 300 * 2**20})
    app = Host(ws)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, listed(app))
        screen = app.screen
        shown = text_of(screen.query_one("#md-estimate").content)
        assert "runs peaked at 1.20x their estimate (+20%, median of 3)" in shown
        assert "CUDA context measured 300 MiB" in shown
        parts = screen.estimates[0]
        subtotal = parts.weights + parts.gradients + parts.optimizer + parts.activations
        assert parts.overhead == 300 * 2**20 + int(0.10 * subtotal) != CUDA_CONTEXT + int(0.10 * subtotal)


def test_fit_marks_follow_free_memory(ws: Workspace) -> None:
    from ftbench.catalog.models import inspect_model
    from ftbench.core.estimate import estimate_all

    estimates = estimate_all(inspect_model(ws.models_dir / "llama-1b-shape"), 1024, 4)
    assert all(1 * GIB < e.total < 70 * GIB for e in estimates)
    lines = text_of(estimate_table(estimates, FAKE_GPUS)).splitlines()
    h100 = next(line for line in lines if "H100" in line)
    l4 = next(line for line in lines if "L4" in line)
    assert h100.count("✔") == 3 and l4.count("✘") == 3


def test_snapshot(ws: Workspace, snap_compare) -> None:
    async def ready(pilot: Pilot) -> None:
        await wait_for(pilot, listed(pilot.app))

    assert snap_compare(Host(ws), terminal_size=SIZE, run_before=ready)


# ----------------------------------------------------------------------------------------------
# progressive listing: rows first, details later, the highlighted row first, cancelled when left
# ----------------------------------------------------------------------------------------------
class Gate:
    """Holds every details read until `open` is set, and records which model each one was for."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from ftbench.catalog.model_listing import ModelCatalog

        self.open = threading.Event()
        self.calls: list[str] = []
        original = ModelCatalog.details

        def details(catalog, entry):
            self.calls.append(entry.info.name)
            assert self.open.wait(15)
            return original(catalog, entry)

        monkeypatch.setattr(ModelCatalog, "details", details)


@pytest.fixture
def five(tmp_path: Path) -> Workspace:
    """Four small HF folders and one GGUF (a root's own files are listed before its folders)."""
    ws = Workspace.open(tmp_path / "ws5")
    small = {**CONFIG, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "vocab_size": 100}
    for name in ("a-model", "b-model", "c-model", "d-model"):
        folder = ws.models_dir / name
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(small))
        save_file({"w": np.zeros((10, 10), np.float32)}, str(folder / "model.safetensors"))
    import gguf

    writer = gguf.GGUFWriter(str(ws.models_dir / "e.gguf"), "llama")
    writer.add_token_list([f"t{i}" for i in range(500)])
    writer.add_tensor("token_embd.weight", np.zeros((500, 8), np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return ws


NAMES = ["e.gguf", "a-model", "b-model", "c-model", "d-model"]


async def test_rows_appear_before_details_and_fill_in(five: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = Gate(monkeypatch)
    app = Host(five)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ModelsScreen) and len(app.screen.models) == 5)
        screen = app.screen
        table = screen.query_one("#md-list", DataTable)
        assert [m.name for m in screen.models] == NAMES and not screen.complete
        name, kind, arch, params, size = table.get_row_at(1)
        assert (str(name), kind, str(arch), params) == ("a-model", "hf", "…", "…")
        assert size == human_size(sum(f.stat().st_size for f in (five.models_dir / "a-model").iterdir()))
        assert table.get_row_at(0)[1] == "gguf"
        assert screen.estimates == [] and "reading metadata" in text_of(info_table(screen.current, False))
        gate.open.set()
        await wait_for(pilot, lambda: screen.listing_done)
        assert screen.complete == set(screen.keys)
        assert [str(table.get_row_at(i)[2]) for i in range(5)] == ["llama"] + ["LlamaForCausalLM"] * 4
        assert table.get_row_at(1)[3] == "100" and screen.current.params == 500 * 8
        assert table.border_subtitle == "5 found"


async def test_the_highlighted_row_is_read_first(five: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = Gate(monkeypatch)
    app = Host(five)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(gate.calls) == 1)  # the first row's details are being read
        screen = app.screen
        screen.query_one("#md-list", DataTable).move_cursor(row=3)
        await wait_for(pilot, lambda: screen.current_key == screen.keys[3])
        gate.open.set()
        await wait_for(pilot, lambda: screen.listing_done)
        assert gate.calls == ["e.gguf", "c-model", "a-model", "b-model", "d-model"]


async def test_leaving_cancels_and_a_revisit_reads_only_what_is_not_cached(
    five: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from textual.screen import Screen

    gate = Gate(monkeypatch)
    app = Host(five)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(gate.calls) == 1)
        screen = app.screen
        first_feed = screen.feed
        await app.push_screen(Screen())  # the user switches to another screen
        await wait_for(pilot, lambda: first_feed.cancelled)  # the screen hears it was left (a message, not at once)
        gate.open.set()
        await wait_for(pilot, first_feed.finished.is_set)
        assert gate.calls == ["e.gguf"] and first_feed.cancelled  # nothing more was read after leaving
        app.pop_screen()
        await wait_for(pilot, lambda: screen.listing_done)
        assert screen.feed is not first_feed
        assert gate.calls == NAMES  # e.gguf once: the revisit took it from the cache
    gate.calls.clear()
    app = Host(five)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ModelsScreen) and app.screen.listing_done)
        assert gate.calls == [] and len(app.screen.models) == 5  # a second visit reads no file's metadata


async def test_pull_key_asks_for_a_repo_id_and_starts_a_pull_job(ws: Workspace) -> None:
    import time

    from textual.widgets import Static

    from ftbench.core.jobs import find_job, refresh
    from ftbench.tui.screens.pull import PullScreen

    app = Host(ws)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, listed(app))
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PullScreen))
        await pilot.press(*"../x", "enter")
        note = app.screen.query_one("#pull-note", Static)
        assert "is not a Hugging Face repo id" in str(note.render())
        assert not list(ws.jobs_parent("pull").iterdir())
        repo_input = app.screen.query_one("#pull-repo", Input)
        repo_input.value = ""
        await pilot.press(*"org/tiny", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelsScreen))
        (job_dir,) = ws.jobs_parent("pull").iterdir()
    spec = json.loads((job_dir / "job.json").read_text())
    assert (spec["kind"], spec["params"]["repo_id"], spec["params"]["to"]) == ("pull", "org/tiny", "cache")
    job = find_job(ws, job_dir.name)
    deadline = time.monotonic() + 60
    while refresh(job).active and time.monotonic() < deadline:  # offline in tests: it fails, saying so
        time.sleep(0.2)
    assert "HF_HUB_OFFLINE" in (refresh(job).status.get("error") or {}).get("message", "")
