"""A small real disk for full-disk tests: a tmpfs mounted for one test (we run as root in CI).

Where mounting is not allowed (no root, a container without CAP_SYS_ADMIN) the test is skipped, saying why.
`fill` leaves exactly the bytes asked for free, so a test decides which write is the one that fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a full-disk test needs root to mount a small tmpfs")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(folder: Path, leave: int = 0, name: str = "filler.bin") -> Path:
    """Write a file that leaves `leave` bytes free on `folder`'s disk (0: the disk is full)."""
    target = folder / name
    with open(target, "ab") as handle:
        while True:
            free = shutil.disk_usage(folder).free
            if free <= leave:
                break
            chunk = min(free - leave, 1 << 20)
            try:
                handle.write(b"\0" * chunk)
                handle.flush()
            except OSError:
                break
    return target


def free(folder: Path) -> int:
    return shutil.disk_usage(folder).free
