"""How to reach a running server: its URL, an `ssh -L` line for a laptop, and a curl example.

Light (no web stack): the CLI prints these and the TUI shows them for a serve job from its status.json.
"""

from __future__ import annotations

import getpass
import json
import shlex
from typing import Any


def base_url(host: str, port: int) -> str:
    """The OpenAI base URL (what `OpenAI(base_url=...)` takes)."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/v1"


def ssh_tunnel_line(port: int, ssh_host: str, user: str | None = None) -> str:
    """The command to run on a laptop so that its localhost:PORT reaches the server on this machine."""
    user = user or getpass.getuser()
    return f"ssh -N -L {port}:127.0.0.1:{port} {user}@{ssh_host}"


def curl_example(url: str, model: str, needs_key: bool) -> str:
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 64})
    parts = [f"curl {url}/chat/completions", "-H 'Content-Type: application/json'"]
    if needs_key:
        parts.append('-H "Authorization: Bearer $FTBENCH_API_KEY"')
    parts.append(f"-d {shlex.quote(body)}")
    return " ".join(parts)


def serve_card(serve: dict[str, Any], host_name: str) -> list[str]:
    """The lines the CLI and the TUI show for a ready server (from status.json's `serve`)."""
    url, port = serve["url"], int(serve["port"])
    variants = serve.get("variants") or []
    lines = [f"URL:      {url}", f"models:   {', '.join(variants)}"]
    if serve.get("loopback", True):
        lines.append(f"laptop:   {ssh_tunnel_line(port, host_name)}")
    lines.append(f"try:      {curl_example(url, variants[0] if variants else 'base', bool(serve.get('auth')))}")
    return lines
