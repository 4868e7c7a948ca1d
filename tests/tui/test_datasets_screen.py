"""The Datasets screen in a tiny host app: list, lazy table, jump, search, record rendering, stats, snapshot."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import DataTable

from ftbench.core.humanize import human_size
from ftbench.core.workspace import Workspace
from ftbench.tui.screens.datasets import DatasetsScreen
from ftbench.tui.services import Services
from ftbench.tui.widgets.dataset_view import DatasetTable
from ftbench.tui.widgets.record_view import RecordView, render_record
from ftbench.tui.widgets.stats_pane import stats_renderable

NOW = 1_763_800_000.0
SIZE = (120, 34)


class Host(App[None]):
    """Stands in for FtbenchApp: a fixed clock and the screen under test."""

    def __init__(self, ws: Workspace) -> None:
        super().__init__()
        self.ws = ws
        self.services = Services(clock=lambda: NOW)

    def on_mount(self) -> None:
        self.push_screen(DatasetsScreen(self.ws, hf_cache=False))


def build_workspace(root: Path) -> Workspace:
    ws = Workspace.open(root)
    demo = ws.datasets_dir / "demo"
    demo.mkdir()
    with open(demo / "chat.jsonl", "w", encoding="utf-8") as f:
        for i in range(300):
            if i == 41:
                f.write("{not json\n")
                continue
            turns = [
                {"role": "user", "content": f"How do I return order {i}?"},
                {"role": "assistant", "content": f"Reply with order {i} and we refund it."},
            ]
            f.write(json.dumps({"messages": turns}) + "\n")
    with open(demo / "ner.jsonl", "w", encoding="utf-8") as f:
        f.write(
            json.dumps({"tokens": ["EU", "rejects", "German", "call"], "ner_tags": ["B-ORG", "O", "B-MISC", "O"]})
            + "\n"
        )
    (demo / "reviews.csv").write_text("text,label\ngreat battery,1\nslow ship,0\n", encoding="utf-8")
    for path in demo.iterdir():
        os.utime(path, (NOW - 7200, NOW - 7200))
    return ws


async def wait_for(pilot: Pilot, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll a condition (never a bare sleep) while the app runs."""
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await pilot.pause(0.02)
    raise AssertionError("condition not met in time")


def loaded(app: App) -> Callable[[], bool]:
    def check() -> bool:
        screen = app.screen
        if not isinstance(screen, DatasetsScreen) or not screen.listing_done or screen.reader is None:
            return False
        if not (screen.current and screen.current.rows_exact):
            return False
        return screen.query_one(RecordView).row is not None

    return check


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return build_workspace(tmp_path / "ws")


async def test_browse_jump_search_and_stats(ws: Workspace) -> None:
    app = Host(ws)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, loaded(app))
        screen = app.screen
        assert isinstance(screen, DatasetsScreen)
        assert [d.name for d in screen.datasets] == ["demo/chat.jsonl", "demo/ner.jsonl", "demo/reviews.csv"]
        view = screen.query_one(DatasetTable)
        assert view.row_count == 300 and view.columns == ["messages"]
        record = screen.query_one(RecordView)
        assert record.row is not None and record.row.index == 0

        await pilot.press("g", *"250", "enter")
        await wait_for(pilot, lambda: view.cursor == 249)
        assert record.row.data["messages"][0]["content"] == "How do I return order 249?"

        await pilot.press("slash", *"order 7", "enter")  # from the cursor (249), wrapping to the top
        await wait_for(pilot, lambda: view.cursor == 7)
        await pilot.press("n")
        await wait_for(pilot, lambda: view.cursor == 70)
        await pilot.press("slash", *"nowhere", "enter")
        await wait_for(pilot, lambda: any("'nowhere' not found" in n.message for n in app._notifications))
        assert view.cursor == 70

        await pilot.press("g", *"42", "enter")
        await wait_for(pilot, lambda: view.cursor == 41)
        assert record.row.error is not None and record.row.line == 42

        await pilot.press("s")
        await wait_for(pilot, lambda: screen.stats is not None)
        assert screen.stats.rows == 300 and screen.stats.bad_count == 1
        assert screen.stats.bad_rows[0][0] == 42
        console = Console(width=100, record=True, file=io.StringIO())
        console.print(stats_renderable(screen.stats))
        panel = console.export_text()
        assert "line 42: invalid JSON" in panel and "format      messages" in panel


async def test_switching_dataset_renders_ner_and_csv(ws: Workspace) -> None:
    app = Host(ws)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, loaded(app))
        screen = app.screen
        screen.query_one("#ds-list", DataTable).focus()
        await pilot.press("down")
        await wait_for(
            pilot,
            lambda: (
                screen.current.name == "demo/ner.jsonl"
                and screen.query_one(RecordView).row is not None
                and screen.query_one(RecordView).fmt == "ner"
            ),
        )
        text = render_record(screen.query_one(RecordView).row, "ner")
        rendered = "".join(str(r) for r in text.renderables)
        assert "EU/B-ORG" in rendered and "German/B-MISC" in rendered and "rejects/O" not in rendered
        await pilot.press("down")
        await wait_for(
            pilot,
            lambda: (
                screen.current.name == "demo/reviews.csv" and screen.reader is not None and screen.current.rows_exact
            ),
        )
        assert screen.query_one(DatasetTable).row_count == 2
        assert screen.query_one(RecordView).row.data == {"text": "great battery", "label": "1"}


def test_chat_record_renders_turns() -> None:
    from ftbench.catalog.datasets import Row

    row = Row(
        0,
        1,
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello\nthere"}], "id": 7},
    )
    lines = [str(r) for r in render_record(row, "messages").renderables]
    assert lines == ["row 1 · line 1", "▌user", "  hi", "▌assistant", "  hello\n  there", "id: 7"]


def test_screens_import_no_heavy_library() -> None:
    code = (
        "import sys, ftbench.tui.screens.datasets, ftbench.tui.screens.models, ftbench.commands.catalog;"
        "heavy = [m for m in ('torch', 'transformers', 'datasets', 'peft', 'trl', 'llama_cpp', 'bitsandbytes') if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_snapshot(ws: Workspace, snap_compare) -> None:
    async def ready(pilot: Pilot) -> None:
        await wait_for(pilot, loaded(pilot.app))
        await pilot.press("g", *"3", "enter")
        await wait_for(pilot, lambda: pilot.app.screen.query_one(DatasetTable).cursor == 2)

    assert snap_compare(Host(ws), terminal_size=SIZE, run_before=ready)


async def test_first_page_opens_while_the_list_is_still_being_read(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Details (rows, format) are held back: the rows are listed and the first file is already browsable."""
    import threading

    from ftbench.catalog.datasets import DatasetCatalog

    release = threading.Event()
    reads: list[str] = []
    original = DatasetCatalog.details

    def held(catalog, entry):
        reads.append(entry.info.name)
        assert release.wait(15)
        return original(catalog, entry)

    monkeypatch.setattr(DatasetCatalog, "details", held)
    app = Host(ws)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, DatasetsScreen) and app.screen.reader is not None)
        screen = app.screen
        table = screen.query_one("#ds-list", DataTable)
        assert [d.name for d in screen.datasets] == ["demo/chat.jsonl", "demo/ner.jsonl", "demo/reviews.csv"]
        assert [table.get_row_at(i)[1:3] for i in (1, 2)] == [["…", "…"]] * 2  # format and rows still coming
        assert table.get_row_at(0)[1] == "…"  # the open file's format too (its reader may already count its rows)
        assert table.get_row_at(2)[3] == human_size((ws.datasets_dir / "demo" / "reviews.csv").stat().st_size)
        assert not screen.listing_done
        assert screen.query_one(DatasetTable).row(0).data["messages"][0]["content"] == "How do I return order 0?"
        assert reads == ["demo/chat.jsonl"]  # the open dataset's details are read first
        release.set()
        await wait_for(pilot, lambda: screen.listing_done)
        assert [table.get_row_at(i)[1] for i in range(3)] == ["messages", "ner", "classification"]
        assert screen.current.format == "messages" and screen.query_one(RecordView).fmt == "messages"
