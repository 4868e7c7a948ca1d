"""The Models screen in a tiny host app: the list, the detail panel, the VRAM estimate and GPU fit, snapshot."""

from __future__ import annotations

import io
import json
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
from ftbench.core.workspace import Workspace
from ftbench.tui.screens.models import ModelsScreen, estimate_table, info_table
from ftbench.tui.services import Services

SIZE = (130, 34)
FAKE_GPUS = GpuReport(True, [GpuInfo(0, "NVIDIA H100 80GB HBM3", 10 * GIB, 80 * GIB), GpuInfo(1, "NVIDIA L4", 23 * GIB, 24 * GIB)])
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
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "base_model_name_or_path": "llama-1b-shape"}))
    return ws


async def wait_for(pilot: Pilot, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await pilot.pause(0.02)
    raise AssertionError("condition not met in time")


def listed(app: App) -> Callable[[], bool]:
    return lambda: isinstance(app.screen, ModelsScreen) and len(app.screen.models) == 2 and bool(app.screen.estimates)


async def test_details_estimate_and_fit(ws: Workspace) -> None:
    app = Host(ws)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, listed(app))
        screen = app.screen
        assert [m.name for m in screen.models] == ["llama-1b-shape", "my-adapter"]
        assert screen.current.params == 1_000_000 and screen.current.license == "llama3.2"
        assert [(e.method, e.seq_len, e.batch) for e in screen.estimates] == [("full", 1024, 4), ("lora", 1024, 4), ("qlora", 1024, 4)]
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
