"""Regenerate screenshots/*.svg of every TUI screen, deterministically, for README.md.

The workspace is the demo workspace's models and datasets (linked, not copied) plus the frozen job folders of
the TUI tests (tests/tui/fixtures, recorded from real tiny runs by scripts/record_fixtures.py; fixed clock, fake
GPUs in the header pane), so the pictures show real demo data and the same job states the snapshot tests check. The chat picture uses the scripted chat backend
through the real chat server, so it needs no model and never changes.
Usage: python scripts/screenshots.py [--demo DIR] [--out screenshots] [--size 120x36]  (plus SMALL at 80x24)
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

from fakes import FAKE_GPUS, FIXTURES, RUNNING, clock, make_workspace  # noqa: E402

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
    steps = (FIXTURES / RUNNING / "events.jsonl").read_text().count('"type": "train"')
    await wait_until(pilot, lambda: type(app.screen).__name__ == "MonitorScreen" and len(app.screen.view.loss) == steps)


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


async def datasets(pilot, app) -> None:
    await pilot.press("3")
    screen = lambda: app.screen  # noqa: E731
    await wait_until(pilot, lambda: type(screen()).__name__ == "DatasetsScreen" and screen().datasets, timeout=30)
    names = [d.name for d in screen().datasets]
    table = screen().query_one("#ds-list")
    table.move_cursor(row=names.index("demo/support-chat.jsonl"))
    await wait_until(
        pilot, lambda: screen().current.name == "demo/support-chat.jsonl" and screen().current.rows_exact, timeout=30
    )
    await pilot.press("t")  # rendered records: a messages row reads like a chat


async def models(pilot, app) -> None:
    await pilot.press("4")
    screen = lambda: app.screen  # noqa: E731
    await wait_until(
        pilot, lambda: type(screen()).__name__ == "ModelsScreen" and screen().models and screen().estimates, timeout=30
    )
    names = [m.name for m in screen().models]
    screen().query_one("#md-list").move_cursor(row=names.index("smollm2-135m-instruct"))
    await wait_until(pilot, lambda: screen().current.name == "smollm2-135m-instruct" and screen().estimates, timeout=30)


async def chat(pilot, app) -> None:
    from ftbench.chat.protocol import VariantSpec
    from ftbench.tui.screens.chat import ChatScreen

    variants = [
        VariantSpec(
            name="smollm2-135m-instruct",
            kind="scripted",
            options={"reply": "I think this review is mostly positive, because the reviewer likes the battery."},
        ),
        VariantSpec(name="sft-lora-sentiment", kind="scripted", options={"reply": "Sentiment: positive"}),
    ]
    screen = ChatScreen(app.ws, variants)
    await app.push_screen(screen)
    await wait_until(pilot, lambda: all(c.status == "ready" for c in screen.columns()), timeout=60)
    prompt = screen.query_one("#chat-prompt")
    prompt.value = "Classify the sentiment: The battery lasts all day and the screen is bright."
    await prompt.action_submit()
    await wait_until(pilot, lambda: all(c.last_stats for c in screen.columns()), timeout=60)


SHOTS = {
    "jobs": jobs,
    "monitor": monitor,
    "runs": runs,
    "datasets": datasets,
    "models": models,
    "new_run": new_run,
    "chat": chat,
    "help": help_screen,
}


SMALL = ("jobs", "datasets")


def demo_root(arg: str | None) -> Path:
    """The demo workspace to show; built (idempotently) when missing."""
    from ftbench.demo.build import build_demo

    root = Path(arg) if arg else REPO / ".ftbench-test-cache" / "demo"
    build_demo(root)
    return root


async def main_async(out: Path, size: tuple[int, int], demo: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        root.mkdir()
        for sub in ("models", "datasets"):
            (root / sub).symlink_to(demo / sub)
        ws = make_workspace(root)
        paths = [await shoot(ws, out, name, size, setup) for name, setup in SHOTS.items()]
        # a laptop's tmux pane: the panes beside a list stack under it
        paths += [await shoot(ws, out, f"{name}-80x24", (80, 24), SHOTS[name]) for name in SMALL]
        return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "screenshots"))
    parser.add_argument("--size", default="120x36")
    parser.add_argument("--demo", help="demo workspace to show (default: the test cache's, built if missing)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    for path in asyncio.run(main_async(Path(args.out), (width, height), demo_root(args.demo))):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
