"""The Textual app shell: numbered screens, live GPU sampling, keymap, help and command palette.

Screens are Textual modes built on first use from `SCREEN_TABLE`, importing their module only then, so
start-up pays for the Jobs screen alone and a screen plugs in with one table line. NVML is sampled in a
thread worker every `gpu_interval` seconds and posted as a message; every GpuPane on the visible screen
gets it. Nothing here imports torch or any other heavy library (tests/unit/test_import_hygiene.py).
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from ftbench.core.gpu import GpuReport, sample_gpus
from ftbench.core.workspace import Workspace
from ftbench.tui.messages import GpuSampled
from ftbench.tui.services import Services


@dataclass(frozen=True)
class ScreenEntry:
    """One numbered screen: its key, mode name, title and "module:Class" built with the workspace."""

    mode: str
    key: str
    title: str
    target: str

    @property
    def module(self) -> str:
        return self.target.split(":")[0]

    def exists(self) -> bool:
        try:
            return importlib.util.find_spec(self.module) is not None
        except ImportError:
            return False


SCREEN_TABLE: tuple[ScreenEntry, ...] = (
    ScreenEntry("jobs", "1", "Jobs", "ftbench.tui.screens.jobs:JobsScreen"),
    ScreenEntry("runs", "2", "Runs", "ftbench.tui.screens.runs:RunsScreen"),
    ScreenEntry("datasets", "3", "Datasets", "ftbench.tui.screens.datasets:DatasetsScreen"),
    ScreenEntry("models", "4", "Models", "ftbench.tui.screens.models:ModelsScreen"),
    ScreenEntry("new_run", "5", "New run", "ftbench.tui.screens.new_run:NewRunScreen"),
    ScreenEntry("chat", "6", "Chat", "ftbench.tui.screens.chat:ChatScreen"),
    ScreenEntry("evals", "7", "Evals", "ftbench.tui.screens.evals:EvalsScreen"),
)
SCREENS_BY_MODE = {entry.mode: entry for entry in SCREEN_TABLE}


def load_class(target: str) -> type:
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


# shown first in every footer, as one entry; priority: they work in editors and text boxes too
SCREEN_KEYS: dict[str, Any] = {"priority": True, "group": Binding.Group("Screens")}


class FtbenchApp(App[int]):
    """ftbench's TUI. `clock`, `gpu_sampler` and `poll_s` are injectable so tests freeze time and NVML."""

    CSS_PATH = "ftbench.tcss"
    TITLE = "ftbench"
    DEFAULT_MODE = "jobs"
    ENABLE_COMMAND_PALETTE = True
    # classes every screen gets from the terminal size; ftbench.tcss stacks and hides panes with them
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-normal"), (160, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("question_mark", "help", "Help", key_display="?", id="help"),
        *(
            Binding(e.key, f"switch_screen_to('{e.mode}')", e.title, show=False, id=f"screen_{e.mode}")
            for e in SCREEN_TABLE
        ),
        # editors and inputs consume digits; these reach the app from any focus (tmux passes them, alt+digit not)
        Binding("ctrl+pageup", "cycle_screen(-1)", "Prev screen", key_display="^PgUp", **SCREEN_KEYS, id="screen_prev"),
        Binding(
            "ctrl+pagedown", "cycle_screen(1)", "Next screen", key_display="^PgDn", **SCREEN_KEYS, id="screen_next"
        ),
        Binding("escape", "leave_input", "Leave the input", show=False, id="leave_input"),
        Binding("f8", "screenshot", "Screenshot", show=False, id="screenshot"),
    ]

    def __init__(
        self,
        ws: Workspace,
        *,
        clock: Callable[[], float] = time.time,
        gpu_sampler: Callable[[], GpuReport] = sample_gpus,
        gpu_interval: float = 2.0,
        poll_s: float = 1.0,
        start_mode: str = "jobs",
    ) -> None:
        super().__init__()
        self.ws = ws
        self.gpu_sampler = gpu_sampler
        self.gpu_interval = gpu_interval
        self.gpu_report: GpuReport | None = None
        self._stop = threading.Event()
        self.services = Services(
            clock=clock,
            poll_s=poll_s,
            gpu_report=lambda: self.gpu_report,
            stopping=self._stop.is_set,
            open_monitor=self.open_monitor,
            open_chat=self.open_chat,
        )
        self.sub_title = str(ws.root)
        self._present = {e.mode for e in SCREEN_TABLE if e.exists()}
        self.services = replace(
            self.services, screens=tuple((e.mode, e.title, e.key) for e in SCREEN_TABLE if e.mode in self._present)
        )
        for entry in SCREEN_TABLE:
            if entry.mode in self._present:
                self.add_mode(entry.mode, self._factory(entry))
        self._start_mode = start_mode if start_mode in self._present else "jobs"
        if ws.config.keymap:
            self.set_keymap(dict(ws.config.keymap))

    def _factory(self, entry: ScreenEntry) -> Callable[[], Screen]:
        def build() -> Screen:
            return load_class(entry.target)(self.ws)

        return build

    # ----------------------------------------------------------------- lifecycle
    def on_mount(self) -> None:
        if self._start_mode != self.current_mode:
            self.switch_mode(self._start_mode)
        from ftbench.tui.screens.guide import guide_due

        if guide_due(self.ws):
            self.call_after_refresh(self._first_run_guide)
        # after the first frame: loading NVML must not delay it
        self.call_after_refresh(
            self.run_worker, self._sample_gpus, thread=True, exclusive=True, group="gpu", name="gpu-sampler"
        )

    def on_unmount(self) -> None:
        self._stop.set()

    def _sample_gpus(self) -> None:
        """Thread worker: NVML calls can take milliseconds to seconds on a busy driver; keep them off the loop."""
        while not self._stop.is_set():
            self.post_message(GpuSampled(self.gpu_sampler()))
            if self._stop.wait(self.gpu_interval):
                return

    def on_gpu_sampled(self, message: GpuSampled) -> None:
        self.gpu_report = message.report
        from textual.app import ScreenStackError

        from ftbench.tui.widgets.gpu_pane import GpuPane

        try:
            stack = self.screen_stack  # panes under a dialog (help, the guide) show through it, so they update too
        except (ScreenStackError, KeyError):  # a sample that arrives while the app is shutting down
            return
        for pane in (pane for screen in stack for pane in screen.query(GpuPane)):
            if pane.live:
                pane.show_report(message.report)

    # ----------------------------------------------------------------- screens
    def available_screens(self) -> list[ScreenEntry]:
        return [e for e in SCREEN_TABLE if e.mode in self._present]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "switch_screen_to" and parameters and parameters[0] not in self._present:
            return False
        return True

    def open_screen(self, mode: str) -> None:
        if mode not in self._present:
            self.notify(f"The {SCREENS_BY_MODE[mode].title} screen is not part of this build.", severity="warning")
            return
        from ftbench.tui.screens.guide import GuideScreen

        if isinstance(self.screen, GuideScreen):  # ctrl+PgDn or a tab click while the guide is up: close it first
            self.screen.dismiss(None)
        # a screen pushed on top (monitor, help) belongs to the mode it was opened from; go back to its base
        self.switch_mode(mode)

    def action_switch_screen_to(self, mode: str) -> None:
        self.open_screen(mode)

    def action_cycle_screen(self, step: int) -> None:
        """The next (or previous) numbered screen, wrapping around; from the monitor, its mode's neighbour."""
        modes = [e.mode for e in self.available_screens()]
        here = modes.index(self.current_mode) if self.current_mode in modes else 0
        self.open_screen(modes[(here + step) % len(modes)])

    def action_leave_input(self) -> None:
        """Escape out of a text box that its screen gives no other meaning: focus goes to the screen's list."""
        from textual.widgets import DataTable, Input, OptionList, TextArea

        if not isinstance(self.focused, (Input, TextArea)):
            return
        target = next(iter(self.screen.query(DataTable).results()), None) or next(
            iter(self.screen.query(OptionList).results()), None
        )
        if target is not None:
            target.focus()
        else:
            self.screen.set_focus(None)

    def action_help(self) -> None:
        from ftbench.tui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            return
        from ftbench.tui.palette import described_bindings

        rows = [(display, b.description, b.id or "") for display, b, _ in described_bindings(self, self.screen)]
        rows.append((self.get_key_display(Binding("ctrl+p", "command_palette", "")), "Command palette", ""))
        self.push_screen(HelpScreen(getattr(self.screen, "TITLE", None) or self.screen.__class__.__name__, rows))

    def _first_run_guide(self) -> None:
        """Over the first screen, unless a key pressed in the first frame already went somewhere."""
        if self.current_mode == self._start_mode and len(self.screen_stack) == 1:
            self.action_tour()

    def action_tour(self) -> None:
        """The first-run guide; choosing a step or closing it is remembered, so it never opens by itself again."""
        from ftbench.tui.screens.guide import GuideScreen, remember_dismissed
        from ftbench.tui.screens.help import HelpScreen

        if isinstance(self.screen, GuideScreen):
            return
        if isinstance(self.screen, HelpScreen):
            self.pop_screen()

        def closed(mode: str | None) -> None:
            try:
                remember_dismissed(self.ws)
            except OSError as exc:
                self.notify(f"Could not remember that the guide was closed: {exc.strerror}.", severity="warning")
            if mode:
                self.open_screen(mode)

        self.push_screen(GuideScreen(), closed)

    def action_screenshot(self) -> None:
        path = self.save_screenshot(path=str(self.ws.root))
        self.notify(f"Saved {Path(path).name}")

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        from ftbench.tui.palette import palette_commands

        screens = [(e.mode, e.title, e.key) for e in self.available_screens()]
        yield from palette_commands(self, screen, screens, self.open_screen)
        yield SystemCommand("Tour", "The first-run guide: three steps from a dataset to a model", self.action_tour)
        yield from super().get_system_commands(screen)

    # ----------------------------------------------------------------- helpers for screens
    def open_monitor(self, job_dir: Path) -> None:
        from ftbench.tui.screens.monitor import MonitorScreen

        self.push_screen(MonitorScreen(self.ws, job_dir))

    def open_chat(self, adapter: Path | str) -> bool:
        """Open the Chat screen with `adapter` (a folder, or a run reference such as RUN@checkpoint-N) added via
        its `add_adapter`, once that screen is mounted."""
        if "chat" not in self._present:
            return False
        mounted = self.switch_mode("chat")
        screen = self.screen
        add = getattr(screen, "add_adapter", None)
        if add is None:
            return False

        async def add_when_mounted() -> None:
            from ftbench.core.errors import FtbenchError

            await mounted
            try:
                add(adapter)
            except FtbenchError as exc:
                self.notify(f"{exc.message} {exc.hint or ''}".strip(), severity="error", timeout=8)

        self.call_later(add_when_mounted)
        return True


def run_app(ws: Workspace) -> int:
    """Entry point for `ftbench` without a subcommand and for `ftbench demo`."""
    result = FtbenchApp(ws).run()
    return int(result or 0)
