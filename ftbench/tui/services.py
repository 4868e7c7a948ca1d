"""What screens and widgets may ask of the app, as one typed object instead of `getattr(self.app, ...)`.

FtbenchApp builds a `Services` from its injectable clock, poll interval and GPU sampler; a test mounts a
screen in its own small App and hands in a `Services` with a frozen clock or a fake GPU report. A screen
reads it with `services(self.app)`: an app that offers none (a bare test host) gets the defaults, so every
screen also runs on its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.app import App

from ftbench.core.gpu import GpuReport


@dataclass(frozen=True)
class Services:
    clock: Callable[[], float] = time.time
    poll_s: float = 1.0  # how often screens re-scan job folders
    gpu_report: Callable[[], GpuReport | None] = lambda: None  # the app's latest GPU sample
    stopping: Callable[[], bool] = lambda: False  # the app is shutting down: polling threads end
    open_monitor: Callable[[Path], None] | None = None  # push a run's monitor (None: no monitor here)
    open_chat: Callable[[Path], bool] | None = None  # open Chat with an adapter added
    standalone_chat: bool = False  # `ftbench chat` runs the Chat screen as the whole app
    screens: tuple[tuple[str, str, str], ...] = ()  # the numbered screens as (mode, title, key), for the tab bar


DEFAULT_SERVICES = Services()


def services(app: App[Any]) -> Services:
    """The app's services, or the defaults for an app that offers none."""
    found = getattr(app, "services", None)
    return found if isinstance(found, Services) else DEFAULT_SERVICES
