"""The issue's done-when on the demo workspace: base SmolLM2 vs the sentiment adapter on the sentiment eval file.

The adapter is trained as tests/integration/test_train_demo.py trains it (a few CPU steps of the demo recipe);
`ftbench eval` must show its label accuracy clearly above the base's, and the JSON, the report and the TUI's
table (the same `metrics_table`) must carry the same numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_train_tasks import run_inline

from ftbench.cli import main
from ftbench.core.recipe import load_recipe, resolve_recipe_paths
from ftbench.evaluate.report import metrics_table

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_demo_adapter_label_accuracy_is_clearly_above_the_base(demo_workspace, workspace, capsys):
    recipe = load_recipe(
        REPO / "recipes" / "sft-lora-sentiment.yaml",
        [
            "training.max_steps=4",
            "training.batch_size=2",
            "data.max_length=128",
            "data.eval=null",
            "training.eval_steps=null",
        ],
    )
    run_dir, _ = run_inline(workspace, resolve_recipe_paths(recipe, demo_workspace.root).to_dict())
    capsys.readouterr()  # the inline training logs to stdout as its job process would; only eval's JSON is parsed
    data = demo_workspace.root / "datasets/demo/sentiment-alpaca-eval.jsonl"
    model = demo_workspace.root / "models/smollm2-135m-instruct"
    code = main(
        [
            "eval",
            str(model),
            "--adapter",
            str(run_dir),
            "--data",
            str(data),
            "--limit",
            "16",
            "--max-tokens",
            "8",
            "--label-pattern",
            r"Sentiment: (\w+)",
            "--workspace",
            str(workspace.root),
            "--wait",
            "--json",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads(out)
    base, tuned = (v["metrics"] for v in summary["variants"])
    assert tuned["label_accuracy"] >= base["label_accuracy"] + 30.0, (base, tuned)
    assert summary["best"]["label_accuracy"] == [summary["variants"][1]["name"]]
    job_dir = next(p for p in (workspace.root / "jobs").iterdir() if p.name == summary["id"])
    assert json.loads((job_dir / "metrics.json").read_text()) == summary
    report = (job_dir / "report.md").read_text()
    _, rows, _ = metrics_table(summary)  # what the TUI's Evals screen shows
    for row in rows:
        assert "| " + " | ".join(row) + " |" in report.replace("**", "")
