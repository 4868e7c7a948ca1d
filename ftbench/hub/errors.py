"""huggingface_hub's exceptions as one sentence each, naming the fix (`HF_TOKEN`, `hf auth login`, offline mode).

The client's own messages are several paragraphs with URLs; a user who typed a repo id wants to know which
of four things went wrong: the name, the token, the gate, or the network (or offline mode) - and what to do.
"""

from __future__ import annotations

from ftbench.core.errors import FtbenchError

LOGIN = "set HF_TOKEN to a token from {endpoint}/settings/tokens, or run `hf auth login`"


def explain_hub_error(exc: BaseException, repo_id: str, revision: str | None = None) -> BaseException:
    """A FtbenchError for the failures a user can fix; anything else is returned unchanged.

    The client wraps the HTTP error it met in its own (a dry run's DryRunError, LocalEntryNotFoundError when
    no cached copy can stand in), so the chain of causes is searched, the innermost first."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for candidate in reversed(chain):
        explained = _explain_one(candidate, repo_id, revision)
        if explained is not None:
            return explained
    return exc


def _explain_one(exc: BaseException, repo_id: str, revision: str | None) -> FtbenchError | None:
    from huggingface_hub import constants, errors, get_token

    endpoint = constants.ENDPOINT
    login = LOGIN.format(endpoint=endpoint)
    has_token = get_token() is not None
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    message = response.headers.get("X-Error-Message", "") if response is not None else ""
    if isinstance(exc, errors.RevisionNotFoundError):
        return FtbenchError(
            f"{repo_id} has no revision {revision!r} on {endpoint}.",
            "Pass --revision with an existing branch, tag or commit (the default is main).",
        )
    if isinstance(exc, errors.GatedRepoError):
        if has_token:
            return FtbenchError(
                f"{repo_id} is gated and your token has not been granted access.",
                f"Accept its terms at {endpoint}/{repo_id} with the account the token belongs to, then retry.",
            )
        return FtbenchError(
            f"{repo_id} is gated and no Hugging Face token was sent.",
            f"Accept its terms at {endpoint}/{repo_id}, then {login}.",
        )
    if status == 401 and "Invalid credentials" in message:
        return FtbenchError(
            "The Hugging Face token was refused (invalid or expired).", f"Create a new one and {login}."
        )
    if isinstance(exc, errors.RepositoryNotFoundError):
        if has_token:
            return FtbenchError(
                f"{repo_id} was not found on {endpoint}, or your token cannot read it (private).",
                "Check the repo id (owner/name), or use a token with read access to it.",
            )
        return FtbenchError(
            f"{repo_id} was not found on {endpoint}; if it is private, no token was sent.",
            f"Check the repo id (owner/name); for a private repo {login}.",
        )
    if isinstance(exc, errors.OfflineModeIsEnabled) or (
        isinstance(exc, errors.LocalEntryNotFoundError) and constants.is_offline_mode()
    ):
        return FtbenchError(
            f"HF_HUB_OFFLINE is set and {repo_id} is not (completely) in the Hugging Face cache.",
            "Unset HF_HUB_OFFLINE (or set it to 0) to download it.",
        )
    if isinstance(exc, errors.LocalEntryNotFoundError):
        return FtbenchError(
            f"Cannot reach {endpoint} to download {repo_id}, and it is not in the Hugging Face cache.",
            "Check the network (and HF_ENDPOINT if set), then run the same command again; it resumes.",
        )
    return None
