"""Bounded folder walks and file fingerprints for discovery: one `scandir` per folder, nothing recursive below.

Model and dataset discovery both walk their roots the same way: depth-first, folders in name order, dot
folders skipped, a depth limit, and a caller that decides per folder whether to go deeper (a model folder's
checkpoints are not separate models). A folder that cannot be listed (permissions, a dead network mount, a
symlink loop) is skipped with a note instead of ending the walk or being dropped silently.

A model folder's size and fingerprint come from one listing of that folder only — a network file system
pays one round trip per folder, not one per file of every checkpoint below it. Files reached through
symlinks (the Hugging Face cache's snapshot -> blob links) are stat'ed through the link and counted once
per inode, so two names for one blob do not count twice.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Folder:
    """One folder reached by `walk`: its entries, and `descend` which the caller may narrow (or clear)."""

    path: Path
    rel: str  # path relative to the walk's root ("." for the root)
    depth: int
    dirs: list[str]
    files: list[str]
    descend: list[str] = field(default_factory=list)

    def has_file(self, name: str) -> bool:
        return name in self.files


def list_folder(path: Path, notes: list[str] | None = None) -> tuple[list[str], list[str]] | None:
    """(sub-folder names, file names) of `path`, both sorted, dot folders left out; None (and a note) if unreadable.

    Symlinks count as what they point to; a broken link is a file, like `os.walk` has it.
    """
    dirs: list[str] = []
    files: list[str] = []
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                if is_dir:
                    if not entry.name.startswith("."):
                        dirs.append(entry.name)
                else:
                    files.append(entry.name)
    except OSError as exc:
        if notes is not None:
            notes.append(f"skipped {path}: {exc.strerror or exc}")
        return None
    return sorted(dirs), sorted(files)


def walk(
    root: Path,
    max_depth: int,
    notes: list[str] | None = None,
    follow_links: bool = True,
    stop: threading.Event | None = None,
) -> Iterator[Folder]:
    """Folders under `root` depth-first in name order (the order `os.walk` gives sorted), to `max_depth` levels.

    Each folder is yielded before its sub-folders; the consumer narrows `folder.descend` to prune. Folders at
    `max_depth` are yielded but not descended. Without `follow_links`, symlinked folders are not entered.
    """
    if not root.is_dir():
        return
    stack: list[tuple[Path, str, int]] = [(root, ".", 0)]
    while stack:
        if stop is not None and stop.is_set():
            return
        path, rel, depth = stack.pop()
        listing = list_folder(path, notes)
        if listing is None:
            continue
        dirs, files = listing
        folder = Folder(path, rel, depth, dirs, files, descend=list(dirs) if depth < max_depth else [])
        yield folder
        for name in reversed(folder.descend):
            child = path / name
            if not follow_links and child.is_symlink():
                continue
            stack.append((child, name if rel == "." else f"{rel}/{name}", depth + 1))


@dataclass(frozen=True)
class Fingerprint:
    """What a cached description is keyed on: bytes on disk and a digest of (name, size, mtime, inode)."""

    size: int
    digest: str
    mtime: float  # the newest file's modification time


def fingerprint(paths: list[Path]) -> Fingerprint:
    """Size and digest of files (symlinks followed); a file reached twice through links is counted once."""
    seen: set[tuple[int, int]] = set()
    size = 0
    mtime = 0.0
    h = hashlib.blake2b(digest_size=12)
    for p in paths:
        try:
            st = p.stat()
        except OSError:
            h.update(f"{p.name}|missing\n".encode())
            continue
        h.update(f"{p.name}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}|{st.st_dev}\n".encode())
        mtime = max(mtime, st.st_mtime)
        if (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            size += st.st_size
    return Fingerprint(size, h.hexdigest(), mtime)


def folder_fingerprint(folder: Path, files: list[str] | None = None) -> Fingerprint:
    """Fingerprint of the files directly in `folder` (sub-folders are not walked)."""
    if files is None:
        listing = list_folder(folder)
        files = listing[1] if listing else []
    return fingerprint([folder / name for name in files])
