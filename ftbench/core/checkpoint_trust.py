"""Which checkpoints may be resumed without asking.

Resuming unpickles a Trainer checkpoint's optimizer.pt, rng_state.pth and training_args.bin, and unpickling runs
code. A checkpoint ftbench saved in this workspace carries a mark: an HMAC of its run id and folder name under a
key that lives only in this workspace (`.ftbench-key`, mode 0600). A checkpoint copied in from elsewhere, moved
between runs or forged has no valid mark, and resuming it needs the live `--trust-checkpoint` flag.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from ftbench.core.atomic import atomic_write_json
from ftbench.core.errors import FtbenchError
from ftbench.core.layout import JobLayout

KEY_FILE = ".ftbench-key"
TRUST_ENV = "FTBENCH_TRUST_CHECKPOINT"  # set for one attempt by `ftbench resume --trust-checkpoint`


def workspace_of(run_dir: Path) -> Path:
    """<workspace>/runs/<id> -> <workspace>."""
    return Path(run_dir).resolve().parent.parent


def _key(workspace: Path, create: bool) -> bytes | None:
    path = workspace / KEY_FILE
    try:
        return bytes.fromhex(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        if not create:
            return None
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key.hex())
    return key


def _mac(key: bytes, run_dir: Path, checkpoint: Path) -> str:
    return hmac.new(key, f"{Path(run_dir).resolve().name}/{checkpoint.name}".encode(), hashlib.sha256).hexdigest()


def mark_checkpoint(run_dir: Path, checkpoint: Path) -> None:
    """Sign a checkpoint this process has just saved."""
    key = _key(workspace_of(run_dir), create=True)
    assert key is not None
    atomic_write_json(
        checkpoint / JobLayout.CHECKPOINT_MARK,
        {"run": Path(run_dir).resolve().name, "checkpoint": checkpoint.name, "mac": _mac(key, run_dir, checkpoint)},
    )


def is_ours(run_dir: Path, checkpoint: Path) -> bool:
    key = _key(workspace_of(run_dir), create=False)
    try:
        mark = json.loads((checkpoint / JobLayout.CHECKPOINT_MARK).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        bool(key)
        and isinstance(mark, dict)
        and hmac.compare_digest(str(mark.get("mac", "")), _mac(key, run_dir, checkpoint))
    )


def check_resume(run_dir: Path, checkpoint: Path, trusted: bool) -> None:
    """Refuse to resume (unpickle) a checkpoint ftbench did not save in this workspace, unless the user said so."""
    if trusted or is_ours(run_dir, checkpoint):
        return
    run = Path(run_dir).name
    raise FtbenchError(
        f"{checkpoint} was not saved by ftbench in this workspace, and resuming it would unpickle its "
        "optimizer.pt, rng_state.pth and training_args.bin (which can run code).",
        f"If you trust where it came from, resume with `ftbench resume {run} --trust-checkpoint`.",
    )
