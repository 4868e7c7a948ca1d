"""The first-run guide: opens by itself on a new workspace, each step is one key, closing it is remembered."""

from __future__ import annotations

import json

from helpers import wait_until

from ftbench.core.workspace import Workspace
from ftbench.tui.screens.guide import STATE_FILE, GuideScreen, guide_due


def named(app, name: str) -> bool:
    return type(app.screen).__name__ == name


async def test_guide_opens_on_a_new_workspace_and_a_step_key_goes_there(tmp_path, make_app) -> None:
    ws = Workspace.open(tmp_path / "ws")
    assert guide_due(ws)
    app = make_app(ws)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(
            pilot, lambda: isinstance(app.screen, GuideScreen) and len(app.screen.query(".guide-step")) == 3
        )
        text = " ".join(str(s.render()) for s in app.screen.query(".guide-step"))
        assert "Look at a dataset" in text and "Start a run from a recipe" in text and "Chat with its adapter" in text
        await pilot.press("5")
        await wait_until(pilot, lambda: named(app, "NewRunScreen"))
        assert app.current_mode == "new_run"
    assert json.loads((ws.root / STATE_FILE).read_text()) == {"guide_dismissed": True}
    assert not guide_due(ws)
    async with make_app(ws).run_test(size=(80, 24)) as pilot:  # the next start: straight to Jobs
        await wait_until(pilot, lambda: named(pilot.app, "JobsScreen"))
        await pilot.pause(0.3)
        assert not isinstance(pilot.app.screen, GuideScreen)


async def test_help_t_reopens_the_tour_and_escape_closes_it(fake_ws, make_app) -> None:
    assert not guide_due(fake_ws)  # runs were started here: not a new workspace
    app = make_app(fake_ws)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: named(app, "JobsScreen"))
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: named(app, "HelpScreen"))
        await pilot.press("t")
        await wait_until(pilot, lambda: isinstance(app.screen, GuideScreen))
        await pilot.press("escape")
        await wait_until(pilot, lambda: named(app, "JobsScreen"))
    assert json.loads((fake_ws.root / STATE_FILE).read_text())["guide_dismissed"] is True


def test_an_unreadable_state_file_means_the_guide_is_due(tmp_path) -> None:
    ws = Workspace.open(tmp_path / "ws")
    (ws.root / STATE_FILE).parent.mkdir(parents=True, exist_ok=True)
    (ws.root / STATE_FILE).write_text("{not json")
    assert guide_due(ws)
