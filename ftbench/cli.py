"""`ftbench`: no subcommand opens the TUI; subcommands are the headless face of every TUI action.

User errors (`FtbenchError`) print one sentence and a hint and exit 2, without a traceback unless
`--debug`. Output meant for scripts is printed as JSON with `--json`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from ftbench import __version__
from ftbench.core.errors import FtbenchError
from ftbench.core.log_noise import filter_stderr

# Each module in ftbench.commands registers its subcommands; order is the order of `ftbench --help`.
COMMAND_MODULES = (
    "jobs",
    "demo",
    "doctor",
    "train",
    "predict",
    "chat",
    "eval",
    "serve",
    "export",
    "hub",
    "catalog",
    "completion",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ftbench",
        description="A terminal workbench for local fine-tuning. Without a command, opens the TUI.",
    )
    parser.add_argument("--version", action="version", version=f"ftbench {__version__}")
    add_common(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"ftbench.commands.{name}").register(sub)
    return parser


def add_common(parser: argparse.ArgumentParser, suppress: bool = False) -> None:
    """Global options, accepted before or after the subcommand."""
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--workspace",
        "-w",
        metavar="DIR",
        default=default,
        help="workspace folder (default: $FTBENCH_HOME or the per-user data folder)",
    )
    parser.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS if suppress else False, help="show tracebacks"
    )


def subparser(sub: Any, name: str, help: str, **kwargs: Any) -> argparse.ArgumentParser:
    """A subcommand parser that also takes the global options after the subcommand name."""
    parser = sub.add_parser(name, help=help, description=help, **kwargs)
    add_common(parser, suppress=True)
    return parser


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


def open_workspace(args: argparse.Namespace):
    from ftbench.core.workspace import Workspace

    ws = Workspace.open(args.workspace)
    if ws.created:
        print(f"Created a new ftbench workspace at {ws.root}", file=sys.stderr)
    return ws


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False) or bool(os.environ.get("FTBENCH_DEBUG"))
    try:
        ws = open_workspace(args)
        if args.command is None:
            from ftbench.tui.app import run_app

            return run_app(ws)
        filter_stderr()
        return int(args.func(args, ws) or 0)
    except FtbenchError as exc:
        if debug:
            raise
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _closed_pipe()
    except UnicodeDecodeError as exc:
        if debug:
            raise
        print(
            f"error: a file is not UTF-8 text (byte 0x{exc.object[exc.start]:02X} at offset {exc.start}).",
            file=sys.stderr,
        )
        print("hint: Save it as UTF-8; run again with --debug to see which file.", file=sys.stderr)
        return 2
    except OSError as exc:
        if debug:
            raise
        print(f"error: {os_error_sentence(exc)}", file=sys.stderr)
        print("hint: Check the path, its permissions and free space; --debug shows where it happened.", file=sys.stderr)
        return 2


def os_error_sentence(exc: OSError) -> str:
    """`[Errno 13] Permission denied: 'x'` as one sentence that names the path."""
    reason = exc.strerror or type(exc).__name__
    if exc.filename is None:
        return f"{reason}."
    target = f" -> {exc.filename2}" if exc.filename2 is not None else ""
    return f"{exc.filename}{target}: {reason}."


def _closed_pipe() -> int:
    """The reader went away (`ftbench show ID | head`): stop quietly, and keep Python's exit flush from
    complaining about the same closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 141  # 128 + SIGPIPE, what a shell reports for a writer whose pipe closed


if __name__ == "__main__":
    sys.exit(main())
