"""Starting pull and push jobs, from the CLI or the TUI: check the repo id first, then a detached job.

Light (no huggingface_hub import), so the Models screen can start a pull without loading the client.
"""

from __future__ import annotations

import re
from typing import Any

from ftbench.core.errors import FtbenchError
from ftbench.core.jobs import Job, start_job
from ftbench.core.registry import Registry
from ftbench.core.workspace import Workspace

# The Hub's rule: an optional owner, then a name; letters, digits, '-', '_', '.'; no '--' or '..'; 96 at most.
_REPO_ID = re.compile(r"(?:[A-Za-z0-9][\w.-]{0,95}/)?[A-Za-z0-9][\w.-]{0,95}")
PULL_DESTINATIONS = ("cache", "workspace")


def check_repo_id(text: str) -> str:
    """`text` stripped, if it can be a Hub repo id; a FtbenchError naming what is wrong otherwise."""
    repo_id = text.strip()
    if not _REPO_ID.fullmatch(repo_id) or "--" in repo_id or ".." in repo_id or repo_id.endswith((".", "-")):
        raise FtbenchError(
            f"{text!r} is not a Hugging Face repo id.",
            "Write it as owner/name (letters, digits, '-', '_', '.'), e.g. HuggingFaceTB/SmolLM2-135M.",
        )
    return repo_id


def start_pull_job(
    ws: Workspace, repo_id: str, revision: str | None = None, include: list[str] | None = None, to: str = "cache"
) -> Job:
    """A `pull` job downloading `repo_id` into the Hugging Face cache (or, with to="workspace", a models folder)."""
    repo_id = check_repo_id(repo_id)
    if to not in PULL_DESTINATIONS:
        raise FtbenchError(f"--to {to!r} is not a destination.", "Use --to cache (the default) or --to workspace.")
    params: dict[str, Any] = {"repo_id": repo_id, "revision": revision, "include": list(include or []), "to": to}
    return start_job(
        ws,
        "pull",
        name=repo_id,
        params=params,
        meta={"repo_id": repo_id, "revision": revision, "to": to},
        on_launch=Registry(ws).sync_job,
    )


def start_push_job(ws: Workspace, params: dict[str, Any]) -> Job:
    """A `push` job; `params` come from hub/push.py `push_params` (checked and pinned in the caller's process)."""
    return start_job(
        ws,
        "push",
        name=params["repo_id"],
        params=params,
        meta={"repo_id": params["repo_id"], "source": params["source"], "what": params["what"]},
        on_launch=Registry(ws).sync_job,
    )
