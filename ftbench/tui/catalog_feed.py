"""A catalog listing fed to a screen progressively: rows as they are found, details as they are read.

The Models and Datasets screens each run one `CatalogFeed` in a thread worker. It walks the catalog's
cheap listing first (posting rows in small batches, the first one at once), then reads the details of the
entries the metadata cache could not fill — the rows the user is looking at first (`prefer`) — and posts
them as they arrive. `cancel` stops it between two entries (the screen was left or rescanned); whatever was
read by then is still saved to the cache. The event loop only draws what the messages carry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from textual import work
from textual.message import Message
from textual.message_pump import MessagePump

from ftbench.catalog.cache import Catalog, Listed

BATCH_S = 0.05  # post at most ~20 batches a second; the first row goes out on its own


class CatalogRows(Message):
    """Newly listed entries, in listing order (complete ones carry their details already)."""

    bubble = False

    def __init__(self, feed: CatalogFeed, entries: list[Listed[Any]]) -> None:
        super().__init__()
        self.feed = feed
        self.entries = entries


class CatalogDetails(Message):
    """Entries whose details were just read (`entry.info` is the full description now)."""

    bubble = False

    def __init__(self, feed: CatalogFeed, entries: list[Listed[Any]]) -> None:
        super().__init__()
        self.feed = feed
        self.entries = entries


class CatalogDone(Message):
    """The feed ended: every entry listed and detailed, or `cancelled` part-way."""

    bubble = False

    def __init__(self, feed: CatalogFeed, notes: list[str], cancelled: bool) -> None:
        super().__init__()
        self.feed = feed
        self.notes = notes
        self.cancelled = cancelled


class CatalogFeed:
    """Runs one catalog's listing and details for one screen; thread-safe `prefer` and `cancel`."""

    def __init__(self, catalog: Catalog[Any], target: MessagePump) -> None:
        self.catalog = catalog
        self.target = target
        self.stop = threading.Event()
        self.finished = threading.Event()  # `run` returned (done or cancelled)
        self.done = False
        self._wanted: list[str] = []
        self._lock = threading.Lock()

    def prefer(self, keys: Sequence[str]) -> None:
        """Read these entries' details next (the highlighted row and the rows on screen)."""
        with self._lock:
            self._wanted = list(keys)

    def cancel(self) -> None:
        self.stop.set()

    @property
    def cancelled(self) -> bool:
        return self.stop.is_set()

    def run(self) -> None:
        """The whole feed; blocking, so call it from a thread worker."""
        try:
            self._run()
        finally:
            self.finished.set()

    def _run(self) -> None:
        pending: dict[str, Listed[Any]] = {}
        batch: list[Listed[Any]] = []
        last = 0.0
        for entry in self.catalog.listing(self.stop):
            batch.append(entry)
            if not entry.complete:
                pending[entry.key] = entry
            if time.monotonic() - last >= BATCH_S:
                self.target.post_message(CatalogRows(self, batch))
                batch, last = [], time.monotonic()
        if batch:
            self.target.post_message(CatalogRows(self, batch))
        self._details(pending)
        self.catalog.save()
        self.done = not self.stop.is_set()
        self.target.post_message(CatalogDone(self, list(self.catalog.notes), self.stop.is_set()))

    def _details(self, pending: dict[str, Listed[Any]]) -> None:
        batch: list[Listed[Any]] = []
        last = 0.0  # the first details (the highlighted row's) go out at once
        while pending and not self.stop.is_set():
            entry = pending.pop(self._next_key(pending))
            try:
                entry.info = self.catalog.details(entry)
            except Exception as exc:  # noqa: BLE001 - one unreadable model or dataset must not end the listing
                entry.info.error = f"{type(exc).__name__}: {exc}"
            entry.complete = True
            batch.append(entry)
            if time.monotonic() - last >= BATCH_S:
                self.target.post_message(CatalogDetails(self, batch))
                batch, last = [], time.monotonic()
        if batch:
            self.target.post_message(CatalogDetails(self, batch))

    def _next_key(self, pending: dict[str, Listed[Any]]) -> str:
        with self._lock:
            for key in self._wanted:
                if key in pending:
                    return key
        return next(iter(pending))


def visible_keys(table: Any, keys: list[str], first: list[str]) -> list[str]:
    """`first` (the highlighted entry), then the keys of the rows a DataTable shows now: what to read next."""
    top = int(table.scroll_offset.y)
    return first + keys[top : top + max(table.size.height, 1)]


def found_subtitle(count: int, notes: list[str]) -> str:
    skipped = f", {len(notes)} folder(s) skipped" if notes else ""
    return f"{count} found{skipped}"


class FeedScreen:
    """What the Models and Datasets screens do alike with their feed (mixed in before `Screen`).

    List on the first visit, and again when leaving cut the last listing short; cancel when the screen is
    left or unmounted; run the feed in a thread worker. Textual calls each class's own handler along the MRO,
    so a screen's `on_unmount` adds its own clean-up beside this one.
    """

    feed: CatalogFeed | None = None

    if TYPE_CHECKING:  # the screen's own: reset its rows, then `start_feed` with its catalog

        def discover(self) -> None: ...

    def on_screen_resume(self) -> None:
        if self.feed is None or self.feed.cancelled:
            self.discover()  # first visit, or the last listing was cut short by leaving

    def on_screen_suspend(self) -> None:
        if self.feed is not None and not self.feed.done:
            self.feed.cancel()

    def on_unmount(self) -> None:
        if self.feed is not None:
            self.feed.cancel()

    def start_feed(self, catalog: Catalog[Any]) -> None:
        """Cancel the running feed, if any, and list `catalog` in a new one."""
        if self.feed is not None:
            self.feed.cancel()
        self.feed = CatalogFeed(catalog, self)  # type: ignore[arg-type]  # a Screen, by the mixin's contract
        self._run_feed(self.feed)

    @work(thread=True, exclusive=True, group="catalog-feed", exit_on_error=False)
    def _run_feed(self, feed: CatalogFeed) -> None:
        feed.run()
