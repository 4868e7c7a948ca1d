"""Hints must name flags that exist: every `--flag` a hint or error text in ftbench suggests is one of the CLI's."""

from __future__ import annotations

import re
from pathlib import Path

from ftbench.cli import build_parser

PACKAGE = Path(__file__).resolve().parents[2] / "ftbench"
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]+")


def cli_flags() -> set[str]:
    flags: set[str] = set()
    stack = [build_parser()]
    while stack:
        parser = stack.pop()
        for action in parser._actions:  # argparse has no public walk over subcommands
            flags.update(s for s in action.option_strings if s.startswith("--"))
            if hasattr(action, "choices") and isinstance(action.choices, dict):
                stack.extend(action.choices.values())
    return flags


ARGV_BUILDERS = (
    "chat/server.py",
    "chat/client.py",
    "train/distributed.py",
    "train/loopback_launch.py",
    "export/quantize.py",
    "core/logind.py",
    "core/slurm.py",
)  # they build other programs' command lines, not hints
SUGGESTION = re.compile(r"ftbench |[Pp]ass --|[Aa]dd --|[Ww]ith --|[Dd]rop --|[Uu]se --|[Rr]un .*--")


def test_every_flag_named_in_a_message_exists() -> None:
    known = cli_flags()
    unknown: dict[str, list[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        rel = str(path.relative_to(PACKAGE))
        if rel in ARGV_BUILDERS:
            continue
        for string in re.findall(r'"([^"\n]*--[a-z][^"\n]*)"', path.read_text(encoding="utf-8")):
            if not SUGGESTION.search(string):
                continue
            for flag in FLAG.findall(string):
                if flag not in known:
                    unknown.setdefault(flag, []).append(f"{rel}: {string[:90]}")
    assert not unknown, unknown
