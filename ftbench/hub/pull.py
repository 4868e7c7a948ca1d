"""The pull job target (`kind="pull"`): `huggingface_hub.snapshot_download`, with progress in bytes.

By default the files go into the Hugging Face cache (HF_HUB_CACHE / HF_HOME / XDG_CACHE_HOME, as
huggingface_hub's constants say), so transformers, vLLM and every other tool find them there too; with
`to: workspace` they go to a real folder under the workspace's first models folder. Interrupted downloads
resume file by file: every finished file stays in place, so running the same pull again after a kill
fetches only what was not complete. (huggingface_hub 2.x writes each partial file under a name private to
its process and resumes it with a Range request only within that process, after a dropped connection.)

Progress is measured on disk (finished files plus the bytes of `*.incomplete` files written since the job
started, against the sizes a dry run listed), which needs nothing from the client's progress bars.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftbench.core.atomic import atomic_write_json
from ftbench.core.errors import FtbenchError
from ftbench.core.safe_paths import inside, safe_name

if TYPE_CHECKING:
    from ftbench.core.job_context import JobContext
    from ftbench.core.workspace import Workspace

PROGRESS_EVERY_S = 0.5
# Written into a workspace pull's folder (beside huggingface_hub's own .cache/huggingface metadata): where it
# came from, so `ftbench push` can name the base model by its repo id.
SOURCE_FILE = Path(".cache") / "huggingface" / "ftbench-source.json"


def workspace_folder(ws: Workspace, repo_id: str) -> Path:
    """models/<name> for a `--to workspace` pull: the repo's name, checked to stay inside the models folder."""
    root = ws.model_roots()[0]
    return inside(root, safe_name(repo_id.split("/")[-1]))


def repo_id_of(folder: Path) -> str | None:
    """The Hub repo id a model folder came from: a HF cache snapshot, or a folder `ftbench pull --to workspace` wrote."""
    from huggingface_hub.constants import REPO_ID_SEPARATOR

    try:
        return json.loads((folder / SOURCE_FILE).read_text(encoding="utf-8"))["repo_id"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    parts = folder.resolve().parts
    if len(parts) >= 3 and parts[-2] == "snapshots" and parts[-3].startswith(f"models{REPO_ID_SEPARATOR}"):
        return parts[-3][len(f"models{REPO_ID_SEPARATOR}") :].replace(REPO_ID_SEPARATOR, "/")
    return None


def run(ctx: JobContext) -> None:
    """params: repo_id, revision (None = main), include (glob list, empty = all), to ("cache" | "workspace")."""
    from huggingface_hub import constants, snapshot_download

    p = ctx.params
    repo_id, revision, include = p["repo_id"], p.get("revision"), p.get("include") or None
    local_dir = workspace_folder(ctx.workspace, repo_id) if p.get("to") == "workspace" else None
    if local_dir is not None:
        _check_destination(local_dir, repo_id)
        # written first, so an interrupted pull is recognised as this repo's when it is run again
        atomic_write_json(local_dir / SOURCE_FILE, {"repo_id": repo_id, "revision": revision, "commit": None})
    where = str(local_dir) if local_dir else constants.HF_HUB_CACHE
    ctx.log(f"Pulling {repo_id}{'@' + revision if revision else ''} from {constants.ENDPOINT} into {where}")
    kwargs: dict[str, Any] = {"repo_id": repo_id, "revision": revision, "allow_patterns": include}
    if local_dir is not None:
        kwargs["local_dir"] = str(local_dir)
    try:
        planned = [] if constants.is_offline_mode() else snapshot_download(**kwargs, dry_run=True)
        if include and not constants.is_offline_mode() and not planned:
            raise FtbenchError(
                f"No file of {repo_id} matches --include {' '.join(include)}.",
                "Check the patterns (shell globs such as '*.json' 'model*.safetensors'), or drop --include.",
            )
        total = sum(f.file_size or 0 for f in planned)
        ctx.progress("download", 0, total)
        with _DiskProgress(ctx, planned, local_dir, total):
            path = Path(snapshot_download(**kwargs))
    except Exception as exc:
        from ftbench.hub.errors import explain_hub_error

        raise explain_hub_error(exc, repo_id, revision) from exc
    files = sorted(f for f in path.rglob("*") if f.is_file() and ".cache" not in f.relative_to(path).parts)
    size = sum(f.stat().st_size for f in files)
    ctx.progress("download", size, size)
    commit = path.name if local_dir is None else _commit_of(planned)
    if local_dir is not None:
        atomic_write_json(local_dir / SOURCE_FILE, {"repo_id": repo_id, "revision": revision, "commit": commit})
    ctx.set_result(
        repo_id=repo_id,
        revision=revision or "main",
        commit=commit,
        path=str(path),
        to=p.get("to") or "cache",
        files=len(files),
        bytes=size,
    )
    ctx.log(f"Pulled {repo_id} ({len(files)} files, {size} bytes) to {path}")


def _commit_of(planned: list[Any]) -> str | None:
    return planned[0].commit_hash if planned else None


def _check_destination(folder: Path, repo_id: str) -> None:
    """A workspace pull may finish or refresh its own earlier pull, never write into another model's folder."""
    if not folder.exists() or not any(folder.iterdir()):
        return
    if repo_id_of(folder) == repo_id:
        return
    raise FtbenchError(
        f"{folder} already exists and was not pulled from {repo_id}.",
        "Move that folder away, or pull into the Hugging Face cache (the default, without --to workspace).",
    )


class _DiskProgress:
    """A thread that reports bytes on disk (finished files + `*.incomplete`) every PROGRESS_EVERY_S seconds."""

    def __init__(self, ctx: JobContext, planned: list[Any], local_dir: Path | None, total: int) -> None:
        self.ctx, self.planned, self.total = ctx, planned, total
        self.partial_root = self._partial_root(planned, local_dir)
        self.started = time.time() - 1  # partial files of an earlier, killed pull are not this one's progress
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    @staticmethod
    def _partial_root(planned: list[Any], local_dir: Path | None) -> Path | None:
        if local_dir is not None:
            return local_dir / ".cache" / "huggingface"
        if not planned:
            return None
        # <cache>/models--org--name/snapshots/<commit>/<file>: the blobs (and *.incomplete) sit in the repo folder
        path = Path(planned[0].local_path)
        depth = len(Path(planned[0].filename).parts)
        return path.parents[depth + 1] / "blobs"

    def done(self) -> int:
        finished = sum(f.file_size or 0 for f in self.planned if Path(f.local_path).is_file())
        partial = 0
        if self.partial_root is not None and self.partial_root.is_dir():
            stats = [p.stat() for p in self.partial_root.rglob("*.incomplete") if p.is_file()]
            partial = sum(st.st_size for st in stats if st.st_mtime >= self.started)
        return min(finished + partial, self.total)

    def _loop(self) -> None:
        while not self._stop.wait(PROGRESS_EVERY_S):
            self.ctx.progress("download", self.done(), self.total)

    def __enter__(self) -> _DiskProgress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
