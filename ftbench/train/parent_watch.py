"""Die with the parent: no rank of a multi-process run outlives the process that started it.

The job process starts the launcher (`loopback_launch`, torchrun's agent) in its own session so that a stop
reaches it only through ftbench; the launcher starts the ranks. If the job process is killed with SIGKILL, it
cannot take them down, and they would train on as orphans holding the GPUs. So the launcher and every rank
watch their parent: once it is gone (the parent pid changes, as the kernel re-parents an orphan), they
SIGKILL themselves. Polling from a daemon thread rather than `prctl(PR_SET_PDEATHSIG)`: the death signal
follows the *thread* that forked, and torch's launcher may start the ranks from a thread that ends early.
"""

from __future__ import annotations

import os
import signal
import threading

PARENT_ENV = "FTBENCH_EXPECTED_PARENT"  # the pid a launcher's parent must have, set by whoever starts it
POLL_S = 0.5


def watch_parent(expected: int | None = None, poll_s: float = POLL_S) -> int:
    """Start the watcher; returns the parent pid watched. Exits at once if the parent is already gone."""
    parent = expected if expected is not None else os.getppid()
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)

    def watch() -> None:
        while os.getppid() == parent:
            threading.Event().wait(poll_s)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
    return parent
