"""The Hugging Face caches, listed through their folder layout (no hashing, no walk over every blob).

The hub cache holds `<type>s--<org>--<name>/` per repo with `refs/<branch>` (a commit hash),
`snapshots/<commit>/` (symlinks) and `blobs/`. `huggingface_hub.scan_cache_dir` stats every blob and every
snapshot file of every repo to report sizes and revisions; the catalog needs one snapshot folder per repo,
which two small reads give. Sizes are then taken from that snapshot alone (`walk.folder_fingerprint`).
"""

from __future__ import annotations

import os
from pathlib import Path

from ftbench.catalog.walk import list_folder


def hf_home() -> Path:
    """HF_HOME as huggingface_hub resolved it (HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface)."""
    from huggingface_hub import constants

    return Path(constants.HF_HOME)


def hf_hub_cache() -> Path:
    """The hub cache folder as huggingface_hub resolved it (HF_HUB_CACHE, HUGGINGFACE_HUB_CACHE, then HF_HOME/hub).

    Read from `huggingface_hub.constants`, the values every download in this process uses, so the catalog
    lists exactly the cache `ftbench pull` (and transformers) write to. huggingface_hub evaluates them when
    first imported; a test that moves the cache sets them there (tests/hfenv.py).
    """
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def hf_datasets_cache() -> Path:
    """Where `datasets.load_dataset` keeps prepared Arrow files: HF_DATASETS_CACHE, else HF_HOME/datasets.

    `datasets.config` holds this constant, but importing it loads pyarrow and more (too heavy for the TUI),
    so its one rule is applied here on top of huggingface_hub's HF_HOME.
    """
    value = os.environ.get("HF_DATASETS_CACHE")
    return Path(os.path.expandvars(os.path.expanduser(value))) if value else hf_home() / "datasets"


def _snapshot(repo: Path) -> Path | None:
    """The snapshot `refs/main` points at, else the most recently written snapshot folder."""
    try:
        commit = (repo / "refs" / "main").read_text(encoding="utf-8").strip()
    except OSError:
        commit = ""
    if commit and (repo / "snapshots" / commit).is_dir():
        return repo / "snapshots" / commit
    listing = list_folder(repo / "snapshots")
    if not listing or not listing[0]:
        return None
    candidates = [repo / "snapshots" / name for name in listing[0]]
    return max(candidates, key=lambda p: p.stat().st_mtime)


def hf_cache_repos(repo_type: str, notes: list[str] | None = None) -> list[tuple[str, Path]]:
    """(repo id, snapshot folder) for each cached repo of `repo_type` ("model" or "dataset"), by repo id."""
    from huggingface_hub.constants import REPO_ID_SEPARATOR

    cache = hf_hub_cache()
    listing = list_folder(cache, notes) if cache.is_dir() else None
    if listing is None:
        return []
    prefix = f"{repo_type}s{REPO_ID_SEPARATOR}"
    out = []
    for name in listing[0]:
        if not name.startswith(prefix):
            continue
        snapshot = _snapshot(cache / name)
        if snapshot is not None:
            out.append((name[len(prefix) :].replace(REPO_ID_SEPARATOR, "/"), snapshot))
    return sorted(out)
