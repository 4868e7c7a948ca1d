"""Regenerate screenshots/*.svg of every TUI screen, deterministically, for README.md.

Uses the frozen fake workspace of the TUI tests (tests/tui/fakes.py: fixed clock, fake GPUs, job folders
written by hand), so the README images show exactly what the snapshot tests check and never drift.
Usage: python scripts/screenshots.py [--out screenshots] [--size 120x36]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "tui"))

from fakes import FAKE_GPUS, clock, make_workspace  # noqa: E402

from ftbench.tui.app import FtbenchApp  # noqa: E402

LABEL = "~/ftbench-workspace"


async def wait_until(pilot, predicate: Callable[[], object], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:  # noqa: BLE001 - widgets not mounted yet
            pass
        await pilot.pause(0.05)
    raise TimeoutError(f"screen not ready: {predicate}")


async def shoot(ws, out: Path, name: str, size: tuple[int, int], setup: Callable[..., Awaitable[None]]) -> Path:
    app = FtbenchApp(ws, clock=clock, gpu_sampler=lambda: FAKE_GPUS, gpu_interval=0.2, poll_s=0.1)
    async with app.run_test(size=size) as pilot:
        app.sub_title = LABEL
        await wait_until(pilot, lambda: app.screen.rows)
        await setup(pilot, app)
        await pilot.pause(0.3)
        path = app.save_screenshot(filename=f"{name}.svg", path=str(out))
    return Path(path)


async def jobs(pilot, app) -> None:
    await wait_until(pilot, lambda: app.gpu_report is not None and app.screen.query_one("#job-events").line_count)


async def monitor(pilot, app) -> None:
    await pilot.press("enter")
    await wait_until(pilot, lambda: type(app.screen).__name__ == "MonitorScreen" and len(app.screen.view.loss) == 120)


async def runs(pilot, app) -> None:
    await pilot.press("2")
    await wait_until(pilot, lambda: type(app.screen).__name__ == "RunsScreen" and len(app.screen.rows) == 3)
    await pilot.press("space", "down", "space")
    await wait_until(pilot, lambda: len(app.screen.picked) == 2)


async def help_screen(pilot, app) -> None:
    await pilot.press("question_mark")
    await wait_until(pilot, lambda: type(app.screen).__name__ == "HelpScreen")


async def new_run(pilot, app) -> None:
    await pilot.press("5")
    await wait_until(pilot, lambda: type(app.screen).__name__ == "NewRunScreen")


SHOTS = {"jobs": jobs, "monitor": monitor, "runs": runs, "help": help_screen, "new_run": new_run}


async def main_async(out: Path, size: tuple[int, int]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        ws = make_workspace(Path(tmp) / "ws")
        return [await shoot(ws, out, name, size, setup) for name, setup in SHOTS.items()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "screenshots"))
    parser.add_argument("--size", default="120x36")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    for path in asyncio.run(main_async(Path(args.out), (width, height))):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
