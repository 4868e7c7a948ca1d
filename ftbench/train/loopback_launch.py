"""`accelerate launch` for one machine with every listening socket on loopback.

torchrun's agent hosts the rendezvous TCPStore, and torch's TCPStore server listens on all interfaces whatever
MASTER_ADDR says (measured: torch 2.13 opens `[::]:PORT`, unauthenticated, for the whole run). TCPStore accepts a
listening socket made by the caller (`master_listen_fd`), and with `multi_tenant=True` a later store on the same
port in the same process reuses that server. So this wrapper binds 127.0.0.1:PORT itself, starts the store on it,
and then runs accelerate's launcher in this process: the agent's static rendezvous finds the loopback server and
uses it. The ranks' own sockets (gloo pairs, NCCL bootstrap) are pinned to the loopback interface through
GLOO_SOCKET_IFNAME / NCCL_SOCKET_IFNAME, set by `ftbench.train.distributed` unless the user set them.

Usage (as ftbench.train.distributed builds it): python -m ftbench.train.loopback_launch ACCELERATE-LAUNCH-ARGS...
with `--main_process_port PORT` among them.
"""

from __future__ import annotations

import datetime
import socket
import sys


def hold_loopback_store(port: int, world_size: int) -> tuple[socket.socket, object]:
    """The rendezvous store, listening on 127.0.0.1:`port` only; keep both returned objects alive."""
    import torch.distributed as dist

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    store = dist.TCPStore(
        "127.0.0.1",
        port,
        world_size,
        True,
        datetime.timedelta(minutes=30),
        wait_for_workers=False,
        multi_tenant=True,
        master_listen_fd=listener.fileno(),
    )
    return listener, store


def main(argv: list[str]) -> None:
    import os

    from ftbench.train.parent_watch import PARENT_ENV, watch_parent

    expected = os.environ.get(PARENT_ENV)
    watch_parent(int(expected) if expected else None)  # the job process: if it is killed, so is this launcher
    port = int(argv[argv.index("--main_process_port") + 1])
    processes = int(argv[argv.index("--num_processes") + 1])
    held = hold_loopback_store(port, processes)  # noqa: F841 - must outlive the launch
    import accelerate.utils.launch as accelerate_launch
    from accelerate.commands.launch import main as accelerate_main

    # accelerate falls back to a standalone rendezvous (a new all-interfaces store) when the port is taken;
    # here it is taken on purpose, by the loopback store the agent is meant to reuse.
    accelerate_launch.is_port_in_use = lambda _port=None: False
    sys.argv = ["accelerate-launch", *argv]
    accelerate_main()


if __name__ == "__main__":
    main(sys.argv[1:])
