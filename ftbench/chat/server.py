"""The chat server process: `python -m ftbench.chat.server`, JSON lines on stdin/stdout (see protocol.py).

It holds every loaded model, so the TUI and the CLI stay light and survive a crash or an out-of-memory here.
A reader thread parses requests; `cancel` is handled at once (so it can interrupt a running generation), all
else runs in order on the main thread. A failure in one request becomes an `error` event for that request
and the server keeps serving the other columns. stdout is reserved for the protocol: anything a library
prints there is moved to stderr. The server exits on `shutdown` or when stdin closes (its client is gone).
"""

from __future__ import annotations

import argparse
import os
import queue
import sys
import threading
import time
from typing import Any, BinaryIO

from ftbench.chat.protocol import (
    PROTOCOL_VERSION,
    GenSettings,
    ProtocolError,
    VariantSpec,
    decode,
    encode,
    error_event,
    validate_request,
)
from ftbench.core.errors import FtbenchError


class ChatServer:
    """Dispatches requests to backends; one backend object per family, created on first use."""

    def __init__(self, out: BinaryIO, options: dict[str, Any] | None = None) -> None:
        self.out = out
        self.options = options or {}
        self.write_lock = threading.Lock()
        self.backends: dict[str, Any] = {}
        self.variant_backend: dict[str, str] = {}
        self.specs: dict[str, VariantSpec] = {}
        self.cancel_upto = -1  # every generate with id <= this is cancelled
        self.cancelled: set[int] = set()
        self.requests: queue.Queue[dict[str, Any] | None] = queue.Queue()

    # -- output --------------------------------------------------------------------------------------------

    def send(self, event: dict[str, Any]) -> None:
        data = encode(event)
        with self.write_lock:
            try:
                self.out.write(data)
                self.out.flush()
            except (BrokenPipeError, ValueError):  # the client is gone; stdin EOF ends us next
                pass

    # -- input ---------------------------------------------------------------------------------------------

    def read_loop(self, stream: BinaryIO) -> None:
        for line in stream:
            if not line.strip():
                continue
            try:
                req = validate_request(decode(line))
            except ProtocolError as exc:
                self.send(error_event(None, exc))
                continue
            if req["op"] == "cancel":
                target = req.get("target")
                if isinstance(target, int):
                    self.cancelled.add(target)
                else:
                    self.cancel_upto = req["id"]
                self.send({"type": "ok", "id": req["id"]})
                continue
            self.requests.put(req)
        self.requests.put(None)

    def is_cancelled(self, req_id: int) -> bool:
        return req_id <= self.cancel_upto or req_id in self.cancelled

    # -- dispatch ------------------------------------------------------------------------------------------

    def serve(self) -> None:
        while True:
            req = self.requests.get()
            if req is None:
                return
            if req["op"] == "shutdown":
                self.send({"type": "ok", "id": req["id"]})
                return
            self.handle(req)

    def handle(self, req: dict[str, Any]) -> None:
        op, rid = req["op"], req["id"]
        variant = req.get("variant") if isinstance(req.get("variant"), str) else (req.get("variant") or {}).get("name")
        try:
            if op == "ping":
                self.send({"type": "ok", "id": rid, "pid": os.getpid()})
            elif op == "list":
                self.send({"type": "ok", "id": rid, "variants": [self.specs[n].to_dict() for n in self.specs]})
            elif op == "load":
                self.load(rid, VariantSpec.from_dict(req["variant"]))
            elif op == "unload":
                self.unload(rid, req["variant"])
            elif op == "generate":
                self.generate(rid, req)
        except Exception as exc:  # noqa: BLE001 - one bad request must never end the server
            if not isinstance(exc, FtbenchError):
                import traceback

                traceback.print_exc(file=sys.stderr)
            self.send(error_event(rid, exc, variant))

    def backend_for(self, kind: str) -> Any:
        family = {"hf": "hf", "adapter": "hf", "gguf": "gguf", "scripted": "scripted"}[kind]
        if family not in self.backends:
            if family == "hf":
                from ftbench.chat.hf import HFBackend

                self.backends[family] = HFBackend(
                    device=self.options.get("device"),
                    quantize=self.options.get("quantize"),
                    trust_remote_code=bool(self.options.get("trust_remote_code")),
                )
            elif family == "gguf":
                from ftbench.chat.llamacpp import LlamaCppBackend

                self.backends[family] = LlamaCppBackend(n_ctx=int(self.options.get("n_ctx", 2048)))
            else:
                from ftbench.chat.scripted import ScriptedBackend

                self.backends[family] = ScriptedBackend()
        return self.backends[family]

    def load(self, rid: int, spec: VariantSpec) -> None:
        if spec.name in self.specs:
            raise FtbenchError(
                f"A column named '{spec.name}' is already loaded.", "Remove it first or pick another name."
            )
        backend = self.backend_for(spec.kind)
        info = backend.load(spec)
        self.variant_backend[spec.name] = spec.kind
        self.specs[spec.name] = spec
        self.send({"type": "loaded", "id": rid, "variant": spec.name, **info})

    def unload(self, rid: int, name: str) -> None:
        if name not in self.specs:
            raise FtbenchError(f"No loaded column named '{name}'.", "List columns with the 'list' op.")
        self.backend_for(self.variant_backend[name]).unload(name)
        del self.specs[name], self.variant_backend[name]
        self.send({"type": "ok", "id": rid, "variant": name})

    def generate(self, rid: int, req: dict[str, Any]) -> None:
        name = req["variant"]
        if name not in self.specs:
            raise FtbenchError(f"No loaded column named '{name}'.", "Load the variant before generating with it.")
        settings = GenSettings.from_dict(req.get("settings"))
        if self.is_cancelled(rid):
            self.send(
                {
                    "type": "done",
                    "id": rid,
                    "variant": name,
                    "text": "",
                    "tokens": 0,
                    "ttft_s": None,
                    "tok_s": None,
                    "total_s": 0.0,
                    "stop_reason": "cancelled",
                    "cancelled": True,
                }
            )
            return
        backend = self.backend_for(self.variant_backend[name])
        result = backend.generate(
            name,
            req["messages"],
            settings,
            lambda piece: self.send({"type": "token", "id": rid, "variant": name, "text": piece}),
            lambda: self.is_cancelled(rid),
        )
        self.send(
            {"type": "done", "id": rid, "variant": name, "cancelled": result["stop_reason"] == "cancelled", **result}
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ftbench.chat.server", description="ftbench chat server (JSON lines on stdio)."
    )
    parser.add_argument("--device", default=None, help="cuda, cpu or auto (default)")
    parser.add_argument("--quantize", choices=("4bit", "8bit"), default=None, help="load HF bases 4/8-bit (GPU only)")
    parser.add_argument("--trust-remote-code", action="store_true")
    parser.add_argument("--n-ctx", type=int, default=2048, help="llama.cpp context size")
    args = parser.parse_args(argv)
    # Keep fd 1 for the protocol only: libraries that print to stdout write to stderr instead.
    proto = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    server = ChatServer(
        proto,
        {
            "device": args.device,
            "quantize": args.quantize,
            "trust_remote_code": args.trust_remote_code,
            "n_ctx": args.n_ctx,
        },
    )
    reader = threading.Thread(target=server.read_loop, args=(sys.stdin.buffer,), daemon=True, name="chat-reader")
    reader.start()
    server.send({"type": "ready", "pid": os.getpid(), "protocol": PROTOCOL_VERSION, "time": time.time()})
    try:
        server.serve()
    except KeyboardInterrupt:
        pass
    proto.flush()
    # Skip interpreter teardown of model objects (slow with big models); everything is already sent.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
