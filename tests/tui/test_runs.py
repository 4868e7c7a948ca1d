"""The Runs screen: one row per training run, filter, sort, pick two to overlay and diff recipes."""

from __future__ import annotations

import json

from fakes import FIXTURES, RUNNING, SUCCEEDED
from helpers import wait_until
from textual.widgets import DataTable, Input

from ftbench.tui.screens.monitor import MonitorScreen
from ftbench.tui.screens.runs import RunsScreen
from ftbench.tui.widgets.job_list import human_duration
from ftbench.tui.widgets.loss_chart import LossChart
from ftbench.tui.widgets.run_summary import matches, recipe_diff, sort_rows

SIZE = (120, 40)


def names(screen: RunsScreen) -> list[str]:
    return [r["name"] for r in screen.rows]


async def open_runs(app, pilot) -> RunsScreen:
    await pilot.press("2")
    await wait_until(pilot, lambda: isinstance(app.screen, RunsScreen) and len(app.screen.rows) == 3, what="three runs")
    return app.screen


async def test_rows_filter_sort(fake_ws, make_app):
    app = make_app(fake_ws)
    async with app.run_test(size=SIZE) as pilot:
        runs = await open_runs(app, pilot)
        assert names(runs) == ["sft-alpaca-lora", "sft-alpaca-lora-r8", "cls-imdb-lora"]  # exports/demo are not runs
        by_name = {r["name"]: r for r in runs.rows}
        r8 = by_name["sft-alpaca-lora-r8"]
        assert (r8["task"], r8["method"], r8["model"], r8["dataset"]) == (
            "sft",
            "lora",
            "smollm2-135m-instruct",
            "alpaca.jsonl",
        )
        recorded = json.loads((FIXTURES / SUCCEEDED / "status.json").read_text())
        assert r8["duration"] == human_duration(recorded["ended_at"] - recorded["started_at"])
        assert r8["best_eval"] == f"{min(v for _, v in r8['eval_loss']):.4f}"
        assert by_name["cls-imdb-lora"]["task"] == "classification"
        table = runs.query_one("#runs-table", DataTable)
        assert set(str(table.get_cell(r8["id"], "spark"))) <= set("▁▂▃▄▅▆▇█")

        await pilot.press("slash")
        assert runs.query_one("#runs-filter", Input).has_focus
        await pilot.press(*"state:succeeded")
        await wait_until(pilot, lambda: names(runs) == ["sft-alpaca-lora-r8"])
        await pilot.press("enter")  # submit: back to the table, filter kept
        assert table.has_focus and table.row_count == 1
        await pilot.press("slash", "escape", "escape")  # clear, then back to the table
        await wait_until(pilot, lambda: len(runs.rows) == 3)

        await pilot.press("o")  # created -> name
        assert runs.sort_key == "name" and names(runs) == ["cls-imdb-lora", "sft-alpaca-lora", "sft-alpaca-lora-r8"]
        await pilot.press("o")  # best eval, lowest first
        best = sorted((r["best_value"], r["name"]) for r in runs.rows if r["best_value"] is not None)
        assert runs.sort_key == "best_eval" and names(runs)[: len(best)] == [n for _, n in best]
        assert best[0][1] == "cls-imdb-lora"  # a 2-class cross-entropy sits far below an LM's loss


async def test_pick_two_overlays_and_diffs(fake_ws, make_app):
    app = make_app(fake_ws)
    async with app.run_test(size=SIZE) as pilot:
        runs = await open_runs(app, pilot)
        await pilot.press("space", "down", "space")
        await wait_until(pilot, lambda: len(runs.picked) == 2)
        chart = runs.query_one("#runs-overlay", LossChart)
        assert [s.name for s in chart.series] == ["sft-alpaca-lora", "sft-alpaca-lora-r8"]
        assert runs.diff_rows == [
            ("method.r", [16, 8]),
            ("name", ["sft-alpaca-lora", "sft-alpaca-lora-r8"]),
            ("training.lr", [0.002, 0.001]),
            ("training.max_steps", [400, 48]),
        ]  # same task, model and data: not listed
        await pilot.press("space")  # unpick: back to one run
        assert runs.diff_rows == [] and len(chart.series) == 1
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen))
        assert app.screen.job_dir.name == "20251122-070000-sft-alpaca-lora-r8-c3d4"


async def test_compare_shows_generation_eval_scores(fake_ws, make_app):
    """A recipe `eval:` section's gen_* scores (the newest per run) get rows of their own under the recipe diff."""
    for run, accuracy, step in ((RUNNING, 40.0, 20), (RUNNING, 62.5, 40), (SUCCEEDED, 87.5, 48)):
        with open(fake_ws.runs_dir / run / "events.jsonl", "a", encoding="utf-8") as f:
            event = {"v": 1, "t": 1.0, "type": "eval", "attempt": 1, "step": step, "gen_label_accuracy": accuracy}
            f.write(json.dumps({**event, "gen_rougeL": accuracy / 2, "gen_perplexity": 3.14159}) + "\n")
    app = make_app(fake_ws)
    async with app.run_test(size=SIZE) as pilot:
        runs = await open_runs(app, pilot)
        await pilot.press("space")
        assert runs.gen_rows == []  # one run: nothing to compare
        await pilot.press("down", "space")
        await wait_until(pilot, lambda: len(runs.picked) == 2)
        assert runs.gen_rows == [
            ("label_accuracy", ["62.5", "87.5"]),
            ("rougeL", ["31.2", "43.8"]),
            ("perplexity", ["3.14", "3.14"]),
        ]


def test_pure_helpers():
    rows = [
        {
            "name": "b",
            "id": "2",
            "state": "running",
            "task": "sft",
            "model": "smol",
            "dataset": "d",
            "method": "lora",
            "best_value": 0.5,
            "duration_s": 10,
            "created_at": 2,
        },
        {
            "name": "a",
            "id": "1",
            "state": "failed",
            "task": "ner",
            "model": "bert",
            "dataset": "conll",
            "method": "full",
            "best_value": None,
            "duration_s": 30,
            "created_at": 1,
        },
    ]
    assert [r["id"] for r in rows if matches(r, "task:ner")] == ["1"]
    assert [r["id"] for r in rows if matches(r, "smol lora")] == ["2"]
    assert [r["id"] for r in rows if matches(r, "")] == ["2", "1"]
    assert [r["id"] for r in sort_rows(rows, "best_eval")] == ["2", "1"]
    assert [r["id"] for r in sort_rows(rows, "duration")] == ["1", "2"]
    diff = recipe_diff([{"a": {"b": 1, "c": 2}, "x": 1}, {"a": {"b": 1, "c": 3}}])
    assert diff == [("a.c", [2, 3]), ("x", [1, None])]
