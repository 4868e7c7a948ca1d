"""The processes below a pid, read from /proc (for tests that check what a job or launcher left running)."""

from __future__ import annotations

from pathlib import Path


def descendants(root: int) -> set[int]:
    """Every live process whose parent chain reaches `root` (not `root` itself)."""
    parents: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                parents[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return tree - {root}
