"""Models on the box, listed progressively: model roots, then runs and exports, then the Hugging Face cache.

`ModelCatalog.listing()` yields each model, adapter and GGUF file with its name, kind and size from one folder
listing (or one stat), and with its details already filled in when the workspace's metadata cache has them
for exactly those files. `details()` reads the rest (`models.inspect_*`) and remembers it. The Models screen
drives the two halves separately so rows appear before details; `discover_models` runs both for the CLI.

Nothing is walked below a model folder except its `adapter/` and `model/` sub-folders (a run's outputs), and
an unreadable folder becomes a note rather than an error or a silent gap.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ftbench.catalog.cache import Listed, MetadataCache, cache_path, complete, fill_from_cache, read_and_store
from ftbench.catalog.hf_cache import hf_cache_repos
from ftbench.catalog.models import INSPECTORS, ModelInfo, model_kind
from ftbench.catalog.walk import fingerprint, folder_fingerprint, walk
from ftbench.core.layout import JobLayout

MAX_DEPTH = 3  # below a model root
RUN_DEPTH = 2  # below runs/ and exports/: <run>/<adapter|model>
RUN_OUTPUTS = ("adapter", "model")  # the only sub-folders of a model folder that are models of their own
CACHE_VERSION = 1  # bump when `models.inspect_*` read more or differently: every cached entry is then re-read


class ModelCatalog:
    """Model roots, runs and exports, then (if enabled) the Hugging Face cache; details cached in the workspace."""

    def __init__(self, ws: Any, hf_cache: bool | None = None) -> None:
        self.ws = ws
        self.scan_hf_cache = ws.config.scan_hf_cache if hf_cache is None else hf_cache
        self.notes: list[str] = []
        self.cache = MetadataCache(cache_path(ws.root, "models"), CACHE_VERSION)

    def listing(self, stop: threading.Event | None = None) -> Iterator[Listed[ModelInfo]]:
        """Every model with name, kind and size; details already there when the cache has them."""
        for root in self.ws.model_roots():
            yield from self._walk(root, str(root), "", MAX_DEPTH, stop)
        for parent in (self.ws.runs_dir, self.ws.exports_dir):
            yield from self._walk(parent, parent.name, f"{parent.name}/", RUN_DEPTH, stop)
        if not self.scan_hf_cache:
            return
        for repo_id, snapshot in hf_cache_repos("model", self.notes):
            if stop is not None and stop.is_set():
                return
            kind = model_kind(snapshot)
            if kind is not None:
                yield self._entry(snapshot, kind, "hf-cache", repo_id)
            else:  # e.g. a repo holding only .gguf files
                yield from self._walk(snapshot, "hf-cache", "", MAX_DEPTH, stop)

    def details(self, entry: Listed[ModelInfo]) -> ModelInfo:
        return read_and_store(self.cache, entry)

    def save(self) -> None:
        self.cache.save()

    def _walk(
        self, root: Path, source: str, prefix: str, depth: int, stop: threading.Event | None
    ) -> Iterator[Listed[ModelInfo]]:
        for folder in walk(root, depth, self.notes, follow_links=True, stop=stop):
            kind = model_kind(folder.path, folder.files)
            if kind is not None:
                name = folder.rel if folder.rel != "." else folder.path.name
                yield self._entry(folder.path, kind, source, prefix + name, folder.files)
                folder.descend = [d for d in folder.dirs if d in RUN_OUTPUTS]  # checkpoints are not models
                continue
            for fname in folder.files:
                if fname.lower().endswith(".gguf"):
                    path = folder.path / fname
                    if not path.is_file():
                        self.notes.append(f"skipped {path}: not a readable file (a broken link?)")
                        continue
                    yield self._entry(
                        path, "gguf", source, prefix + (fname if folder.rel == "." else f"{folder.rel}/{fname}")
                    )

    def _entry(
        self, path: Path, kind: str, source: str, name: str, files: list[str] | None = None
    ) -> Listed[ModelInfo]:
        mark = fingerprint([path]) if kind == "gguf" else folder_fingerprint(path, files)
        info = ModelInfo(name=name, path=str(path), kind=kind, source=source, size_bytes=mark.size)
        problem = unfinished_export(path, self.ws.exports_dir) if kind == "gguf" else None

        def marked(found: ModelInfo) -> ModelInfo:
            found.error = problem or found.error
            return found

        entry = Listed(f"{path}|{name}", info, mark.digest, lambda: marked(INSPECTORS[kind](path, source, name)))
        fill_from_cache(
            self.cache, entry, lambda stored: marked(ModelInfo(**{**stored, "name": name, "source": source}))
        )
        return entry


def unfinished_export(path: Path, exports_dir: Path) -> str | None:
    """Why a GGUF file in an export folder is not a usable model: the export wrote it, then failed or was stopped
    before verifying it. Read from the export job's status each listing (the cache keeps only the file's details).
    """
    try:
        job_dir = exports_dir / path.relative_to(exports_dir).parts[0]
        state = json.loads(JobLayout(job_dir).status.read_text(encoding="utf-8")).get("state")
    except (ValueError, OSError, AttributeError, IndexError):  # not in an export folder, or no readable status
        return None
    if state in ("failed", "stopped"):
        return f"written by an export that {'failed' if state == 'failed' else 'was stopped'}; not verified"
    return None


def discover_models(ws: Any, hf_cache: bool | None = None, notes: list[str] | None = None) -> list[ModelInfo]:
    """Every model with its details, in listing order (what `ftbench models` prints); `notes` gets skipped folders."""
    catalog = ModelCatalog(ws, hf_cache)
    found = complete(catalog)
    if notes is not None:
        notes.extend(catalog.notes)
    return found


def tokenizer_models(ws: Any, hf_cache: bool | None = None) -> list[ModelInfo]:
    """HF models with a tokenizer.json (for token-length stats), a causal LM's first; details only for those."""
    catalog = ModelCatalog(ws, hf_cache)
    usable = []
    for entry in catalog.listing():
        if entry.info.kind == "hf" and (Path(entry.info.path) / "tokenizer.json").is_file():
            usable.append(entry.info if entry.complete else catalog.details(entry))
    catalog.save()
    usable.sort(key=lambda m: not (m.architecture or "").endswith("ForCausalLM"))
    return usable
