"""Pilot flows on the app shell and the Jobs screen, against frozen job folders."""

from __future__ import annotations

import json
import re

from fakes import DEMO, FAILED, FAKE_GPUS, FIXTURES, NOW, RUNNING, write_job
from helpers import wait_until
from textual.widgets import DataTable, Log, Static

from ftbench.core.workspace import Workspace
from ftbench.tui.screens.help import HelpScreen
from ftbench.tui.screens.jobs import JobsScreen
from ftbench.tui.widgets.gpu_pane import GpuPane
from ftbench.tui.widgets.job_list import human_duration

SIZE = (120, 36)


def recorded_status(job_id: str) -> dict:
    return json.loads((FIXTURES / job_id / "status.json").read_text())


def table_ids(app) -> list[str]:
    table = app.screen.query_one("#jobs-table", DataTable)
    return [str(k.value) for k in table.rows]


def cell(app, row_id: str, column: str) -> str:
    return str(app.screen.query_one("#jobs-table", DataTable).get_cell(row_id, column))


async def test_jobs_listed_newest_first_with_states_in_words(fake_ws, make_app):
    app = make_app(fake_ws)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: len(table_ids(app)) == 5, what="five jobs")
        assert isinstance(app.screen, JobsScreen)
        ids = table_ids(app)
        assert ids[0] == RUNNING and ids[-1] == DEMO
        states = {i: cell(app, i, "state") for i in ids}
        assert states[ids[0]] == "▶ running"
        assert states[FAILED] == "✗ failed"
        assert states[DEMO] == "■ stopped"
        progress = recorded_status(RUNNING)["progress"]  # what the real trainer wrote: step of max_steps, ETA
        assert progress["phase"] == "training" and progress["total"] > progress["done"] > 0
        assert (
            cell(app, ids[0], "progress")
            == f"step {progress['done']}/{progress['total']} ETA {human_duration(progress['eta_s'])}"
        )
        assert cell(app, FAILED, "progress").startswith("step ") and "ETA" not in cell(app, FAILED, "progress")
        assert cell(app, ids[0], "age") == "5m"  # frozen clock: created 300 s before NOW
        assert app.sub_title == str(fake_ws.root)


async def test_selected_job_log_and_events_tail(fake_ws, make_app):
    app = make_app(fake_ws)
    async with app.run_test(size=SIZE) as pilot:
        log = app.screen.query_one("#job-log", Log)
        events = app.screen.query_one("#job-events", Log)
        recorded_log = (FIXTURES / RUNNING / "log.txt").read_text().splitlines()
        await wait_until(pilot, lambda: log.line_count >= len(recorded_log), what="log tail of the first job")
        assert log.lines[-1] == recorded_log[-1]
        last_eval = [
            json.loads(line)
            for line in (FIXTURES / RUNNING / "events.jsonl").read_text().splitlines()
            if '"type": "eval"' in line
        ][-1]
        assert any(line.startswith(f"eval       step={last_eval['step']} epoch=") for line in events.lines)
        # appended lines arrive incrementally, without re-reading the file
        job_dir = fake_ws.runs_dir / RUNNING
        with open(job_dir / "log.txt", "a") as f:
            f.write("[08:12:00] step 120 loss 0.88\n")
        with open(job_dir / "events.jsonl", "a") as f:
            f.write(json.dumps({"t": NOW, "type": "checkpoint", "attempt": 2, "step": 121, "path": "ck"}) + "\n")
        before = log.line_count
        await wait_until(pilot, lambda: log.line_count == before + 1, what="the appended log line")
        assert log.lines[-1].endswith("step 120 loss 0.88")
        await wait_until(pilot, lambda: events.lines[-1].startswith("checkpoint (attempt 2) step=121"))
        # selecting another job swaps both panes to it
        await pilot.press("down", "down", "down")
        failed_log = (FIXTURES / FAILED / "log.txt").read_text().splitlines()
        await wait_until(pilot, lambda: log.lines and log.lines[-1] == failed_log[-1], what="failed job's log")
        info = str(app.screen.query_one("#job-info", Static).render())
        error = recorded_status(FAILED)["error"]  # the real run was killed (-9): the runner says its process vanished
        assert "process vanished" in error["message"] and error["message"] in info and f"hint: {error['hint']}" in info


async def test_list_updates_live_and_only_changed_cells(fake_ws, make_app):
    app = make_app(fake_ws)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: len(table_ids(app)) == 5)
        write_job(fake_ws, "20251122-090000-sft-new-ffff", "train", "sft-new", "starting", 10)
        await wait_until(pilot, lambda: len(table_ids(app)) == 6, what="the new job")
        assert table_ids(app)[0] == "20251122-090000-sft-new-ffff"
        assert cell(app, "20251122-090000-sft-new-ffff", "state") == "◌ starting"
        status_path = fake_ws.runs_dir / "20251122-090000-sft-new-ffff" / "status.json"
        status = json.loads(status_path.read_text())
        status.update(state="succeeded", progress={"phase": "training", "done": 5, "total": 5, "eta_s": 0.0})
        status_path.write_text(json.dumps(status))
        await wait_until(pilot, lambda: cell(app, "20251122-090000-sft-new-ffff", "state") == "✓ succeeded")
        assert cell(app, "20251122-090000-sft-new-ffff", "progress") == "step 5/5"  # no ETA once it has ended


async def test_screens_help_and_palette(fake_ws, make_app):
    app = make_app(fake_ws)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "RunsScreen", what="Runs screen")
        await pilot.press("1")
        await wait_until(pilot, lambda: isinstance(app.screen, JobsScreen))
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        rows = app.screen.rows
        ids = {r[2] for r in rows}
        assert {"jobs_stop", "jobs_checkpoint", "jobs_monitor", "quit", "help", "screen_jobs", "screen_runs"} <= ids
        assert ("s", "Stop", "jobs_stop") in rows
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, JobsScreen))
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert {"Go to Jobs", "Go to Runs", "Stop", "Checkpoint now", "Monitor", "Help", "Quit"} <= set(titles)


async def test_keymap_from_workspace_config(tmp_path, make_app):
    ws = Workspace.open(tmp_path / "ws")
    ws.config_path.write_text(ws.config_path.read_text() + 'help = "h"\nscreen_runs = "f2"\n')
    ws = Workspace.open(ws.root)
    app = make_app(ws)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("h")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), what="help on the remapped key")
        assert ("h", "Help", "help") in app.screen.rows
        await pilot.press("escape", "f2")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "RunsScreen")


async def test_gpu_pane_without_and_with_gpus(fake_ws, make_app):
    app = make_app(fake_ws)
    async with app.run_test(size=SIZE) as pilot:
        pane = app.screen.query_one(GpuPane)
        await wait_until(pilot, lambda: pane.report is not None)
        assert "no NVIDIA GPU (no NVIDIA driver)" in str(pane.render())
    app = make_app(fake_ws, gpu=FAKE_GPUS)
    async with app.run_test(size=SIZE) as pilot:
        pane = app.screen.query_one(GpuPane)
        await wait_until(pilot, lambda: pane.report is not None)
        text = str(pane.render())
        assert "GPU0 NVIDIA H100 80GB HBM3" in text and "40.0/80.0 GiB" in text and "util  87%" in text
        assert "75.0/80.0 GiB  94%" in text and "655/700 W" in text


async def test_gpu_sampler_exception_free_on_real_machine(fake_ws):
    """The real sampler on this machine (no NVIDIA driver in CI) still gives a pane, not a crash."""
    from ftbench.tui.app import FtbenchApp

    app = FtbenchApp(fake_ws, poll_s=0.1)
    async with app.run_test(size=SIZE) as pilot:
        pane = app.screen.query_one(GpuPane)
        await wait_until(pilot, lambda: pane.report is not None)
        assert pane.report.available or "no NVIDIA GPU" in str(pane.render())


async def test_checkpoint_on_finished_job_explains(fake_ws, make_app):
    app = make_app(fake_ws)
    notes: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
        await wait_until(pilot, lambda: len(table_ids(app)) == 5)
        await pilot.press("down", "down")  # the succeeded run
        await pilot.press("c")
        await wait_until(pilot, lambda: notes, what="a notification")
        assert "is succeeded, not running" in notes[-1] and "Only running jobs take requests" in notes[-1]
        await pilot.press("up", "up", "c")  # the running one: a control file appears
        await wait_until(pilot, lambda: len(notes) == 2)
        assert (fake_ws.runs_dir / "20251122-081000-sft-alpaca-lora-a1b2" / "control" / "checkpoint").is_file()


async def test_hidden_jobs_screen_reads_nothing(fake_ws, make_app, monkeypatch):
    from ftbench.tui.widgets import job_list

    scans: list[float] = []
    real_read = job_list.JobFollower.read_new  # only the Jobs screen tails a job (Runs scans too)
    monkeypatch.setattr(job_list.JobFollower, "read_new", lambda self: scans.append(1) or real_read(self))
    app = make_app(fake_ws)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: len(scans) >= 2)
        await pilot.press("2")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
        await pilot.pause(0.5)  # a scan already under way may finish
        count = len(scans)
        await pilot.pause(0.6)  # six poll periods: a visible screen would scan six more times
        assert len(scans) == count
        await pilot.press("1")
        await wait_until(pilot, lambda: len(scans) > count, what="scanning again once visible")


async def test_finished_export_shows_its_result_card(tmp_path, make_app):
    ws = Workspace.open(tmp_path / "ws")
    result = {
        "source": "sft-sentiment",
        "files": [
            {"path": "exports/x/sft-sentiment-Q4_K_M.gguf", "type": "Q4_K_M", "bytes": 105_000_000, "role": "model"}
        ],
        "verify": [{"type": "q4_k_m", "passed": True, "tokens_match": True, "nmse": 0.038, "top1": 0.9, "kl": 0.091}],
        "commands": {
            "llama.cpp": "llama-cli -m exports/x/sft-sentiment-Q4_K_M.gguf -cnv",
            "ollama": "ollama create x -f Modelfile",
        },
    }
    write_job(ws, "20251122-090000-export-sft-1111", "export", "sft-sentiment", "succeeded", 60, result=result)
    app = make_app(ws)
    async with app.run_test(size=SIZE) as pilot:
        info = app.screen.query_one("#job-info", Static)
        await wait_until(pilot, lambda: "Q4_K_M" in str(info.render()), what="the export card")
        card = str(info.render())
        assert "105.0 MB" in card and re.search(r"verify Q4_K_M +PASS", card) and "KL 9.10e-02" in card
        assert "ollama: ollama create x -f Modelfile" in card
