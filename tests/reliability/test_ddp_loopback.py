"""Attack 4: a single-machine multi-process run must not listen on the network.

A real 2-process CPU run (gloo) is started as a detached job; while it runs, every listening TCP socket owned by
a process of the job's process tree (job, launcher with the torchrun agent, ranks) is read from /proc and must be on a
loopback address. Before this was fixed, torchrun's rendezvous store listened on `[::]:PORT`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from proctree import descendants  # noqa: E402
from test_train_tasks import toy_alpaca, write_jsonl  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
LISTEN = "0A"


def tree_socket_inodes(root_pid: int) -> set[str]:
    """Socket inodes held by `root_pid` and all its descendants (the launcher starts its own session)."""
    tree = {root_pid} | descendants(root_pid)
    inodes: set[str] = set()
    for pid in tree:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    return inodes


def is_loopback(hex_addr: str) -> bool:
    if len(hex_addr) == 8:  # IPv4, little-endian bytes: 127.x.x.x ends in 7F
        return hex_addr.endswith("7F")
    return hex_addr == "00000000000000000000000001000000" or (
        hex_addr.startswith("0000000000000000FFFF0000") and hex_addr.endswith("7F")
    )


def listeners(inodes: set[str]) -> list[tuple[str, int, bool]]:
    """(address, port, loopback?) of every listening socket among `inodes`."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            if parts[3] == LISTEN and parts[9] in inodes:
                addr, port = parts[1].split(":")
                found.append((addr, int(port, 16), is_loopback(addr)))
    return found


def test_is_loopback_decodes_proc_net() -> None:
    assert is_loopback("0100007F") and not is_loopback("00000000") and not is_loopback("0100A8C0")
    assert is_loopback("00000000000000000000000001000000")
    assert not is_loopback("00000000000000000000000000000000")


@pytest.mark.slow
def test_two_process_run_listens_on_loopback_only(workspace, tiny_llama, tmp_path) -> None:
    data = write_jsonl(tmp_path / "toy.jsonl", toy_alpaca(40))
    recipe = {
        "task": "sft",
        "model": str(tiny_llama),
        "data": {"train": str(data), "max_length": 64, "packing": False},
        "training": {"max_steps": 4, "batch_size": 2, "logging_steps": 1, "devices": 2},
    }
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "FTBENCH_DDP_CPU": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "ftbench.cli", "-w", str(workspace.root), "train", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    job_dir = next(workspace.runs_dir.iterdir())
    seen: set[tuple[str, int, bool]] = set()
    deadline = time.time() + 400
    state = ""
    while time.time() < deadline:
        status = json.loads((job_dir / "status.json").read_text())
        state = status.get("state", "")
        if state in ("succeeded", "failed", "stopped"):
            break
        if status.get("pid"):
            seen |= set(listeners(tree_socket_inodes(int(status["pid"]))))
        time.sleep(0.2)
    assert state == "succeeded", (job_dir / "log.txt").read_text()[-3000:]
    assert seen, "no listening socket was observed: the check saw nothing of the run"
    assert all(loop for _addr, _port, loop in seen), f"non-loopback listeners: {sorted(seen)}"
