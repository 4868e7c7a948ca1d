"""`ftbench export RUN --quant ... --eval FILE`: the merged model and each quant scored, a retention line per quant."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("llama_cpp")

from export_models import make_arch_model, make_lora  # noqa: E402
from tinymodels import corpus  # noqa: E402

from ftbench.cli import main  # noqa: E402

N = 8


@pytest.mark.timeout(900)
def test_export_with_eval_writes_the_retention_table(workspace, tmp_path, capsys):
    base = make_arch_model(tmp_path / "base", "llama", hidden_size=256, intermediate_size=512)
    adapter = make_lora(base, tmp_path / "run-adapter")
    lines = corpus(n=2 * N, seed=5)
    data = tmp_path / "eval.jsonl"
    data.write_text(
        "".join(json.dumps({"prompt": lines[2 * i][:50], "reference": lines[2 * i + 1][:30]}) + "\n" for i in range(N))
    )

    no_refs = tmp_path / "no-refs.jsonl"
    no_refs.write_text('{"prompt": "hi"}\n')
    rc = main(["--workspace", str(workspace.root), "export", str(adapter), "--quant", "q8_0", "--eval", str(no_refs)])
    assert rc == 2 and "have no reference" in capsys.readouterr().err
    assert not workspace.exports_dir.exists() or not list(workspace.exports_dir.iterdir())  # refused before any job

    rc = main(
        [
            "--workspace",
            str(workspace.root),
            "export",
            str(adapter),
            "--quant",
            "f16,q4_k_m",
            "--eval",
            str(data),
            "--wait",
        ]
    )
    out = capsys.readouterr()
    assert rc == 0, out.err
    job_dir = next(workspace.exports_dir.iterdir())
    result = json.loads((job_dir / "status.json").read_text())["result"]
    rows = {r["type"]: r for r in result["retention"]}
    assert set(rows) == {"F16", "Q4_K_M"}
    summary = json.loads((job_dir / "eval" / "metrics.json").read_text())
    by_name = {v["name"]: v["metrics"] for v in summary["variants"]}
    predictions = [json.loads(line) for line in (job_dir / "eval" / "predictions.jsonl").read_text().splitlines()]
    for qtype, row in rows.items():
        assert row["metric"] == "rougeL" and row["unit"] == "answers" and row["total"] == N
        ref = by_name["merged"]["rougeL"]
        assert row["kept_pct"] == (pytest.approx(100 * by_name[qtype]["rougeL"] / ref) if ref else None)
        assert row["identical"] == sum(
            p["answers"][qtype]["prediction"] == p["answers"]["merged"]["prediction"] for p in predictions
        )
        assert row["sentence"] in out.out  # the card printed by --wait
    # F16 holds the merged weights to 3 digits: llama.cpp's reference perplexity is the merged model's
    assert rows["F16"]["perplexity"] == pytest.approx(rows["F16"]["reference_perplexity"], rel=1e-2)
    names = {p.name for p in job_dir.iterdir()}
    assert "merged" not in names and "run-adapter-F16.gguf" in names  # merged was kept for the eval only
