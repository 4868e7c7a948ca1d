"""Who may reach the server: loopback unless told otherwise, and never a public address without a key.

Light on purpose (no web stack): the CLI checks the bind before it starts a job, and the job checks again,
because the job must not rely on its launcher. Keys are compared in constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
import os

from ftbench.core.errors import FtbenchError

KEY_ENV = "FTBENCH_API_KEY"
LOOPBACK_NAMES = ("localhost", "ip6-localhost")


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and `localhost`; any other name counts as public (it may resolve anywhere)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, api_key: str | None) -> None:
    """Refuse to open a non-loopback address without a key."""
    if not is_loopback(host) and not api_key:
        raise FtbenchError(
            f"Refusing to serve on {host} without an API key: anyone who can reach that address could use the models.",
            f"Pass --api-key KEY (or set {KEY_ENV}), or keep the default --host 127.0.0.1 and use `ssh -L`.",
        )


def api_key_from(flag: str | None) -> str | None:
    """The key from --api-key, else from the environment; empty means none."""
    key = flag if flag is not None else os.environ.get(KEY_ENV)
    return key or None


def key_matches(expected: str, authorization: str | None) -> bool:
    """True when the `Authorization: Bearer KEY` header carries `expected`, compared in constant time."""
    if not authorization:
        return False
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("utf-8"), expected.encode("utf-8"))
