"""The TUI and the CLI must never import a heavy ML library: start-up over SSH has to feel instant.

Run in a fresh interpreter, since this test process may have imported torch for other tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

HEAVY = ("torch", "transformers", "peft", "trl", "datasets", "bitsandbytes", "llama_cpp", "accelerate")

SCRIPT = r"""
import asyncio, json, sys
import ftbench.cli
import ftbench.tui.app
after_import = sorted(m for m in HEAVY if m in sys.modules)

from ftbench.core.workspace import Workspace
from ftbench.tui.app import FtbenchApp

async def drive():
    ws = Workspace.open(sys.argv[1])
    app = FtbenchApp(ws, poll_s=0.05, gpu_interval=0.05)
    async with app.run_test(size=(120, 36)) as pilot:
        for key in [e.key for e in app.available_screens()] + ["1"]:
            await pilot.press(key)
            await pilot.pause(0.1)
        run = next(ws.runs_dir.iterdir(), None)
        if run is not None:
            app.open_monitor(run)
            await pilot.pause(0.3)
        screens = sorted({type(s).__name__ for stack in app._screen_stacks.values() for s in stack})
    return screens

screens = asyncio.run(drive())
print(json.dumps({"after_import": after_import, "after_mount": sorted(m for m in HEAVY if m in sys.modules), "screens": screens}))
"""


def test_no_heavy_imports_in_cli_and_mounted_tui(tmp_path):
    ws = tmp_path / "ws"
    run = ws / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "status.json").write_text(json.dumps({"id": "r1", "kind": "train", "state": "succeeded", "created_at": 1.0}))
    (run / "events.jsonl").write_text(json.dumps({"type": "train", "step": 1, "loss": 1.0}) + "\n")
    code = f"HEAVY = {HEAVY!r}\n" + SCRIPT
    out = subprocess.run(
        [sys.executable, "-c", code, str(ws)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["after_import"] == []
    assert result["after_mount"] == []
    assert {"JobsScreen", "RunsScreen"} <= set(result["screens"])


def test_version_is_fast():
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "ftbench.cli", "--version"], capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - start
    assert out.returncode == 0 and out.stdout.startswith("ftbench ")
    assert elapsed < 3.0, f"`ftbench --version` took {elapsed:.2f}s"
