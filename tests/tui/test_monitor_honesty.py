"""The run monitor tells no small lies: one line per checkpoint, and the same GPU words as the Jobs screen."""

from __future__ import annotations

from fakes import FAILED, NO_GPU, RUNNING
from helpers import wait_until
from textual.widgets import OptionList

from ftbench.core.events import EventWriter
from ftbench.core.gpu import headline
from ftbench.tui.screens.monitor import MonitorScreen
from ftbench.tui.widgets.gpu_pane import GpuPane


async def test_a_checkpoint_announced_twice_is_listed_once(fake_ws, make_app) -> None:
    run = fake_ws.runs_dir / RUNNING
    with EventWriter(run / "events.jsonl") as writer:  # saved at step 3, then announced again by the stop
        writer.emit("checkpoint", step=3, path="checkpoints/checkpoint-3")
        writer.emit("checkpoint", step=3, path=str(run / "checkpoints" / "checkpoint-3"))
    app = make_app(fake_ws)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_monitor(run)
        await wait_until(
            pilot, lambda: isinstance(app.screen, MonitorScreen) and "checkpoint-3" in app.screen.checkpoint_names()
        )
        listing = app.screen.query_one("#monitor-checkpoints", OptionList)
        labels = [str(listing.get_option_at_index(i).prompt) for i in range(listing.option_count)]
        assert sum(label.endswith("checkpoint-3") for label in labels) == 1, labels
        assert len(labels) == len(set(labels))


async def test_a_run_without_gpu_samples_shows_this_machines_gpu_like_the_jobs_screen(fake_ws, make_app) -> None:
    app = make_app(fake_ws, gpu=NO_GPU)  # the failed fixture run logged no `gpu` events
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.gpu_report is not None)
        jobs_line = str(app.screen.query_one(GpuPane).render())
        app.open_monitor(fake_ws.runs_dir / FAILED)
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen) and app.screen.status)
        pane = app.screen.query_one("#monitor-gpu", GpuPane)
        await wait_until(pilot, lambda: "sampling" not in str(pane.render()))
        assert str(pane.render()) == jobs_line == headline(NO_GPU) == "GPU: no NVIDIA GPU (no NVIDIA driver)"
