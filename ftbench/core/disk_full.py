"""A full disk, told as one sentence, and the space a job keeps back to record how it ended.

Libraries report a full disk in their own words (`OSError [Errno 28]`, torch's "PytorchStreamWriter failed
writing file", safetensors' "StorageFull"), usually without the file. `disk_full_error` recognises them,
names what was being written (the newest file in the job folder, e.g. `checkpoint-3`) and the mount that is
full: "disk full while writing checkpoint-3: 0 B free on /mnt/ws". Every job folder holds a small reserve
file from the moment it is made (`reserve_space`); the job process frees it just before writing its final
state, so that state and its cause always fit on the disk that stopped the job.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from ftbench.core.errors import FtbenchError
from ftbench.core.humanize import human_size
from ftbench.core.layout import CHECKPOINT_RE

RESERVE_NAME = ".reserve"  # in a job folder: freed to write the final status, events and registry record
RESERVE_BYTES = 1 << 20
FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
FULL_TEXTS = ("no space left on device", "storagefull", "os error 28", "disk quota exceeded")
VAGUE_TEXTS = ("file write failed", "failed writing file")  # torch's words; a full disk only if space is gone
NEARLY_FULL = 4 << 20


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def is_disk_full(exc: BaseException, folder: Path | None = None) -> bool:
    """True when `exc` (or what caused it) is a write that the disk had no room for."""
    for item in _chain(exc):
        if isinstance(item, OSError) and item.errno in FULL_ERRNOS:
            return True
        text = str(item).lower()
        if any(mark in text for mark in FULL_TEXTS):
            return True
        if folder is not None and any(mark in text for mark in VAGUE_TEXTS):
            return free_bytes(folder) < NEARLY_FULL
    return False


def free_bytes(path: Path) -> int:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return 0


def mount_point(path: Path) -> Path:
    """The mount `path` lives on: the highest parent on the same device."""
    path = Path(path).resolve()
    try:
        device = path.stat().st_dev
    except OSError:
        return path
    while path.parent != path:
        try:
            if path.parent.stat().st_dev != device:
                break
        except OSError:
            break
        path = path.parent
    return path


def newest_file(folder: Path) -> Path | None:
    """The most recently written file under `folder`, leaving out the job's own bookkeeping files."""
    skip = {"status.json", "events.jsonl", "log.txt", RESERVE_NAME}
    newest: tuple[float, Path] | None = None
    for root, _dirs, files in os.walk(folder):
        for name in files:
            if name in skip or name.startswith((".tmp-", ".status")):
                continue
            path = Path(root) / name
            try:
                mtime = path.stat().st_mtime
            except OSError:
                continue
            if newest is None or mtime > newest[0]:
                newest = (mtime, path)
    return newest[1] if newest else None


def what_was_written(exc: BaseException, folder: Path) -> str:
    """'checkpoint-3', 'merged/model.safetensors' ...: the file in the error, else the newest one in the folder."""
    named = next((Path(e.filename) for e in _chain(exc) if isinstance(e, OSError) and e.filename), None)
    path = named or newest_file(folder)
    if path is None:
        return "the job's files"
    try:
        rel = Path(os.path.abspath(path)).relative_to(Path(folder).resolve())
    except ValueError:
        return str(path)
    checkpoint = next((part for part in rel.parts if CHECKPOINT_RE.fullmatch(part)), None)
    return checkpoint or str(rel)


def disk_full_error(exc: BaseException, folder: Path) -> FtbenchError:
    """The sentence a job's status keeps when the disk filled under it."""
    mount = mount_point(folder)
    return FtbenchError(
        f"disk full while writing {what_was_written(exc, folder)}: {human_size(free_bytes(folder))} free on {mount}.",
        f"Free space on {mount}, then run it again; `ftbench resume ID` continues a training run from its last "
        "complete checkpoint.",
    )


def reserve_space(folder: Path) -> None:
    """Keep RESERVE_BYTES of real blocks in `folder` (raises OSError when the disk cannot spare them)."""
    path = Path(folder) / RESERVE_NAME
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        if os.write(fd, b"\0" * RESERVE_BYTES) != RESERVE_BYTES:  # written, not fallocated: every filesystem holds it
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        os.fsync(fd)
    except OSError:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


def release_space(folder: Path) -> None:
    (Path(folder) / RESERVE_NAME).unlink(missing_ok=True)
