"""Screen 7, Evals: an eval job folder written by the eval job's own `write_outputs` (cached answers, no model),
shown with the same numbers as metrics.json, the best per column marked, and examples by disagreement."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import wait_until
from rich.console import Console
from textual.widgets import DataTable

from ftbench.chat.protocol import VariantSpec
from ftbench.evaluate.evalset import EvalItem
from ftbench.evaluate.job import CacheWriter, cache_path, write_items, write_outputs
from ftbench.tui.screens.guide import remember_dismissed

LABELS = ["positive", "negative", "neutral", "positive"]
BASE_ANSWERS = ["I think it is great", "Sentiment: negative", "It is fine", "Good product"]
TUNED_ANSWERS = ["Sentiment: positive", "Sentiment: negative", "Sentiment: neutral", "Sentiment: negative"]


def write_succeeded_status(job_dir: Path, created_at: float, variants: list[str]) -> None:
    """The status.json of a finished 8-row eval job over `variants`."""
    status = {
        "id": job_dir.name,
        "kind": "eval",
        "state": "succeeded",
        "name": "reviews-2-variants",
        "created_at": created_at,
        "meta": {"variants": variants},
        "progress": {"done": 8, "total": 8},
    }
    (job_dir / "status.json").write_text(json.dumps(status))


def make_eval_job(ws_root: Path) -> tuple[Path, dict]:
    job_dir = ws_root / "jobs" / "20261130-120000-eval-sentiment-ab12"
    job_dir.mkdir(parents=True)
    items = [
        EvalItem(f"{i:05d}-x", [{"role": "user", "content": f"Review {i}"}], [f"Sentiment: {label}"])
        for i, label in enumerate(LABELS)
    ]
    write_items(job_dir, items)
    specs = [VariantSpec("base", "hf", "/m/base"), VariantSpec("tuned", "adapter", "/r/adapter", base="/m/base")]
    for index, (spec, answers) in enumerate(zip(specs, [BASE_ANSWERS, TUNED_ANSWERS], strict=True)):
        writer = CacheWriter(cache_path(job_dir, index, spec.name))
        writer.write(
            [
                {"id": item.id, "prediction": a, "gen_tokens": 4, "finish": "stop", "nll": 4.0 + index, "ref_tokens": 4}
                for item, a in zip(items, answers, strict=True)
            ]
        )
        writer.close()
    params = {
        "label_pattern": r"Sentiment: (\w+)",
        "gen": {"max_new_tokens": 8},
        "batch_size": 4,
        "data_label": "reviews.jsonl",
    }
    summary = write_outputs(job_dir, items, specs, params, job_dir.name)
    write_succeeded_status(job_dir, created_at=1.0, variants=["base", "tuned"])
    return job_dir, summary


async def open_evals(pilot, rows: int) -> None:
    """Screen 7, once the eval's `rows` examples are listed."""
    await pilot.press("7")
    await wait_until(
        pilot,
        lambda: (
            pilot.app.screen.query("#evals-examples")
            and pilot.app.screen.query_one("#evals-examples", DataTable).row_count == rows
        ),
        what="the eval's examples",
    )


async def test_evals_screen_shows_the_report_numbers_and_sorts_by_disagreement(tmp_path, make_app):
    from ftbench.core.workspace import Workspace

    ws = Workspace.open(tmp_path / "ws")
    _, summary = make_eval_job(ws.root)
    tuned = next(v for v in summary["variants"] if v["name"] == "tuned")["metrics"]
    base = next(v for v in summary["variants"] if v["name"] == "base")["metrics"]
    assert (tuned["label_accuracy"], base["label_accuracy"]) == (75.0, 25.0)

    remember_dismissed(ws)  # no first-run guide over the Jobs screen: this test is about Evals
    app = make_app(ws)
    async with app.run_test(size=(140, 40)) as pilot:
        await open_evals(pilot, rows=4)
        screen = app.screen
        assert screen.summary == summary  # the screen shows metrics.json, the file the CLI prints
        console = Console(width=160, record=True)
        console.print(screen.metrics_renderable(screen.summary))
        lines = console.export_text().splitlines()
        tuned_line = next(line for line in lines if line.startswith("tuned"))
        base_line = next(line for line in lines if line.startswith("base"))
        assert "75.00*" in tuned_line and "25.00 " in base_line + " "  # best label accuracy marked, only there
        examples = screen.query_one("#evals-examples", DataTable)
        first = [str(c) for c in examples.get_row_at(0)]
        # row 0 and 2: base answers outside the format, tuned right -> the largest disagreement first
        assert first[0] in ("00000", "00002") and first[1] == "1.05"
        last = [str(c) for c in examples.get_row_at(3)]
        assert last[0] == "00001"  # both answered "Sentiment: negative": no disagreement
        await pilot.press("d")
        assert [str(examples.get_row_at(i)[0]) for i in range(4)] == ["00000", "00001", "00002", "00003"]


def make_encoder_eval_job(ws_root: Path) -> dict:
    """Two classification runs' cached predictions, scored by the encoder eval's own `write_outputs`."""
    from ftbench.evaluate.encoder_inputs import EncoderVariant
    from ftbench.evaluate.encoder_job import write_outputs as write_encoder_outputs

    job_dir = ws_root / "jobs" / "20261130-130000-eval-reviews-cd34"
    job_dir.mkdir(parents=True)
    gold = ["positive", "negative", "positive", "negative"]
    items = [
        {"id": f"{i:05d}-y", "source": "reviews.jsonl", "number": i + 1, "row": {"text": f"review {i}", "label": g}}
        for i, g in enumerate(gold)
    ]
    info = {"task": "classification", "labels": ["negative", "positive"], "multi_label": False}
    variants = [
        EncoderVariant("lora", "/r/a/adapter", "/r/a", info),
        EncoderVariant("full", "/r/b/model", "/r/b", info),
    ]
    answers = [["positive", "negative", "positive", "positive"], ["negative", "negative", "negative", "negative"]]
    for index, (variant, labels) in enumerate(zip(variants, answers, strict=True)):
        writer = CacheWriter(cache_path(job_dir, index, variant.name))
        writer.write([{"id": item["id"], "result": {"label": a}} for item, a in zip(items, labels, strict=True)])
        writer.close()
    params = {"task": "classification", "data_label": "reviews.jsonl", "batch_size": 16}
    summary = write_encoder_outputs(job_dir, items, variants, params, job_dir.name)
    write_succeeded_status(job_dir, created_at=2.0, variants=["lora", "full"])
    return summary


async def test_evals_screen_shows_an_encoder_eval_with_labels_per_variant(tmp_path, make_app):
    from ftbench.core.workspace import Workspace

    ws = Workspace.open(tmp_path / "ws")
    summary = make_encoder_eval_job(ws.root)
    lora, full = (v["metrics"] for v in summary["variants"])
    assert (lora["accuracy"], full["accuracy"]) == (0.75, 0.5)
    assert full["f1_macro"] == (2 / 3 + 0) / 2  # negative: P 0.5 R 1; positive never predicted

    remember_dismissed(ws)  # no first-run guide over the Jobs screen: this test is about Evals
    app = make_app(ws)
    async with app.run_test(size=(140, 40)) as pilot:
        await open_evals(pilot, rows=4)
        screen = app.screen
        assert screen.summary == summary
        console = Console(width=160, record=True)
        console.print(screen.metrics_renderable(screen.summary))
        lines = console.export_text().splitlines()
        assert lines[0].split() == ["variant", "accuracy", "F1", "macro", "F1", "micro"]
        assert "0.7500*" in next(line for line in lines if line.startswith("lora"))
        examples = screen.query_one("#evals-examples", DataTable)
        # row 0 and 2: lora right, full wrong -> disagreement first; each cell is "score label"
        first = [str(c) for c in examples.get_row_at(0)]
        assert first[0] in ("00000", "00002") and first[3] == "positive"
        assert first[4:] == ["1.00 positive", "0.00 negative"]
