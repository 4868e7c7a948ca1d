"""New run: templates and past runs, live validation naming the bad key, prefill, launch into the monitor."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import wait_until
from textual.widgets import OptionList, Static, TextArea

from ftbench.core.job_stop import stop_job
from ftbench.core.jobs import find_job
from ftbench.tui.screens.monitor import MonitorScreen
from ftbench.tui.screens.new_run import NewRunScreen, check_recipe, set_key

SIZE = (120, 36)


async def open_new_run(app, pilot) -> NewRunScreen:
    await pilot.press("5")
    await wait_until(pilot, lambda: isinstance(app.screen, NewRunScreen))
    return app.screen


def status(screen) -> str:
    return str(screen.query_one("#newrun-status", Static).render())


async def test_validation_templates_and_prefill(fake_ws, make_app):
    app = make_app(fake_ws)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_new_run(app, pilot)
        assert status(screen).startswith("✓ valid  sft · lora")
        area = screen.query_one("#newrun-yaml", TextArea)
        area.load_text("task: sft\nmodel: m\ndata: d.jsonl\nmethd: lora\n")
        await wait_until(pilot, lambda: screen.recipe is None and "methd" in status(screen), what="typo named")
        assert "method" in status(screen)  # the nearest valid key is suggested
        area.load_text("task: sft\nmodel: m\ndata: [unclosed\n")
        await wait_until(pilot, lambda: "Not valid YAML at line" in status(screen))
        screen.prefill(model="models/tiny")  # broken YAML: left alone, with a notification
        assert area.text == "task: sft\nmodel: m\ndata: [unclosed\n"
        area.load_text("task: sft\nmodel: m\ndata: d.jsonl\n")
        screen.prefill(model="models/tiny", dataset="datasets/x.jsonl")
        assert screen.recipe is not None and screen.recipe.model.path == "models/tiny"
        labels = [str(o.prompt) for o in screen.query_one("#newrun-sources", OptionList).options]
        assert "run 20251122-081000-sft-alpaca-lora-a1b2" in labels
        index = labels.index("run 20251122-070000-sft-alpaca-lora-r8-c3d4")
        options = screen.query_one("#newrun-sources", OptionList)
        options.focus()
        options.highlighted = index
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: screen.recipe is not None and screen.recipe.method.r == 8, what="past run loaded"
        )
        assert screen.source_path == fake_ws.runs_dir / "20251122-070000-sft-alpaca-lora-r8-c3d4" / "recipe.yaml"


async def test_launch_starts_train_job_and_opens_monitor(fake_ws, make_app, monkeypatch):
    monkeypatch.setitem(__import__("ftbench.core.jobs").core.jobs.JOB_TARGETS, "train", "fakejob:run")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))
    (fake_ws.models_dir / "tiny").mkdir()
    (fake_ws.datasets_dir / "x.jsonl").write_text('{"instruction": "a", "output": "b"}\n')
    app = make_app(fake_ws)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_new_run(app, pilot)
        screen.load_text("task: sft\nname: launched\nmodel: models/sub/nope\ndata: datasets/x.jsonl\n")
        notes: list[str] = []
        app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
        await pilot.press("f5")
        assert notes and "model.path" in notes[-1] and "does not exist" in notes[-1]
        screen.prefill(model="models/tiny")
        await pilot.press("f5")
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen), what="monitor of the new run")
        job_dir = app.screen.job_dir
        await wait_until(pilot, lambda: app.screen.view.loss, timeout=20, what="first steps of the launched job")
    try:
        spec = json.loads((job_dir / "job.json").read_text())
        assert spec["kind"] == "train" and spec["name"] == "launched"
        assert spec["params"]["recipe"]["model"]["path"] == str(fake_ws.models_dir / "tiny")
        assert (job_dir / "recipe.yaml").is_file()
    finally:
        stop_job(find_job(fake_ws, str(job_dir)), grace_s=10)


def test_helpers():
    assert check_recipe("task: sft\nmodel: m\ndata: d\n")[0] is not None
    recipe, message, hint = check_recipe("- a list\n")
    assert recipe is None and message == "A recipe is a mapping of keys."
    text = set_key("task: sft\nmodel: old\ndata: d\n", "model.path", "new")
    assert text.splitlines()[:3] == ["task: sft", "model:", "  path: new"]
