"""The headless CLI: JSON listings, clear one-line errors, exit codes, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from test_jobs import launch

from ftbench import __version__
from ftbench.cli import main
from ftbench.core.jobs import wait_job


def run_cli(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ftbench.cli", *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_version():
    out = run_cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"ftbench {__version__}"


def test_runs_and_show_json(workspace, capsys):
    job = wait_job(launch(workspace, "quick"), timeout_s=30)
    assert main(["--workspace", str(workspace.root), "runs", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []  # a test job is not a training run
    assert main(["runs", "--all", "--json", "--workspace", str(workspace.root)]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in records] == [job.id] and records[0]["state"] == "succeeded"
    assert main(["-w", str(workspace.root), "show", job.id[:-1], "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["id"] == job.id and shown["result"] == {"answer": 42} and shown["events"] >= 4


def test_logs_and_stop(workspace, capsys):
    job = launch(workspace, "sleeper", seconds=60)
    from test_jobs import wait_for

    wait_for(lambda: (job.dir / "started").exists())
    assert main(["-w", str(workspace.root), "stop", job.id, "--grace", "10"]) == 0
    assert capsys.readouterr().out.strip().endswith(": stopped")
    assert main(["-w", str(workspace.root), "logs", job.id]) == 0
    assert "Job stopped." in capsys.readouterr().out
    assert main(["-w", str(workspace.root), "stop", job.id]) == 0
    assert "already stopped" in capsys.readouterr().out


def test_unknown_job_is_one_sentence_with_hint_and_no_traceback(tmp_path):
    out = run_cli("--workspace", str(tmp_path / "ws"), "show", "does-not-exist")
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if not line.startswith("Created")]
    assert lines[0].startswith("error: No job matches 'does-not-exist'")
    assert lines[1].startswith("hint: ")
    assert "Traceback" not in out.stderr
    debug = run_cli("--workspace", str(tmp_path / "ws"), "show", "nope", "--debug")
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_new_workspace_is_announced(tmp_path):
    out = run_cli("--workspace", str(tmp_path / "fresh"), "runs")
    assert out.returncode == 0
    assert f"Created a new ftbench workspace at {tmp_path / 'fresh'}" in out.stderr
    assert "No runs" in out.stdout
    assert Path(tmp_path / "fresh" / "ftbench.toml").exists()


def test_doctor_json_reports_every_section(tmp_path):
    out = run_cli("--workspace", str(tmp_path / "ws"), "doctor", "--json")
    report = json.loads(out.stdout)
    assert set(report) >= {"packages", "gpu", "cuda", "llama_cpp", "workspace"}
    assert report["packages"]["textual"]
    assert report["gpu"]["available"] in (True, False) and (report["gpu"]["available"] or report["gpu"]["reason"])
    assert report["workspace"]["free_disk_gb"] > 0


def test_runs_table_shows_whole_unique_prefixes_at_80_columns_and_piped(workspace, capsys, monkeypatch):
    """Ids are never cut: the ID column holds each id's shortest unique prefix, whole; other columns wrap."""
    from ftbench.core.jobs import find_job
    from ftbench.core.registry import Registry

    ids = [
        "20261130-021955-run-with-a-long-name-2755",
        "20261130-021955-run-with-a-long-name-9911",
        "20261130-031000-x-0001",
    ]
    for n, job_id in enumerate(ids):
        run = workspace.runs_dir / job_id
        run.mkdir()
        meta = {
            "task": "classification",
            "method": "qlora",
            "model": "models/a-very-long-model-folder-name-instruct-v2",
        }
        status = {
            "id": job_id,
            "kind": "train",
            "name": job_id[16:],
            "state": "succeeded",
            "created_at": 1000.0 + n,
            "meta": meta,
            "result": {"eval_loss": 0.123456},
        }
        (run / "status.json").write_text(json.dumps(status))
    Registry(workspace).rebuild()
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["-w", str(workspace.root), "runs"]) == 0
    table = capsys.readouterr().out
    piped = subprocess.run(
        f"{sys.executable} -m ftbench.cli -w {workspace.root} runs | cat",
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in __import__("os").environ.items() if k != "COLUMNS"},
    )
    assert piped.returncode == 0, piped.stderr
    for out in (table, piped.stdout):
        lines = out.splitlines()
        assert max(len(line) for line in lines) <= 80
        first_column = [line.split()[0] for line in lines if line.startswith("2026")]
        assert first_column == [
            "20261130-03",
            "20261130-021955-run-with-a-long-name-9",
            "20261130-021955-run-with-a-long-name-2",
        ]
        for prefix in first_column:  # each one is usable as is
            assert find_job(workspace, prefix).id.startswith(prefix)
    assert main(["-w", str(workspace.root), "runs", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert sorted(r["id"] for r in records) == sorted(ids) and records[0]["prefix"] == "20261130-03"
    assert main(["-w", str(workspace.root), "show", "last~1", "--json"]) == 0  # the handles work wherever an id does
    assert json.loads(capsys.readouterr().out)["id"] == ids[1]
