"""Messages that thread workers post to the UI (post_message is the one thread-safe call in Textual).

Workers read files and NVML off the event loop, then post one of these; handlers on the loop update
widgets. Keeping them here lets screens and widgets share them without importing each other.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message

from ftbench.core.gpu import GpuReport


class GpuSampled(Message):
    """A fresh NVML sample for the GPU pane."""

    def __init__(self, report: GpuReport) -> None:
        super().__init__()
        self.report = report


class JobsChanged(Message):
    """The job list differs from the last one shown (rows are display-ready dicts)."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        super().__init__()
        self.rows = rows


class JobTail(Message):
    """New log lines and events of the selected job since the last tail; `reset` when the job changed."""

    def __init__(self, job_id: str, lines: list[str], events: list[dict[str, Any]], reset: bool) -> None:
        super().__init__()
        self.job_id = job_id
        self.lines = lines
        self.events = events
        self.reset = reset


class RunData(Message):
    """New events and status of the run shown in the monitor."""

    def __init__(self, events: list[dict[str, Any]], status: dict[str, Any], lines: list[str], reset: bool) -> None:
        super().__init__()
        self.events = events
        self.status = status
        self.lines = lines
        self.reset = reset


class RunsChanged(Message):
    """The rows of the Runs screen changed."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        super().__init__()
        self.rows = rows


class ServerEvent(Message):
    """An event line from the chat server (or the client's `exit` event when it died)."""

    def __init__(self, event: dict[str, Any]) -> None:
        super().__init__()
        self.event = event


class ServerStarted(Message):
    """The chat server process is up, or `error` says why it is not."""

    def __init__(self, error: str | None = None) -> None:
        super().__init__()
        self.error = error
