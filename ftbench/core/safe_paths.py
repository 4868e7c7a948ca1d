"""User text that becomes a file name, and the check that a path stays in its folder.

Run names, export names, transcript ids, adapter and chat column names are free text a recipe, a shared
transcript or a prompt can set. `safe_name` reduces such text to one harmless file-name component (no
separators, no `..`, no leading dot), and `inside` is the last check before a write: the resolved path must
lie in the folder it belongs to, so a name that slipped past the first never escapes the workspace.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ftbench.core.errors import FtbenchError

_UNSAFE = re.compile(r"[^\w.-]+")  # \w keeps letters and digits of any script; everything else becomes '-'
MAX_NAME = 80


def safe_name(text: str, fallback: str = "unnamed") -> str:
    """One file-name component made from `text`: letters, digits, '-', '_', '.'; never empty, '.', '..' or hidden."""
    name = _UNSAFE.sub("-", str(text)).strip("-._")
    name = re.sub(r"-{2,}", "-", name)[:MAX_NAME].strip("-._")
    return name or fallback


def inside(folder: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """`path` itself if it resolves to somewhere under `folder` (symlinks followed); a clear error otherwise."""
    base = Path(folder).resolve()
    target = Path(path)
    resolved = (target if target.is_absolute() else base / target).resolve()
    if resolved != base and base not in resolved.parents:
        raise FtbenchError(
            f"{path} would be written outside {base}.",
            "Names in recipes, transcripts and references may not contain path separators or '..'.",
        )
    return resolved
