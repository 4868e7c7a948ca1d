"""A screen whose thread worker polls job folders only while the screen is visible.

Jobs and Runs both watch files from a thread worker. Out of sight they must read nothing (over SSH every
wasted read and redraw costs), a user action must wake them at once, and closing the screen or the app must
end the loop. The three events and their handlers live here once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

from textual.screen import Screen

from ftbench.tui.services import services


class PollingScreen(Screen[None]):
    def __init__(self) -> None:
        super().__init__()
        self._halt = threading.Event()
        self._wake = threading.Event()
        self._visible = threading.Event()  # a screen out of sight reads no files
        self._visible.set()

    def on_unmount(self) -> None:
        self._halt.set()
        self._wake.set()
        self._visible.set()

    def on_screen_suspend(self) -> None:
        self._visible.clear()

    def on_screen_resume(self) -> None:
        self._visible.set()
        self._wake.set()

    def wake(self) -> None:
        """Poll now rather than at the next tick (after a user action)."""
        self._wake.set()

    def poll_ticks(self, poll_s: float) -> Iterator[None]:
        """Yield once per poll while the screen is visible, until the screen or the app goes away."""
        while not self._halt.is_set() and not services(self.app).stopping():
            if not self._visible.wait(poll_s):
                continue  # out of sight: re-check halt, read nothing
            yield
            self._wake.wait(poll_s)
            self._wake.clear()

    def _open_monitor(self, job_dir: Path) -> None:
        opener = services(self.app).open_monitor
        if opener is not None:
            opener(job_dir)
