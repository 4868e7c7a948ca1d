"""Faults, noise: the bitsandbytes kernel warning and the GGUF de-quantization bar are hidden from the CLI's
stderr, `ftbench logs`/`show` and the TUI's log panes (one filter, core/log_noise.py), and kept in log.txt."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time

from ftbench.cli import main
from ftbench.core.log_noise import shown_lines
from ftbench.core.tail import LineTail

BNB = (
    "Failed to load CPU gemm_4bit_forward from kernels-community: No module named 'kernels'. Please make sure you "
    "already `pip install kernels` and the kernels >= 0.11.1"
)
GGUF_BAR = "Converting and de-quantizing GGUF tensors...:  40%|####      | 12/30 [00:00<00:00, 800.00it/s]"
LOG = ["Loading model", BNB, GGUF_BAR + "\r" + GGUF_BAR.replace("40%", "80%"), "step 1 loss 2.5", GGUF_BAR, "done"]


def write_job(ws, job_id: str = "20261122-000001-noisy-0001"):
    folder = ws.runs_dir / job_id
    folder.mkdir(parents=True)
    status = {
        "id": job_id,
        "kind": "train",
        "state": "succeeded",
        "created_at": time.time(),
        "host": socket.gethostname(),
    }
    (folder / "status.json").write_text(json.dumps(status))
    (folder / "log.txt").write_text("\n".join(LOG) + "\n")
    return folder


def test_the_filter_drops_noise_and_keeps_the_last_state_of_a_progress_line() -> None:
    assert shown_lines(LOG) == ["Loading model", "step 1 loss 2.5", "done"]
    assert shown_lines(["epoch 1: 10%\repoch 1: 50%\repoch 1: 100%"]) == ["epoch 1: 100%"]


def test_the_tui_log_pane_tail_hides_noise_and_the_file_keeps_it(workspace) -> None:
    folder = write_job(workspace)
    assert LineTail(folder / "log.txt").read_new_shown() == ["Loading model", "step 1 loss 2.5", "done"]
    assert (folder / "log.txt").read_text().count("gemm_4bit_forward") == 1


def test_logs_and_show_print_the_log_without_noise(workspace, capsys) -> None:
    folder = write_job(workspace)
    assert main(["-w", str(workspace.root), "logs", folder.name]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "Loading model" and "step 1 loss 2.5" in out
    assert "gemm_4bit_forward" not in out and "de-quantizing" not in out
    assert main(["-w", str(workspace.root), "logs", folder.name, "-n", "20"]) == 0
    assert capsys.readouterr().out.splitlines() == ["Loading model", "step 1 loss 2.5", "done"]
    assert main(["-w", str(workspace.root), "show", folder.name]) == 0
    shown = capsys.readouterr().out
    assert "step 1 loss 2.5" in shown and "gemm_4bit_forward" not in shown


def test_the_cli_stderr_hides_the_bitsandbytes_warning(workspace) -> None:
    """The warning goes through bitsandbytes' logger with no handler configured, as on a real CPU box."""
    code = (
        "import logging, sys\n"
        "from ftbench.cli import main\n"
        "import ftbench.commands.jobs as jobs\n"
        "real = jobs.cmd_runs\n"
        "def noisy(args, ws):\n"
        f"    logging.getLogger('bitsandbytes.backends.cpu.ops').warning({BNB!r})\n"
        "    logging.getLogger('ftbench.test').warning('a real warning')\n"
        "    return real(args, ws)\n"
        "jobs.cmd_runs = noisy  # registered when main() builds its parser\n"
        "sys.exit(main(['-w', sys.argv[1], 'runs']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(workspace.root)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "a real warning" in done.stderr
    assert "gemm_4bit_forward" not in done.stderr
    assert logging.getLogger("bitsandbytes").handlers == []
