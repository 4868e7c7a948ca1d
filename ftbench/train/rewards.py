"""GRPO's reward functions: the built-in rules of a recipe's `grpo.rewards`, and the user's own from
`grpo.reward_file`.

Every function has TRL's reward signature, `f(prompts, completions, **columns) -> list[float | None]`, where
`columns` holds the dataset's other fields per completion (here `answer`, the reference). A rule scores in
[0, 1]; its `weight` goes to TRL's `reward_weights`, so the events show each rule's own mean
(`rewards/<name>/mean`) and the weighted total (`reward`).

The reward file is user code. It is imported only here, in the training job's process, and only when the
recipe names it and the run was started with the live `--allow-reward-code` flag (`REWARD_CODE_ENV` set for
that attempt by `ftbench train` / `ftbench resume`), never because a stored recipe says so.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ftbench.core.errors import FtbenchError
from ftbench.core.objectives import REWARD_CODE_ENV, GrpoSection, RewardRule

RewardFunction = Callable[..., list[Any]]


def completion_text(completion: Any) -> str:
    """A completion's text: TRL passes strings for string prompts, message lists for conversational ones."""
    if isinstance(completion, str):
        return completion
    return "".join(str(m.get("content", "")) for m in completion if isinstance(m, dict))


def rule_score(rule: RewardRule, completion: str, answer: str | None) -> float | None:
    """One completion's score under one rule, in [0, 1]; None (no opinion) for `answer` when a row has none."""
    if rule.kind == "format":
        return 1.0 if re.search(str(rule.pattern), completion) else 0.0
    if rule.kind == "length":
        target = int(rule.target or 1)
        return max(0.0, 1.0 - abs(len(completion) - target) / target)
    if answer is None:
        return None
    if rule.pattern:
        match = re.search(rule.pattern, completion)
        if match is None:
            return 0.0
        found = match.group(1) if match.re.groups else match.group(0)
        return 1.0 if found.strip().casefold() == answer.strip().casefold() else 0.0
    return 1.0 if re.search(rf"(?<!\w){re.escape(answer.strip())}(?!\w)", completion, re.IGNORECASE) else 0.0


def rule_function(rule: RewardRule, name: str) -> RewardFunction:
    def score(prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[float | None]:
        answers = columns.get("answer") or [None] * len(completions)
        return [rule_score(rule, completion_text(c), a) for c, a in zip(completions, answers, strict=True)]

    score.__name__ = name  # TRL names the per-reward metrics after it: rewards/<name>/mean
    return score


def reward_functions(cfg: GrpoSection) -> tuple[list[RewardFunction], list[float]]:
    """The recipe's reward functions and their weights: the rules first, then the reward file's functions."""
    funcs: list[RewardFunction] = []
    weights: list[float] = []
    for i, rule in enumerate(cfg.rewards):
        same_kind = sum(r.kind == rule.kind for r in cfg.rewards) > 1
        funcs.append(rule_function(rule, f"{rule.kind}_{i}" if same_kind else rule.kind))
        weights.append(rule.weight)
    if cfg.reward_file:
        user = load_user_rewards(Path(cfg.reward_file), cfg.reward_functions, os.environ.get(REWARD_CODE_ENV) == "1")
        funcs += user
        weights += [1.0] * len(user)
    return funcs, weights


def load_user_rewards(path: Path, names: Sequence[str], allowed: bool) -> list[RewardFunction]:
    """The named functions of a user's reward file, imported only with the live permission."""
    if not allowed:
        raise FtbenchError(
            f"grpo.reward_file {path} is Python code this run would execute, and the run was not started with "
            "--allow-reward-code.",
            "Read the file; if you trust it, start the run with `ftbench train RECIPE --allow-reward-code` "
            "(or `ftbench resume RUN --allow-reward-code`).",
        )
    if path.suffix != ".py" or not path.is_file():
        raise FtbenchError(
            f"grpo.reward_file {path} is not a Python file.",
            "Point grpo.reward_file at a .py file (relative to the recipe's folder).",
        )
    spec = importlib.util.spec_from_file_location(f"ftbench_rewards_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    except Exception as exc:  # noqa: BLE001 - the user's code may fail in any way; say where
        raise FtbenchError(
            f"grpo.reward_file {path} failed to import: {type(exc).__name__}: {exc}",
            "Fix the file; it must import with only the packages of this environment.",
        ) from exc
    found = {n: v for n, v in vars(module).items() if callable(v) and not n.startswith("_")}
    out = []
    for name in names:
        if name not in found:
            raise FtbenchError(
                f"grpo.reward_functions names {name!r}, which {path.name} does not define.",
                f"Functions in {path.name}: {', '.join(sorted(found)) or 'none'}.",
            )
        out.append(found[name])
    return out
