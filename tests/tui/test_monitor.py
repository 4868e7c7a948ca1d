"""The run monitor: whole history on open, live appends, bounded redraws, actions through real jobs."""

from __future__ import annotations

import json
from pathlib import Path

from fakes import FAILED, FAKE_GPUS, FIXTURES, MULTI_GPU, NOW, RUNNING, write_multi_gpu_run
from helpers import wait_until
from textual.widgets import Input, Log, OptionList, Static

from ftbench.core.events import EventWriter, ema, read_events
from ftbench.core.humanize import human_duration
from ftbench.core.jobs import read_status, start_job, wait_job
from ftbench.tui.screens.jobs import JobsScreen
from ftbench.tui.screens.monitor import MonitorScreen
from ftbench.tui.widgets.gpu_pane import GpuPane
from ftbench.tui.widgets.loss_chart import LossChart, Series, render_chart

SIZE = (120, 40)


def recorded(job_id: str, kind: str) -> list:
    """The events of a recorded fixture (a real run), to compare the screen with."""
    return read_events(FIXTURES / job_id / "events.jsonl", [kind])


async def open_monitor(app, pilot) -> MonitorScreen:
    await wait_until(pilot, lambda: isinstance(app.screen, JobsScreen) and app.screen.rows, what="jobs")
    await pilot.press("enter")
    await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen) and app.screen.view.loss, what="monitor data")
    return app.screen


async def test_monitor_shows_whole_history_and_follows(fake_ws, make_app):
    app = make_app(fake_ws)
    async with app.run_test(size=SIZE) as pilot:
        mon = await open_monitor(app, pilot)
        view = mon.view
        train, evals, ckpts = (recorded(RUNNING, k) for k in ("train", "eval", "checkpoint"))
        assert len(view.loss) == len(train) and len(view.eval_loss) == len(evals) >= 2  # every event from byte 0
        assert [round(v, 9) for _, v in view.loss_ema] == [round(v, 9) for v in ema([v for _, v in view.loss])]
        last = train[-1]
        stats = str(mon.query_one("#monitor-stats", Static).render())
        assert "▶ running" in stats and f"step {last['step']}/{last['max_steps']}" in stats  # the real run's total
        assert f"{last['tokens_per_s']:,.0f} tok/s" in stats and f"ETA {human_duration(last['eta_s'])}" in stats
        assert ckpts and mon.checkpoint_names()[-1] == f"checkpoint-{ckpts[-1]['step']}"
        options = [str(o.prompt) for o in mon.query_one("#monitor-checkpoints", OptionList).options]
        assert options and options[-1].endswith(f"checkpoint-{ckpts[-1]['step']}")
        assert "peak" not in str(mon.query_one("#monitor-sparks", Static).render())  # a CPU run: torch reports none
        assert mon.query_one("#monitor-log", Log).line_count > 0
        chart = mon.query_one("#loss-chart", LossChart)
        assert [s.name for s in chart.series] == ["loss", "loss (ema)", "eval_loss"]

        # idle: no new data, no redraw
        updates = mon.updates
        await pilot.pause(1.2)
        assert mon.updates == updates

        events = Path(fake_ws.runs_dir / RUNNING / "events.jsonl")
        with open(events, "a") as f:
            for step in range(last["step"] + 1, last["step"] + 6):
                f.write(json.dumps({"v": 1, "t": NOW, "type": "train", "attempt": 1, "step": step, "loss": 0.5}) + "\n")
        await wait_until(pilot, lambda: len(mon.view.loss) == len(train) + 5, what="appended steps")
        assert mon.updates <= updates + 2  # 5 events, one or two redraws

        await pilot.press("l")
        assert chart.log_y and chart.border_title == "loss (log)"
        await pilot.press("m")
        assert [s.name for s in chart.series] == ["loss (ema)", "eval_loss"]
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, JobsScreen))


async def test_monitor_shows_the_newest_generation_eval(fake_ws, make_app):
    app = make_app(fake_ws)
    async with app.run_test(size=SIZE) as pilot:
        mon = await open_monitor(app, pilot)
        assert "generation eval" not in str(mon.query_one("#monitor-stats", Static).render())
        with open(fake_ws.runs_dir / RUNNING / "events.jsonl", "a", encoding="utf-8") as f:
            for step, accuracy in ((10, 50.0), (20, 87.5)):
                event = {"v": 1, "t": NOW, "type": "eval", "attempt": 1, "step": step, "gen_label_accuracy": accuracy}
                f.write(json.dumps({**event, "gen_chrf": 61.04, "gen_perplexity": 2.5}) + "\n")
        await wait_until(pilot, lambda: mon.view.gen_step == 20, what="the generation eval")
        await wait_until(pilot, lambda: "generation eval" in str(mon.query_one("#monitor-stats", Static).render()))
        stats = str(mon.query_one("#monitor-stats", Static).render())
        assert "generation eval @ 20: label_accuracy 87.5 · chrf 61.0 · perplexity 2.50" in stats


async def test_monitor_on_two_gpus_shows_both_and_torch_peak(fake_ws, make_app):
    """The synthetic run (a recorded run re-emitted with two GPUs sampled): GPU pane history and the peak line."""
    job_dir = write_multi_gpu_run(fake_ws)
    app = make_app(fake_ws, gpu=FAKE_GPUS)
    async with app.run_test(size=SIZE) as pilot:
        app.open_monitor(job_dir)
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen) and app.screen.view.gpu_latest)
        mon = app.screen
        gpu = mon.query_one("#monitor-gpu", GpuPane)
        assert [g.index for g in gpu.report.gpus] == [0, 1] and gpu.report.gpus[0].name == "NVIDIA H100 80GB HBM3"
        samples = len(read_events(job_dir / "events.jsonl", ["gpu"]))
        assert samples >= 5 and len(gpu.history[0]) == len(gpu.history[1]) == samples
        assert "peak 37.50 GiB allocated by torch" in str(mon.query_one("#monitor-sparks", Static).render())
    assert job_dir.name == MULTI_GPU


async def test_export_starts_an_export_job(fake_ws, make_app, monkeypatch):
    # the export itself is another engineer's job target; here only the launch matters, so run the fake job
    monkeypatch.setitem(__import__("ftbench.core.jobs").core.jobs.JOB_TARGETS, "export", "fakejob:run")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))
    app = make_app(fake_ws)
    notes: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
        await wait_until(pilot, lambda: isinstance(app.screen, JobsScreen) and app.screen.rows)
        await pilot.press("g")  # not a Jobs key: nothing happens
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen) and app.screen.status)
        await pilot.press("g")
        await wait_until(pilot, lambda: notes)
        assert "still going" in notes[-1]  # a running run is not exported
        await pilot.press("escape", "down", "down", "enter")
        await wait_until(
            pilot, lambda: isinstance(app.screen, MonitorScreen) and app.screen.status.get("state") == "succeeded"
        )
        await pilot.press("g")
        await wait_until(pilot, lambda: len(notes) == 2)
        assert notes[-1].startswith("Export started")
    exports = [d for d in fake_ws.exports_dir.iterdir() if not d.name.startswith("2025")]
    assert len(exports) == 1
    spec = json.loads((exports[0] / "job.json").read_text())
    assert spec["kind"] == "export"
    assert spec["params"] == {
        "source": str(fake_ws.runs_dir / "20251122-070000-sft-alpaca-lora-r8-c3d4"),
        "quants": ["q4_k_m", "q8_0"],
    }
    from ftbench.core.job_stop import stop_job
    from ftbench.core.jobs import Job

    stop_job(Job(exports[0], read_status(exports[0])), grace_s=10)


async def test_export_with_eval_checks_the_file_and_passes_it_to_the_export_job(
    fake_ws, make_app, monkeypatch, tmp_path
):
    from ftbench.tui.screens.export_dialog import ExportEvalScreen

    monkeypatch.setitem(__import__("ftbench.core.jobs").core.jobs.JOB_TARGETS, "export", "fakejob:run")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))
    no_refs = tmp_path / "prompts.jsonl"
    no_refs.write_text('{"prompt": "Say hi"}\n', encoding="utf-8")
    good = fake_ws.root / "datasets" / "sentiment-eval.jsonl"
    good.parent.mkdir(exist_ok=True)
    good.write_text('{"prompt": "Great toaster!", "reference": "Sentiment: positive"}\n', encoding="utf-8")
    app = make_app(fake_ws)
    notes: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
        await wait_until(pilot, lambda: isinstance(app.screen, JobsScreen) and app.screen.rows)
        await pilot.press("down", "down", "enter")
        await wait_until(
            pilot, lambda: isinstance(app.screen, MonitorScreen) and app.screen.status.get("state") == "succeeded"
        )
        await pilot.press("G")
        await wait_until(pilot, lambda: isinstance(app.screen, ExportEvalScreen))
        dialog = app.screen
        dialog.query_one("#export-eval", Input).value = str(no_refs)
        await pilot.press("enter")
        error = dialog.query_one("#export-error", Static)
        await wait_until(pilot, lambda: "no reference" in str(error.render()), what="the refusal")
        assert isinstance(app.screen, ExportEvalScreen)  # stays open to fix it
        dialog.query_one("#export-eval", Input).value = "datasets/sentiment-eval.jsonl"  # workspace-relative
        dialog.query_one("#export-label", Input).value = r"Sentiment: (\w+)"
        await pilot.press("enter")
        await wait_until(pilot, lambda: notes, what="the export")
        assert isinstance(app.screen, MonitorScreen) and "with an eval of each quant" in notes[-1]
    exports = [d for d in fake_ws.exports_dir.iterdir() if not d.name.startswith("2025")]
    spec = json.loads((exports[0] / "job.json").read_text())
    assert spec["params"] == {
        "source": str(fake_ws.runs_dir / "20251122-070000-sft-alpaca-lora-r8-c3d4"),
        "quants": ["q4_k_m", "q8_0"],
        "eval": str(good.resolve()),
        "eval_label_pattern": r"Sentiment: (\w+)",
    }
    from ftbench.core.job_stop import stop_job
    from ftbench.core.jobs import Job

    stop_job(Job(exports[0], read_status(exports[0])), grace_s=10)


async def test_live_job_checkpoint_and_stop_from_the_monitor(workspace, make_app):
    """A real detached job process: the monitor follows it, checkpoint-now and stop reach it."""
    here = str(Path(__file__).parent)
    job = start_job(
        workspace, "train", "fake-live", params={"steps": 600}, target="fakejob:run", env={"PYTHONPATH": here}
    )
    try:
        app = make_app(workspace)
        async with app.run_test(size=SIZE) as pilot:
            mon = await open_monitor(app, pilot)
            await wait_until(pilot, lambda: mon.status.get("state") == "running", what="job running")
            await pilot.press("c")
            await wait_until(pilot, lambda: mon.view.checkpoints, timeout=15, what="checkpoint event")
            assert "checkpoint saved" in " ".join(mon.query_one("#monitor-log", Log).lines)
            await pilot.press("s")
            await wait_until(pilot, lambda: mon.status.get("state") == "stopped", timeout=20, what="stopped")
            steps = len(mon.view.loss)
            assert 0 < steps < 600
            stats = str(mon.query_one("#monitor-stats", Static).render())
            assert "■ stopped" in stats
    finally:
        wait_job(job, timeout_s=1)
        from ftbench.core.job_stop import stop_job

        stop_job(job, grace_s=5)


def test_render_chart_log_scale_and_shape():
    pts = [(float(i), 10.0 ** (-i / 10)) for i in range(1, 41)]
    text = render_chart([Series("loss", pts)], 40, 10).plain.splitlines()
    assert len(text) == 10 and all(len(line) <= 40 for line in text)
    assert text[0].strip().startswith("0.794")  # top label: the largest value
    assert "step 1 … 40" in text[-1]
    log_text = render_chart([Series("loss", pts)], 40, 10, log_y=True).plain.splitlines()
    assert "log" in log_text[-1]
    # on a log axis a power law is a straight line: every column holds dots, one run of cells per row
    assert render_chart([], 40, 10).plain.startswith("waiting")


async def test_resume_continues_the_same_run(fake_ws, make_app, monkeypatch):
    """Resume (r) on the failed run: a new attempt in the same folder; the curve keeps its history."""
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))  # the job runs tests/tui/fakejob.py
    failed = fake_ws.runs_dir / FAILED
    spec = json.loads((failed / "job.json").read_text())
    (failed / "job.json").write_text(
        json.dumps({**spec, "target": "fakejob:run"})
    )  # no real model in the fake workspace
    killed = [(float(e["step"]), e["loss"]) for e in recorded(FAILED, "train")]
    resume_at = recorded(FAILED, "checkpoint")[-1]["step"]
    app = make_app(fake_ws)
    notes: list[str] = []
    try:
        async with app.run_test(size=SIZE) as pilot:
            app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
            app.open_monitor(failed)
            await wait_until(
                pilot, lambda: isinstance(app.screen, MonitorScreen) and len(app.screen.view.loss) == len(killed)
            )
            mon = app.screen
            await pilot.press("t")  # no adapter in this run: says so instead of opening chat
            await wait_until(pilot, lambda: notes)
            assert notes[-1] == "This run has no adapter or model yet."
            await pilot.press("r")
            await wait_until(pilot, lambda: notes[-1].startswith("Resumed"), what="resume notification")
            assert notes[-1].endswith("as attempt 2.")
            await wait_until(
                pilot,
                lambda: 2 in mon.view.attempts and mon.view.loss[-1][0] > killed[-1][0] + 2,
                timeout=20,
                what="attempt 2 past attempt 1's last step",
            )
            # one curve: attempt 1 up to its checkpoint, then attempt 2 (which restarted there) for every later step
            steps = [s for s, _ in mon.view.loss]
            assert steps == sorted(set(steps))
            assert [p for p in mon.view.loss if p[0] <= resume_at] == [p for p in killed if p[0] <= resume_at]
            assert all(v == 2.0 / (1 + s / 10) for s, v in mon.view.loss if s > resume_at)  # the fake job's values
            assert "attempt 2" in str(mon.query_one("#monitor-stats", Static).render())
    finally:
        from ftbench.core.job_stop import stop_job
        from ftbench.core.jobs import find_job

        stop_job(find_job(fake_ws, str(failed)), grace_s=10)


async def test_vanished_process_shows_as_failed(fake_ws, make_app):
    """A running job whose process dies without a word turns `failed` in the monitor, with the log's last line."""
    import subprocess

    from fakes import write_job

    from ftbench.core.jobs import proc_start_time

    proc = subprocess.Popen(["sleep", "60"])
    try:
        job_dir = write_job(
            fake_ws,
            "20251122-091000-sft-vanish-7777",
            "train",
            "vanish",
            "running",
            60,
            events=[],
            log="[09:10:00] loading model\n",
        )
        status = json.loads((job_dir / "status.json").read_text())
        status.update(pid=proc.pid, pgid=proc.pid, proc_start=proc_start_time(proc.pid))
        (job_dir / "status.json").write_text(json.dumps(status))
        app = make_app(fake_ws)
        async with app.run_test(size=SIZE) as pilot:
            app.open_monitor(job_dir)
            await wait_until(
                pilot, lambda: isinstance(app.screen, MonitorScreen) and app.screen.status.get("state") == "running"
            )
            mon = app.screen
            proc.kill()
            proc.wait()
            await wait_until(
                pilot, lambda: mon.status.get("state") == "failed", timeout=15, what="failed after the process died"
            )
            stats = str(mon.query_one("#monitor-stats", Static).render())
            assert "process vanished" in stats and "loading model" in stats
    finally:
        proc.kill()


async def test_chat_with_adapter_opens_chat_screen(fake_ws, make_app):
    """`t` hands the run's adapter folder to the Chat screen; its own check speaks (no server starts here)."""
    run = fake_ws.runs_dir / "20251122-070000-sft-alpaca-lora-r8-c3d4"
    (run / "adapter").mkdir()  # an adapter folder without adapter_config.json: chat refuses it, in words
    app = make_app(fake_ws)
    notes: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
        app.open_monitor(run)
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen) and app.screen.status)
        assert app.screen.adapter_path() == run / "adapter"
        await pilot.press("t")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ChatScreen" and notes, what="chat screen")
        assert "adapter_config.json" in notes[-1]


async def test_chat_and_export_a_checkpoint_of_a_running_run(fake_ws, make_app, monkeypatch):
    """A run still going has checkpoints but no adapter/: its checkpoint list opens one in chat, and exports one."""
    from test_chat_screen import FrozenClient

    from ftbench.tui.screens.chat import ChatScreen

    monkeypatch.setattr(ChatScreen, "_default_client", lambda self, on_event: FrozenClient(on_event, {}))
    base = fake_ws.models_dir / "tiny-base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    run = fake_ws.runs_dir / RUNNING
    checkpoint = run / "checkpoints" / "checkpoint-100"
    checkpoint.mkdir(parents=True)
    (checkpoint / "adapter_config.json").write_text(
        json.dumps({"peft_type": "LORA", "base_model_name_or_path": "models/tiny-base"})
    )
    (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": 100, "log_history": []}))
    with EventWriter(run / "events.jsonl") as writer:  # as the trainer announces a checkpoint it saved
        writer.emit("checkpoint", step=100, path="checkpoints/checkpoint-100")
    app = make_app(fake_ws)
    notes: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
        app.open_monitor(run)
        await wait_until(
            pilot, lambda: isinstance(app.screen, MonitorScreen) and app.screen.checkpoint_names(), what="checkpoints"
        )
        mon = app.screen
        assert not (run / "adapter").exists() and mon.adapter_path() == checkpoint  # no final weights yet
        listing = mon.query_one("#monitor-checkpoints", OptionList)
        listing.focus()
        listing.highlighted = mon.checkpoint_names().index("checkpoint-100")  # the recorded run has its own too
        await pilot.pause()
        assert mon.selected_checkpoint() == "checkpoint-100"
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, ChatScreen) and len(app.screen.transcript.variants) == 2,
            what="chat columns",
        )
        variants = {v.name: (v.kind, v.path, v.base) for v in app.screen.transcript.variants}
        assert variants == {
            "tiny-base": ("hf", str(base), ""),
            "sft-alpaca-lora-a1b2@checkpoint-100": ("adapter", str(checkpoint), str(base)),
        }
    # Export from the list while the run is running: an export job of exactly that checkpoint.
    started: list[tuple] = []
    monkeypatch.setattr("ftbench.core.jobs.start_job", lambda *args, **kw: started.append(args))
    app = make_app(fake_ws)
    async with app.run_test(size=SIZE) as pilot:
        app.open_monitor(run)
        await wait_until(
            pilot, lambda: isinstance(app.screen, MonitorScreen) and app.screen.checkpoint_names(), what="checkpoints"
        )
        listing = app.screen.query_one("#monitor-checkpoints", OptionList)
        listing.focus()
        listing.highlighted = app.screen.checkpoint_names().index("checkpoint-100")
        await pilot.pause()
        await pilot.press("g")
        await wait_until(pilot, lambda: started, what="export job")
    [(_, kind, name, params, meta)] = started
    assert (kind, name, params["source"], meta["checkpoint"]) == (
        "export",
        "sft-alpaca-lora-checkpoint-100",
        str(checkpoint),
        "checkpoint-100",
    )
