"""Every screen at 80x24 (a laptop's tmux) and 120x40: SVG snapshots, plus checks that the primary list and
the footer are on screen and that side-by-side panes stacked instead of being squeezed into slivers.

The workspace is the frozen fake jobs (tests/tui/fakes.py) with the demo workspace's models and datasets linked
in, a fixed clock and two fake GPUs. Regenerate with `pytest tests/tui/test_layouts.py --snapshot-update` and
look at the SVGs under tests/tui/__snapshots__/test_layouts/ before committing them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from fakes import FAKE_GPUS, FIXTURES, RUNNING, make_workspace
from helpers import wait_until
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Footer

from ftbench.core.workspace import Workspace
from ftbench.tui.widgets.app_header import ScreenTabs

LABEL = "~/ftbench-workspace"
SIZES = [(80, 24), (120, 40)]
Setup = Callable[[Pilot], Awaitable[str]]  # brings the app to a screen; returns the selector of its primary widget


@pytest.fixture
def layout_ws(tmp_path: Path, demo_workspace: Workspace) -> Workspace:
    root = tmp_path / "ws"
    root.mkdir()
    for sub in ("models", "datasets"):
        (root / sub).symlink_to(demo_workspace.root / sub)
    return make_workspace(root)


def named(pilot: Pilot, name: str) -> bool:
    return type(pilot.app.screen).__name__ == name


async def jobs(pilot: Pilot) -> str:
    await wait_until(pilot, lambda: named(pilot, "JobsScreen") and len(pilot.app.screen.rows) == 5)
    await wait_until(pilot, lambda: pilot.app.screen.query_one("#job-log").line_count > 0)
    await wait_until(pilot, lambda: pilot.app.screen.query_one("#job-events").line_count > 0)
    return "#jobs-table"


async def monitor(pilot: Pilot) -> str:
    await jobs(pilot)
    await pilot.press("enter")
    steps = (FIXTURES / RUNNING / "events.jsonl").read_text().count('"type": "train"')
    log_lines = len((FIXTURES / RUNNING / "log.txt").read_text().splitlines())
    await wait_until(pilot, lambda: named(pilot, "MonitorScreen") and pilot.app.screen.status)
    await wait_until(pilot, lambda: len(pilot.app.screen.view.loss) == steps)
    await wait_until(pilot, lambda: pilot.app.screen.query_one("#monitor-log").line_count >= log_lines)
    return "#loss-chart"


async def runs(pilot: Pilot) -> str:
    await pilot.press("2")
    await wait_until(pilot, lambda: named(pilot, "RunsScreen") and len(pilot.app.screen.rows) == 3)
    await pilot.press("space", "down", "space")
    await wait_until(pilot, lambda: len(pilot.app.screen.picked) == 2)
    return "#runs-table"


async def datasets(pilot: Pilot) -> str:
    await pilot.press("3")
    screen = lambda: pilot.app.screen  # noqa: E731
    await wait_until(pilot, lambda: named(pilot, "DatasetsScreen") and screen().datasets, timeout=30)
    names = [d.name for d in screen().datasets]
    screen().query_one("#ds-list").move_cursor(row=names.index("demo/support-chat.jsonl"))
    await wait_until(pilot, lambda: screen().current.name == "demo/support-chat.jsonl", timeout=30)
    await wait_until(pilot, lambda: screen().current.rows_exact, timeout=30)
    table = screen().query_one("#ds-list")
    row = names.index("demo/support-chat.jsonl")
    # the list scrolls the highlighted row into view after a refresh: shoot once it is there
    await wait_until(pilot, lambda: table.scroll_y <= row < table.scroll_y + table.scrollable_content_region.height - 1)
    await pilot.press("t")
    return "#ds-list"


async def models(pilot: Pilot) -> str:
    await pilot.press("4")
    screen = lambda: pilot.app.screen  # noqa: E731
    await wait_until(pilot, lambda: named(pilot, "ModelsScreen") and screen().listing_done, timeout=30)
    names = [m.name for m in screen().models]
    screen().query_one("#md-list").move_cursor(row=names.index("smollm2-135m-instruct"))
    await wait_until(pilot, lambda: screen().current.name == "smollm2-135m-instruct" and screen().estimates, timeout=30)
    return "#md-list"


async def new_run(pilot: Pilot) -> str:
    await pilot.press("5")
    await wait_until(pilot, lambda: named(pilot, "NewRunScreen"))
    pilot.app.screen.query_one("#newrun-yaml").cursor_blink = False  # a blinking cursor makes two shots differ
    return "#newrun-yaml"


async def chat(pilot: Pilot) -> str:
    await pilot.press("6")
    await wait_until(pilot, lambda: named(pilot, "ChatScreen"))
    return "#chat-prompt"


async def evals(pilot: Pilot) -> str:
    await pilot.press("7")
    await wait_until(pilot, lambda: named(pilot, "EvalsScreen"))
    return "#evals-jobs"


async def help_screen(pilot: Pilot) -> str:
    await pilot.press("question_mark")
    await wait_until(pilot, lambda: named(pilot, "HelpScreen"))
    return "#help-table"


async def guide(pilot: Pilot) -> str:
    await jobs(pilot)
    pilot.app.action_tour()
    await wait_until(pilot, lambda: named(pilot, "GuideScreen"))
    return "#guide-box"


async def serve(pilot: Pilot) -> str:
    from ftbench.tui.screens.serve import ServeScreen

    class FrozenServe(ServeScreen):
        """The dialog as it looks once the server answers (no job is started)."""

        def start(self) -> None:
            self.card = [
                "URL      http://127.0.0.1:8765/v1",
                "models   smollm2-135m-instruct",
                "tunnel   ssh -L 8765:127.0.0.1:8765 gpu-box",
                "curl     curl http://127.0.0.1:8765/v1/models -H 'Authorization: Bearer $KEY'",
            ]
            self._show("20251122-090000-serve-smollm2-0c0d")
            self.query_one("#serve-card").cursor_blink = False

    await models(pilot)
    options = type("Options", (), {"model": "smollm2-135m-instruct"})()
    await pilot.app.push_screen(FrozenServe(pilot.app.screen.ws, options))
    await wait_until(pilot, lambda: named(pilot, "FrozenServe"))
    return "#serve-card"


SETUPS: dict[str, Setup] = {
    "jobs": jobs,
    "monitor": monitor,
    "runs": runs,
    "datasets": datasets,
    "models": models,
    "new_run": new_run,
    "chat": chat,
    "evals": evals,
    "help": help_screen,
    "guide": guide,
    "serve": serve,
}


def assert_usable(pilot: Pilot, primary: str) -> None:
    """The primary widget lies wholly on screen and is big enough to use; the footer shows action keys."""
    app = pilot.app
    width, height = app.size
    widget: Widget = app.screen.query_one(primary)
    region = widget.region
    assert region.x >= 0 and region.right <= width and region.bottom <= height, f"{primary} off screen: {region}"
    assert region.width >= min(44, width - 4), f"{primary} squeezed to {region.width} columns"
    assert region.height >= 3, f"{primary} squeezed to {region.height} rows"
    footers = app.screen_stack[-1].query(Footer) or [f for s in app.screen_stack for f in s.query(Footer)]
    assert any(f.region.bottom == height for f in footers), "no footer on the last row"


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", list(SETUPS))
def test_screen_layout(snap_compare, layout_ws, make_app, name: str, size: tuple[int, int]) -> None:
    async def ready(pilot: Pilot) -> None:
        pilot.app.sub_title = LABEL
        await wait_until(pilot, lambda: pilot.app.gpu_report is not None)
        primary = await SETUPS[name](pilot)
        await pilot.pause(0.3)
        assert_usable(pilot, primary)

    assert snap_compare(make_app(layout_ws, gpu=FAKE_GPUS), terminal_size=size, run_before=ready)


@pytest.mark.parametrize("width", [80, 100, 120, 200])
async def test_side_panes_stack_below_100_columns(layout_ws, make_app, width: int) -> None:
    """Jobs, Datasets, Models and New run put their panes under the list when narrow, beside it when wide."""
    height = {80: 24, 100: 30, 120: 40, 200: 60}[width]
    app = make_app(layout_ws, gpu=FAKE_GPUS)
    async with app.run_test(size=(width, height)) as pilot:
        for key, primary, side in (
            ("1", "#jobs-table", "#job-detail"),
            ("3", "#ds-list", "#ds-right"),
            ("4", "#md-list", "#md-right"),
            ("5", "#newrun-editor", "#newrun-side"),
        ):
            await pilot.press(key)
            await wait_until(pilot, lambda side=side: app.screen.query(side))
            await pilot.pause(0.05)
            main, detail = app.screen.query_one(primary).region, app.screen.query_one(side).region
            if width < 100:
                assert detail.y >= main.bottom and detail.width >= width - 4, (key, main, detail)
            else:
                assert detail.x >= main.right and detail.y < main.bottom, (key, main, detail)
            assert detail.width >= 28 and detail.height >= 5, (key, detail)


async def test_tab_bar_lists_every_screen_and_a_click_switches(layout_ws, make_app) -> None:
    app = make_app(layout_ws, gpu=FAKE_GPUS)
    async with app.run_test(size=(80, 24)) as pilot:
        await jobs(pilot)
        tabs = app.screen.query_one(ScreenTabs)
        text = str(tabs.render())
        assert all(f"{key} {title}" in text for key, title in (("1", "Jobs"), ("5", "New run"), ("7", "Evals")))
        offset = text.index("4 Models") + 2
        await pilot.click(ScreenTabs, offset=(offset, 0))
        await wait_until(pilot, lambda: named(pilot, "ModelsScreen"))
        assert app.current_mode == "models"
