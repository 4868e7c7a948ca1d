"""Client for the chat server: spawns `python -m ftbench.chat.server` and talks JSON lines to it.

Safe to import from the TUI: only the standard library and protocol.py. A reader thread turns server lines
into events and hands each to `on_event` (the TUI posts it as a message) and to whoever waits on that
request id (the CLI). When the server dies, every waiter gets an `error` event and `on_event` gets an `exit`
event with the return code and the tail of the server's stderr, so the caller can say what happened and
offer a restart instead of crashing. `close()` ends the server: quitting chat frees the GPU.
"""

from __future__ import annotations

import itertools
import os
import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ftbench.chat.protocol import GenSettings, ProtocolError, VariantSpec, decode, encode
from ftbench.core.errors import FtbenchError

EventCallback = Callable[[dict[str, Any]], None]
FINAL_TYPES = ("ok", "loaded", "done", "error")


class ChatClient:
    """One chat server process and the requests in flight to it."""

    def __init__(
        self,
        on_event: EventCallback | None = None,
        log_path: str | os.PathLike[str] | None = None,
        server_args: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.on_event = on_event
        self.log_path = Path(log_path) if log_path else Path(tempfile.mkstemp(prefix="ftbench-chat-", suffix=".log")[1])
        self.server_args = list(server_args or [])
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.ids = itertools.count(1)
        self.waiters: dict[int, queue.Queue[dict[str, Any]]] = {}
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.exit_event: dict[str, Any] | None = None
        self._reader: threading.Thread | None = None
        self._closing = False

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self, timeout_s: float = 60.0) -> ChatClient:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child; closed right after the spawn
        env = {**os.environ, **(self.env or {}), "PYTHONUNBUFFERED": "1"}
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ftbench.chat.server", *self.server_args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
            )
        finally:
            log.close()
        self.exit_event = None
        self._closing = False
        self.ready.clear()
        self._reader = threading.Thread(target=self._read_loop, name="chat-client-reader", daemon=True)
        self._reader.start()
        if not self.ready.wait(timeout_s):
            if self.exit_event is None:
                self.close()
            raise FtbenchError(
                f"The chat server did not start within {timeout_s:.0f} s: {self.stderr_tail(3) or 'no output'}.",
                f"See {self.log_path}.",
            )
        if self.exit_event is not None:
            raise FtbenchError(
                f"The chat server exited at start: {self.exit_event['stderr_tail']}.", f"See {self.log_path}."
            )
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def close(self, timeout_s: float = 5.0) -> None:
        """Ask the server to shut down, then terminate and kill it if it lingers."""
        proc = self.proc
        if proc is None:
            return
        self._closing = True
        if proc.poll() is None:
            try:
                self._write({"op": "cancel", "id": next(self.ids)})
                self._write({"op": "shutdown", "id": next(self.ids)})
                proc.stdin.close()  # type: ignore[union-attr]
            except (BrokenPipeError, OSError, ValueError):
                pass
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(2.0)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(2.0)

    def stderr_tail(self, n: int = 8) -> str:
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return " | ".join(ln.strip() for ln in lines[-n:] if ln.strip())

    # -- requests ------------------------------------------------------------------------------------------

    def _write(self, obj: dict[str, Any]) -> None:
        if self.proc is None or self.proc.stdin is None:
            raise FtbenchError("The chat server is not running.", "Start it (the chat screen restarts it with ctrl+r).")
        with self.lock:
            self.proc.stdin.write(encode(obj))
            self.proc.stdin.flush()

    def send(self, op: str, wait: bool = False, **fields: Any) -> int:
        """Send a request; returns its id. With wait=True, a queue for its events is registered first."""
        rid = next(self.ids)
        if wait:
            self.waiters[rid] = queue.Queue()
        if not self.alive:
            self._fail(rid, "The chat server is not running.")
            return rid
        try:
            self._write({"op": op, "id": rid, **fields})
        except (BrokenPipeError, OSError, ValueError):
            self._fail(rid, "The chat server closed its input.")
        return rid

    def wait(
        self, rid: int, timeout_s: float | None = None, on_token: Callable[[str], None] | None = None
    ) -> dict[str, Any]:
        """Block until request `rid` ends; passes streamed text to `on_token`. Returns the final event."""
        waiter = self.waiters[rid]
        try:
            while True:
                try:
                    event = waiter.get(timeout=timeout_s)
                except queue.Empty as exc:
                    raise FtbenchError(
                        f"The chat server did not answer request {rid} within {timeout_s} s.", f"See {self.log_path}."
                    ) from exc
                if event["type"] == "token" and on_token is not None:
                    on_token(event["text"])
                if event["type"] in FINAL_TYPES:
                    return event
        finally:
            self.waiters.pop(rid, None)

    def call(self, op: str, timeout_s: float | None = None, **fields: Any) -> dict[str, Any]:
        """Send and wait; raises FtbenchError with the server's sentence when the answer is an error."""
        event = self.wait(self.send(op, wait=True, **fields), timeout_s)
        if event["type"] == "error":
            err = event.get("error") or {}
            raise FtbenchError(err.get("message", "The chat server failed."), err.get("hint"))
        return event

    def load(self, spec: VariantSpec, timeout_s: float | None = None) -> dict[str, Any]:
        return self.call("load", timeout_s, variant=spec.to_dict())

    def generate(
        self,
        variant: str,
        messages: list[dict[str, str]],
        settings: GenSettings,
        on_token: Callable[[str], None] | None = None,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        rid = self.send("generate", wait=True, variant=variant, messages=messages, settings=settings.to_dict())
        event = self.wait(rid, timeout_s, on_token)
        if event["type"] == "error":
            err = event.get("error") or {}
            raise FtbenchError(err.get("message", "Generation failed."), err.get("hint"))
        return event

    def cancel(self, target: int | None = None) -> None:
        fields = {"target": target} if target is not None else {}
        if self.alive:
            self.send("cancel", **fields)

    # -- events --------------------------------------------------------------------------------------------

    def _dispatch(self, event: dict[str, Any]) -> None:
        rid = event.get("id")
        if isinstance(rid, int) and rid in self.waiters:
            self.waiters[rid].put(event)
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:  # noqa: BLE001 - a broken UI callback must not kill the reader
                import traceback

                traceback.print_exc()

    def _fail(self, rid: int, message: str) -> None:
        self._dispatch({"type": "error", "id": rid, "error": {"message": message, "hint": f"See {self.log_path}."}})

    def _read_loop(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = decode(line)
            except ProtocolError as exc:
                event = {"type": "log", "level": "warning", "message": f"unreadable server line: {exc.message}"}
            if event.get("type") == "ready":
                self.ready.set()
            self._dispatch(event)
        code = self.proc.wait()
        tail = self.stderr_tail()
        self.exit_event = {"type": "exit", "returncode": code, "expected": self._closing, "stderr_tail": tail}
        for rid in list(self.waiters):
            self._fail(rid, f"The chat server exited (code {code}){': ' + tail if tail else ''}.")
        self.ready.set()
        if self.on_event is not None:
            self.on_event(self.exit_event)
