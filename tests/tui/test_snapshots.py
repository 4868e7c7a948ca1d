"""SVG snapshots of the canonical screens at a fixed size on frozen data (pytest-textual-snapshot).

Regenerate after an intended UI change with `pytest tests/tui/test_snapshots.py --snapshot-update`, then
look at the SVGs under tests/tui/__snapshots__/ before committing them.
"""

from __future__ import annotations

from fakes import FAKE_GPUS, FIXTURES, NO_GPU, RUNNING, write_multi_gpu_run
from helpers import wait_until

from ftbench.core.workspace import Workspace
from ftbench.tui.screens.guide import remember_dismissed
from ftbench.tui.screens.help import HelpScreen
from ftbench.tui.screens.jobs import JobsScreen
from ftbench.tui.screens.monitor import MonitorScreen
from ftbench.tui.screens.runs import RunsScreen
from ftbench.tui.widgets.gpu_pane import GpuPane

SIZE = (120, 36)
LABEL = "~/ftbench-workspace"  # the real tmp path changes every run


async def jobs_ready(pilot, count: int = 5) -> None:
    app = pilot.app
    app.sub_title = LABEL
    await wait_until(pilot, lambda: isinstance(app.screen, JobsScreen) and len(app.screen.rows) == count)
    await wait_until(pilot, lambda: app.screen.query_one(GpuPane).report is not None)
    if count:
        await wait_until(pilot, lambda: app.screen.query_one("#job-events").line_count > 0)
        await wait_until(pilot, lambda: app.screen.query_one("#job-log").line_count > 0)


def test_jobs_screen_with_fake_gpus(snap_compare, fake_ws, make_app):
    assert snap_compare(make_app(fake_ws, gpu=FAKE_GPUS), terminal_size=SIZE, run_before=jobs_ready)


def test_no_gpu_pane_on_empty_workspace(snap_compare, tmp_path, make_app):
    async def ready(pilot):
        await jobs_ready(pilot, count=0)
        assert "no NVIDIA GPU" in str(pilot.app.screen.query_one(GpuPane).render())

    ws = Workspace.open(tmp_path / "ws")
    remember_dismissed(ws)  # a new workspace opens the first-run guide over the Jobs screen (test_guide.py)
    assert snap_compare(make_app(ws, gpu=NO_GPU), terminal_size=SIZE, run_before=ready)


def test_help_screen(snap_compare, fake_ws, make_app):
    async def ready(pilot):
        await jobs_ready(pilot)
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, HelpScreen))

    assert snap_compare(make_app(fake_ws), terminal_size=SIZE, run_before=ready)


def test_run_monitor(snap_compare, fake_ws, make_app):
    async def ready(pilot):
        await jobs_ready(pilot)
        await pilot.press("enter")
        app = pilot.app
        steps = (FIXTURES / RUNNING / "events.jsonl").read_text().count('"type": "train"')
        log_lines = len((FIXTURES / RUNNING / "log.txt").read_text().splitlines())
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen) and len(app.screen.view.loss) == steps)
        await wait_until(
            pilot, lambda: app.screen.query_one("#monitor-log").line_count >= log_lines and app.screen.status
        )

    assert snap_compare(make_app(fake_ws, gpu=FAKE_GPUS), terminal_size=(120, 40), run_before=ready)


def test_run_monitor_on_two_gpus(snap_compare, fake_ws, make_app):
    """The one synthetic run: a recorded run re-emitted with two GPUs sampled (a CPU cannot record that)."""
    job_dir = write_multi_gpu_run(fake_ws)

    async def ready(pilot):
        await jobs_ready(pilot, count=6)
        app = pilot.app
        app.open_monitor(job_dir)
        await wait_until(
            pilot, lambda: isinstance(app.screen, MonitorScreen) and app.screen.view.gpu_latest and app.screen.status
        )
        await wait_until(pilot, lambda: app.screen.query_one("#monitor-log").line_count > 0)

    assert snap_compare(make_app(fake_ws, gpu=FAKE_GPUS), terminal_size=(120, 40), run_before=ready)


def test_runs_compare(snap_compare, fake_ws, make_app):
    async def ready(pilot):
        pilot.app.sub_title = LABEL
        await pilot.press("2")
        app = pilot.app
        await wait_until(pilot, lambda: isinstance(app.screen, RunsScreen) and len(app.screen.rows) == 3)
        await pilot.press("space", "down", "space")
        await wait_until(pilot, lambda: len(app.screen.picked) == 2)

    assert snap_compare(make_app(fake_ws), terminal_size=(120, 40), run_before=ready)
