"""Whether a training job may run a model folder's own Python (`trust_remote_code`): only a live flag says so.

Why not the recipe: a recipe is a file someone else may have written (a shared recipe, a run folder copied in,
the recipe frozen into a run that `resume` restarts). So `model.trust_remote_code: true` in a recipe is a
request, never the decision: `ftbench train/resume --trust-remote-code` decides, for one attempt, through an
environment variable the job process reads (`job_trust`); it is never stored in job.json.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ftbench.core.errors import FtbenchError

if TYPE_CHECKING:
    from ftbench.core.recipe import Recipe

TRUST_REMOTE_CODE_ENV = "FTBENCH_TRUST_REMOTE_CODE"  # "1" for one attempt started with --trust-remote-code
FLAG_HINT = "Read the model folder's Python files first; if you trust them, pass --trust-remote-code."


def remote_code_env(live_flag: bool) -> dict[str, str]:
    """The environment that carries this attempt's --trust-remote-code into its job (never the job folder)."""
    return {TRUST_REMOTE_CODE_ENV: "1" if live_flag else "0"}


def job_trusts_remote_code() -> bool:
    """Inside a job: whether this attempt was started with --trust-remote-code."""
    return os.environ.get(TRUST_REMOTE_CODE_ENV) == "1"


def launch_env(recipe: Recipe, live_flag: bool, source: str) -> dict[str, str]:
    """The job environment for this attempt's trust; refuses a recipe that asks for trust without the flag."""
    if recipe.model.trust_remote_code and not live_flag:
        raise FtbenchError(
            f"{source} sets model.trust_remote_code: true, but ftbench takes that only from the live "
            "--trust-remote-code flag.",
            FLAG_HINT,
        )
    return remote_code_env(live_flag)


def job_trust(recipe: Recipe) -> Recipe:
    """Inside the job: the recipe with trust_remote_code set from this attempt's live flag, whatever it said."""
    recipe.model.trust_remote_code = job_trusts_remote_code()
    return recipe
