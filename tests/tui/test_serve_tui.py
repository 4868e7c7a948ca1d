"""Serve from the TUI: Jobs shows a serve job's URL, request count and tokens/s; the monitor's `v` starts a
real serve job for the run's adapter and the dialog shows the URL, the model names, `ssh -L` and curl."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import httpx
import pytest
from fakes import write_job
from helpers import wait_until
from textual.widgets import DataTable, Static, TextArea

from ftbench.core.job_stop import stop_job
from ftbench.core.jobs import find_job
from ftbench.core.workspace import Workspace
from ftbench.tui.screens.jobs import JobsScreen
from ftbench.tui.screens.monitor import MonitorScreen
from ftbench.tui.screens.serve import ServeScreen

sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))  # make_adapter lives in test_chat_hf

SIZE = (120, 40)
SERVE_ID = "20251122-090000-serve-tiny-5e5e"


async def test_jobs_screen_shows_a_serve_jobs_url_requests_and_speed(fake_ws, make_app) -> None:
    write_job(
        fake_ws,
        SERVE_ID,
        "serve",
        "serve tiny",
        "running",
        60,
        events=[
            {"t": 1.0, "type": "serve_request", "attempt": 1, "model": "sft-a", "status": 200, "completion_tokens": 9}
        ],
        progress={"phase": "serving 12 req 34.5 tok/s", "done": None, "total": None},
        serve={
            "url": "http://127.0.0.1:8123/v1",
            "port": 8123,
            "variants": ["base", "sft-a"],
            "auth": False,
            "loopback": True,
            "ready": True,
        },
    )
    app = make_app(fake_ws)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, JobsScreen) and app.screen.rows, what="jobs")
        screen = app.screen
        row = next(r for r in screen.rows if r["id"] == SERVE_ID)
        assert row["kind"] == "serve" and row["progress"] == "serving 12 req 34.5 tok/s"
        table = screen.query_one("#jobs-table", DataTable)
        table.move_cursor(row=[r["id"] for r in screen.rows].index(SERVE_ID))
        await wait_until(
            pilot, lambda: "8123" in str(screen.query_one("#job-info", Static).render()), what="serve info"
        )
        info = str(screen.query_one("#job-info", Static).render())
        assert "URL:      http://127.0.0.1:8123/v1" in info and "models:   base, sft-a" in info
        assert "ssh -N -L 8123:127.0.0.1:8123" in info and "curl http://127.0.0.1:8123/v1/chat/completions" in info


@pytest.fixture
def run_ws(tmp_path: Path, tiny_llama: Path) -> Workspace:
    """A finished run whose adapter records the tiny model as its base."""
    pytest.importorskip("peft")
    from fakes import NOW
    from test_chat_hf import make_adapter

    ws = Workspace.open(tmp_path / "ws")
    model = ws.models_dir / "tiny"
    shutil.copytree(tiny_llama, model)
    run = ws.runs_dir / "20251122-080000-sft-tiny-7a7a"
    run.mkdir(parents=True)
    (run / "status.json").write_text(
        json.dumps(
            {
                "id": run.name,
                "kind": "train",
                "state": "succeeded",
                "name": "sft-tiny",
                "created_at": NOW - 100,
                "ended_at": NOW - 10,
            }
        )
    )
    (run / "events.jsonl").write_text(json.dumps({"t": NOW, "type": "train", "step": 1, "loss": 1.0}) + "\n")
    make_adapter(model, run / "adapter", 1)
    return ws


@pytest.mark.slow
async def test_monitor_v_starts_a_serve_job_and_shows_how_to_reach_it(run_ws, make_app) -> None:
    app = make_app(run_ws)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, JobsScreen) and app.screen.rows, what="jobs")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen), what="monitor")
        await pilot.press("v")
        await wait_until(pilot, lambda: isinstance(app.screen, ServeScreen), what="serve dialog")
        dialog = app.screen
        await wait_until(pilot, lambda: dialog.card, timeout=180, what="server ready")
        text = dialog.query_one("#serve-card", TextArea).text
        job = find_job(run_ws, dialog.job_id)
        try:
            url = job.status["serve"]["url"]
            assert url.startswith("http://127.0.0.1:") and f"URL:      {url}" in text
            assert "models:   base, sft-tiny-7a7a" in text and "ssh -N -L" in text and "curl " in text
            models = httpx.get(url + "/models", timeout=30).json()
            assert [m["id"] for m in models["data"]] == ["base", "sft-tiny-7a7a"]
        finally:
            stop_job(job, grace_s=20)


async def test_models_v_on_an_adapter_serves_it_on_its_base_and_shows_a_failure_plainly(tmp_path: Path) -> None:
    """The adapter row serves base + adapter; this base's weights are fake, so the job fails and the dialog says why."""
    from test_models_screen import CONFIG, Host

    from ftbench.tui.screens.models import ModelsScreen

    ws = Workspace.open(tmp_path / "ws")
    model = ws.models_dir / "llama-1b-shape"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(CONFIG))
    (model / "model.safetensors").write_bytes(b"not weights")
    adapter = ws.models_dir / "my-adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(
        json.dumps({"peft_type": "LORA", "base_model_name_or_path": "llama-1b-shape"})
    )
    app = Host(ws)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(
            pilot, lambda: isinstance(app.screen, ModelsScreen) and len(app.screen.models) == 2, what="models"
        )
        app.screen.query_one("#md-list", DataTable).focus()
        await pilot.press("down")
        await wait_until(pilot, lambda: app.screen.current.name == "my-adapter", what="adapter row")
        await pilot.press("v")
        await wait_until(pilot, lambda: isinstance(app.screen, ServeScreen) and app.screen.job_id, what="serve job")
        dialog = app.screen
        job = find_job(ws, dialog.job_id)
        spec = json.loads((job.dir / "job.json").read_text())
        assert spec["kind"] == "serve" and spec["params"]["model"] == "llama-1b-shape"
        assert (
            spec["params"]["adapters"] == [str(ws.models_dir / "my-adapter")] and spec["params"]["host"] == "127.0.0.1"
        )
        title = dialog.query_one("#serve-title", Static)
        await wait_until(pilot, lambda: "Cannot serve" in str(title.render()), timeout=180, what="failure shown")
        assert f"Serve job {job.id} failed before it was ready" in str(title.render())
        assert not dialog.card
