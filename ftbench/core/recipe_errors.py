"""Recipe validation errors in words: pydantic's first problem as one sentence naming the key path, the bad
value and what is allowed, with the nearest valid key for a typo (core/recipe.py holds the schema)."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError

from ftbench.core.errors import FtbenchError
from ftbench.core.specs import TASKS


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model class that owns the last key of `loc` (for "did you mean")."""
    model: type[BaseModel] = root
    for part in loc[:-1]:
        info = model.model_fields.get(str(part))
        if info is None:
            return None
        ann = info.annotation
        candidates = [ann, *getattr(ann, "__args__", ())]
        nxt = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if nxt is None:
            return None
        model = nxt
    return model


def explain(exc: ValidationError, source: str, root: type[BaseModel]) -> FtbenchError:
    """The first validation problem as one sentence naming the key path, the value and what is allowed."""
    err = exc.errors()[0]
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))
    path = ".".join(str(p) for p in loc)
    kind = err["type"]
    value = err.get("input")
    more = f" ({len(exc.errors()) - 1} more problem(s) after this one)" if len(exc.errors()) > 1 else ""
    if kind == "extra_forbidden":
        owner = _model_at(root, loc)
        allowed = sorted(owner.model_fields) if owner else []
        near = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.5)
        section = ".".join(str(p) for p in loc[:-1]) or "the top level"
        hint = (
            f"Did you mean '{'.'.join([*map(str, loc[:-1]), near[0]])}'?"
            if near
            else f"Allowed keys in {section}: {', '.join(allowed)}."
        )
        return FtbenchError(f"{source}: unknown key '{path}'{more}.", hint)
    if kind == "missing":
        return FtbenchError(f"{source}: required key '{path}' is missing{more}.", _missing_hint(path))
    if kind in ("literal_error", "enum"):
        expected = err.get("ctx", {}).get("expected", "")
        return FtbenchError(
            f"{source}: {path} = {value!r} is not allowed; expected {expected}{more}.",
            "Pick one of the allowed values.",
        )
    if kind == "value_error":
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        return FtbenchError(f"{source}: {msg}{more}.", "Change the recipe so these settings fit together.")
    msg = err.get("msg", "invalid value")
    shown = repr(value) if not isinstance(value, dict) else "a mapping"
    return FtbenchError(
        f"{source}: {path} = {shown} is invalid: {msg}{more}.",
        f"Fix {path}; `ftbench validate RECIPE` shows every key with its default.",
    )


def _missing_hint(path: str) -> str:
    return {
        "task": f"Add `task: sft` (or {', '.join(TASKS[1:])}).",
        "model": "Add `model: models/<folder>` (a Hugging Face model folder).",
        "model.path": "Add `model: models/<folder>` (a Hugging Face model folder).",
        "data": "Add `data: datasets/<file>.jsonl`.",
        "data.train": "Add `data: datasets/<file>.jsonl`.",
    }.get(path, f"Add {path} to the recipe.")
