"""TUI fixtures: a frozen fake workspace, an app factory with fixed clock and GPU sampler, no blinking."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fakes import FAKE_GPUS, NO_GPU, clock, make_workspace  # noqa: E402


@pytest.fixture(autouse=True)
def _no_blink(monkeypatch):
    """A blinking cursor makes two screenshots of the same state differ."""
    from textual.widgets import Input

    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None, raising=False)


@pytest.fixture
def fake_ws(tmp_path):
    return make_workspace(tmp_path / "ws")


@pytest.fixture
def make_app():
    from ftbench.tui.app import FtbenchApp

    def build(ws, gpu=NO_GPU, **kwargs):
        kwargs.setdefault("poll_s", 0.1)
        return FtbenchApp(ws, clock=clock, gpu_sampler=lambda: gpu, gpu_interval=0.2, **kwargs)

    return build


__all__ = ["FAKE_GPUS", "NO_GPU"]
