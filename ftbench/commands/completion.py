"""`ftbench completion bash|zsh|fish`: print a shell completion script (generated from the parser by shtab).

Subcommands and options come from the argparse tree, so a new command completes without touching this file.
Values that live in the workspace (job ids, `last`, `RUN@checkpoint-N`, model names) are asked for at Tab
time through `ftbench completion --candidates KIND PREFIX`, which answers from core/handles.py - the same
notion of "which job is meant" that every command resolves with. Recipes complete as *.yaml / *.yml files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ftbench.cli import subparser
from ftbench.core.artifacts import classify
from ftbench.core.errors import FtbenchError
from ftbench.core.handles import candidates
from ftbench.core.workspace import Workspace

SHELLS = ("bash", "zsh", "fish")
KINDS = ("job", "model")


def _dynamic(kind: str) -> dict[str, Any]:
    """A shtab `complete` spec whose candidates come from `ftbench completion --candidates KIND` at Tab time."""
    ask = f"ftbench completion --candidates {kind} --prefix="
    return {
        "bash": f"_ftbench_{kind}",
        "zsh": f"_ftbench_{kind}",
        "fish": f"({ask}(commandline -ct) 2>/dev/null)",
        "preamble": {
            "bash": f'_ftbench_{kind}() {{\n  {ask}"$1" 2>/dev/null\n}}\n',
            "zsh": f'_ftbench_{kind}() {{\n  compadd -- ${{(f)"$({ask}"$PREFIX" 2>/dev/null)"}}\n}}\n',
        },
    }


def _recipes() -> dict[str, Any]:
    import shtab

    return shtab.glob("*.yaml", "*.yml")


# (subcommand, argument dest) -> what its value completes to. The test checks every entry still exists.
COMPLETES: dict[tuple[str, str], str] = {
    ("show", "id"): "job",
    ("logs", "id"): "job",
    ("stop", "id"): "job",
    ("resume", "id"): "job",
    ("checkpoint", "id"): "job",
    ("predict", "run"): "job",
    ("chat", "adapter"): "job",
    ("serve", "adapter"): "job",
    ("export", "source"): "model",
    ("push", "source"): "model",
    ("chat", "model"): "model",
    ("chat", "also"): "model",
    ("serve", "model"): "model",
    ("estimate", "model"): "model",
    ("train", "recipe"): "recipe",
    ("validate", "recipe"): "recipe",
}


def register(sub: Any) -> None:
    p = subparser(sub, "completion", "print a bash/zsh/fish completion script (see README, 'Shell completion')")
    p.add_argument("shell", nargs="?", choices=SHELLS, help="the shell to print the script for")
    p.add_argument("--candidates", choices=KINDS, help=argparse.SUPPRESS)
    p.add_argument("--prefix", default="", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_completion)


def cmd_completion(args: argparse.Namespace, ws: Workspace) -> int:
    if args.candidates:
        print("\n".join(complete_values(ws, args.candidates, args.prefix)))
        return 0
    if args.shell is None:
        raise FtbenchError("`ftbench completion` needs a shell: bash, zsh or fish.", "Run `ftbench completion bash`.")
    sys.stdout.write(script(args.shell))
    return 0


def script(shell: str) -> str:
    """The completion script for `shell`, with COMPLETES attached to a fresh parser."""
    import shtab

    from ftbench.cli import build_parser

    parser = build_parser()
    for (command, dest), kind in COMPLETES.items():
        action = find_action(parser, command, dest)
        action.complete = _recipes() if kind == "recipe" else _dynamic(kind)  # type: ignore[attr-defined]
    return shtab.complete(parser, shell=shell)


def find_action(parser: argparse.ArgumentParser, command: str, dest: str) -> argparse.Action:
    for group in parser._subparsers._group_actions:  # type: ignore[union-attr]
        sub = group.choices.get(command) if group.choices else None
        if sub is not None:
            for action in sub._actions:
                if action.dest == dest:
                    return action
    raise KeyError(f"ftbench {command} has no argument {dest!r}")


def complete_values(ws: Workspace, kind: str, prefix: str) -> list[str]:
    """What `prefix` can become: job references, or (for models) names under the model folders too."""
    refs = candidates(ws, prefix)
    if kind == "model":
        refs = [name for name in model_names(ws) if name.startswith(prefix)] + refs
    return refs


def model_names(ws: Workspace) -> list[str]:
    """Model folders and .gguf files in the configured model folders, as the names resolvers accept (one or two
    levels deep, like `org/name`). Only cheap checks: this runs on every Tab."""
    names: set[str] = set()
    for root in ws.model_roots():
        for path in _children(root):
            if classify(path) in ("model", "gguf"):
                names.add(path.name)
            elif path.is_dir():
                names.update(f"{path.name}/{p.name}" for p in _children(path) if classify(p) in ("model", "gguf"))
    return sorted(names)


def _children(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if not p.name.startswith(".")]
    except OSError:
        return []
