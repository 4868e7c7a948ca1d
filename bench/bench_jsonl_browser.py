"""Benchmark: open a big JSONL in ftbench's dataset reader vs `datasets.load_dataset("json")`.

Generates a JSONL of `--size-gb` (default 1) chat rows in a temporary folder (deleted at the end), then runs
each contender in a fresh subprocess so peak RSS is its own:

- ftbench: `open_dataset` + first page (50 rows), the full lazy line index, then random jumps (50 rows each,
  anywhere in the file) and a search for a string near the end.
- datasets: `load_dataset("json", data_files=..., cache_dir=<tmp>)`, first page, random jumps.

Prints each number and the ratios, and checks the budgets from DESIGN.md: first page < 1 s, jump < 100 ms,
peak RSS < 200 MB. Exit status 1 when a budget is missed.

    python bench/bench_jsonl_browser.py [--size-gb 1] [--skip-datasets] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PAGE = 50
JUMPS = 30
WORDS = "the model learns to answer questions about data with care review product great ship order refund price".split()


def generate(path: Path, size_bytes: int, seed: int = 0) -> int:
    """Write chat rows until the file reaches `size_bytes`; returns the row count."""
    rng = random.Random(seed)
    rows = 0
    written = 0
    pool = [" ".join(rng.choices(WORDS, k=rng.randint(20, 80))) for _ in range(2000)]
    with open(path, "w", encoding="utf-8") as handle:
        buf = []
        while written < size_bytes:
            user = pool[rng.randrange(len(pool))]
            answer = pool[rng.randrange(len(pool))]
            line = (
                json.dumps(
                    {
                        "id": rows,
                        "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}],
                    }
                )
                + "\n"
            )
            buf.append(line)
            written += len(line)
            rows += 1
            if len(buf) >= 10000:
                handle.write("".join(buf))
                buf.clear()
        handle.write("".join(buf))
        handle.write(json.dumps({"id": rows, "messages": [{"role": "user", "content": "needle-at-the-end"}]}) + "\n")
    return rows + 1


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM). Not ru_maxrss: across fork+exec it can carry the parent's peak."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB; macOS: bytes


def child_ftbench(path: Path, rows: int) -> dict:
    t_import = time.perf_counter()
    from ftbench.catalog.datasets import open_dataset

    t0 = time.perf_counter()  # the app has its modules loaded already; the import is reported apart
    import_s = t0 - t_import
    reader = open_dataset(path)
    page = reader.head(PAGE)
    first_page = time.perf_counter() - t0
    assert len(page) == PAGE and page[0].data is not None
    estimate, exact = reader.row_count()
    t1 = time.perf_counter()
    reader.scan()
    index_s = time.perf_counter() - t1
    count, exact_after = reader.row_count()
    assert exact_after and count == rows, (count, rows)
    rng = random.Random(1)
    jumps = []
    for _ in range(JUMPS):
        i = rng.randrange(rows - PAGE)
        t = time.perf_counter()
        got = reader.rows(i, PAGE)
        jumps.append(time.perf_counter() - t)
        assert got[0].index == i and got[0].data["id"] == i, (i, got[0])
    t2 = time.perf_counter()
    hit = reader.search("needle-at-the-end")
    search_s = time.perf_counter() - t2
    assert hit == rows - 1, hit
    jumps.sort()
    return {
        "import_s": import_s,
        "first_page_s": first_page,
        "rows_estimate_at_open": estimate,
        "index_s": index_s,
        "jump_median_s": jumps[len(jumps) // 2],
        "jump_max_s": jumps[-1],
        "search_s": search_s,
        "peak_rss_mb": peak_rss_mb(),
    }


def child_tui(path: Path, rows: int, cache: str) -> dict:
    """The Datasets screen itself, headless (Pilot): first rendered record after mount, then jumps.

    Times are taken when the record pane is actually updated (a wrapper on RecordView.show_row), not after
    Pilot's idle waits. The interpreter's Textual import and app start-up are reported apart: that cost
    belongs to the app shell's cold-start budget, not to opening a dataset.
    """
    import asyncio

    t0 = time.perf_counter()
    from textual.app import App

    from ftbench.core.workspace import Workspace
    from ftbench.tui.screens.datasets import DatasetsScreen
    from ftbench.tui.widgets.record_view import RecordView

    imports_s = time.perf_counter() - t0
    root = Path(cache) / "ws"
    root.mkdir(parents=True, exist_ok=True)
    (root / "ftbench.toml").write_text(f'dataset_dirs = ["{path.parent}"]\nmodel_dirs = []\nscan_hf_cache = false\n')
    ws = Workspace.open(root)
    shows: list[tuple[float, int | None]] = []
    original = RecordView.show_row

    def show_row(self: RecordView, row, fmt: str) -> None:  # type: ignore[no-untyped-def]
        shows.append((time.perf_counter(), row.index if row is not None else None))
        original(self, row, fmt)

    RecordView.show_row = show_row  # type: ignore[method-assign]
    out: dict = {"imports_s": imports_s}
    mounted: list[float] = []

    class Screen(DatasetsScreen):
        def on_mount(self) -> None:
            mounted.append(time.perf_counter())
            super().on_mount()

    class Host(App[None]):
        def on_mount(self) -> None:
            self.push_screen(Screen(ws, hf_cache=False))

    async def until(predicate, timeout: float = 120.0) -> None:
        end = time.perf_counter() + timeout
        while not predicate():
            if time.perf_counter() > end:
                raise SystemExit("timed out waiting for the Datasets screen")
            await asyncio.sleep(0.001)

    async def jump(screen: DatasetsScreen, target: int) -> float:
        seen = len(shows)
        t = time.perf_counter()
        screen.goto_row(target)
        await until(lambda: len(shows) > seen and shows[-1][1] == target)
        return shows[-1][0] - t

    async def drive() -> None:
        app = Host()
        async with app.run_test(size=(120, 40)):
            await until(lambda: bool(shows) and shows[-1][1] == 0)
            out["first_page_after_mount_s"] = shows[-1][0] - mounted[0]
            out["first_page_from_start_s"] = shows[-1][0] - t0
            screen = app.screen
            assert isinstance(screen, DatasetsScreen)
            out["jump_to_last_s"] = await jump(screen, rows - 1)  # maybe past the index so far: read off the loop
            await until(lambda: bool(screen.current and screen.current.rows_exact))
            out["index_done_after_mount_s"] = time.perf_counter() - mounted[0]
            rng = random.Random(2)
            times = sorted([await jump(screen, rng.randrange(rows)) for _ in range(10)])
            out["jump_median_s"], out["jump_max_s"] = times[len(times) // 2], times[-1]

    asyncio.run(drive())
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def child_datasets(path: Path, rows: int, cache: str) -> dict:
    t_import = time.perf_counter()
    import datasets

    datasets.disable_progress_bars()
    t0 = time.perf_counter()
    import_s = t0 - t_import
    ds = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=cache)
    page = ds[0:PAGE]
    first_page = time.perf_counter() - t0
    assert len(page["id"]) == PAGE and len(ds) == rows
    rng = random.Random(1)
    jumps = []
    for _ in range(JUMPS):
        i = rng.randrange(rows - PAGE)
        t = time.perf_counter()
        got = ds[i : i + PAGE]
        jumps.append(time.perf_counter() - t)
        assert got["id"][0] == i
    jumps.sort()
    return {
        "import_s": import_s,
        "first_page_s": first_page,
        "jump_median_s": jumps[len(jumps) // 2],
        "jump_max_s": jumps[-1],
        "peak_rss_mb": peak_rss_mb(),
    }


def run_child(which: str, path: Path, rows: int, cache: str) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=cache)
    repo = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = str(repo) + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run(
        [sys.executable, __file__, "--child", which, str(path), str(rows), cache],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{which} child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument("--skip-datasets", action="store_true", help="skip the datasets.load_dataset baseline")
    parser.add_argument(
        "--keep", metavar="DIR", help="generate into DIR and keep the file (default: a temp dir, deleted)"
    )
    parser.add_argument("--child", nargs=4, metavar=("WHICH", "PATH", "ROWS", "CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        which, path, rows, cache = args.child
        children = {
            "ftbench": lambda: child_ftbench(Path(path), int(rows)),
            "tui": lambda: child_tui(Path(path), int(rows), cache),
        }
        fn = children.get(which, lambda: child_datasets(Path(path), int(rows), cache))()
        print(json.dumps(fn))
        return 0

    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="ftbench-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        path = tmp / "data" / "big.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        rows = generate(path, int(args.size_gb * 1024**3))
        size = path.stat().st_size
        print(f"generated {path} : {size / 1024**3:.2f} GiB, {rows:,} rows in {time.perf_counter() - t:.1f} s")
        ours = run_child("ftbench", path, rows, str(tmp / "hf"))
        # (each child is a fresh interpreter; its peak RSS includes Python + numpy, ~30 MB)
        print("ftbench :", json.dumps({k: round(v, 4) for k, v in ours.items()}))
        ok = ours["first_page_s"] < 1.0 and ours["jump_max_s"] < 0.1 and ours["peak_rss_mb"] < 200
        print(
            f"budgets : first page {ours['first_page_s'] * 1000:.0f} ms (< 1000), "
            f"jump max {ours['jump_max_s'] * 1000:.1f} ms (< 100), peak RSS {ours['peak_rss_mb']:.0f} MB (< 200) -> "
            + ("OK" if ok else "MISSED")
        )
        tui = run_child("tui", path, rows, str(tmp / "tui"))
        print("tui     :", json.dumps({k: round(v, 4) for k, v in tui.items()}))
        tui_ok = tui["first_page_after_mount_s"] < 1.0 and tui["jump_max_s"] < 0.1 and tui["peak_rss_mb"] < 200
        print(
            f"budgets : Datasets screen first record {tui['first_page_after_mount_s'] * 1000:.0f} ms after mount (< 1000; "
            f"{tui['first_page_from_start_s'] * 1000:.0f} ms from a cold interpreter, {tui['imports_s'] * 1000:.0f} ms of it imports), "
            f"jump max {tui['jump_max_s'] * 1000:.1f} ms (< 100), peak RSS {tui['peak_rss_mb']:.0f} MB (< 200) -> "
            + ("OK" if tui_ok else "MISSED")
        )
        ok = ok and tui_ok
        if not args.skip_datasets:
            theirs = run_child("datasets", path, rows, str(tmp / "hf"))
            print("datasets:", json.dumps({k: round(v, 4) for k, v in theirs.items()}))
            print(
                "ratios (datasets / ftbench): "
                f"first page {theirs['first_page_s'] / ours['first_page_s']:.0f}x, "
                f"first page vs ftbench open+full index {theirs['first_page_s'] / (ours['first_page_s'] + ours['index_s']):.1f}x, "
                f"jump median {theirs['jump_median_s'] / ours['jump_median_s']:.2f}x, "
                f"peak RSS {theirs['peak_rss_mb'] / ours['peak_rss_mb']:.1f}x"
            )
        return 0 if ok else 1
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
