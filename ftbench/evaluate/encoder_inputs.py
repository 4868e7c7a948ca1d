"""Encoder runs (classification, NER, QA) in `ftbench eval`: which references are such runs, their eval rows,
and every check that must refuse bad input before a job exists.

An encoder run is scored by its own task head, not by generated text, so an eval takes either encoder runs
of one task and one label set, or generative models, never both. Its eval rows are read and checked by the
same code as training (train/encoders.read_task_file and each task's row checks), so a row training would
refuse is refused here with the same sentence; without --data they are the run's held-out rows, drawn
exactly as training drew them. No model is loaded here: only task files, recipes and data are read.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftbench.chat.variants import unique_name
from ftbench.core.artifacts import Weights, resolve
from ftbench.core.errors import FtbenchError
from ftbench.core.specs import TASK_SPECS
from ftbench.core.workspace import Workspace
from ftbench.train.encoders import Numbered
from ftbench.train.predict import PREDICT_TASKS, TASK_FILE, recipe_task, weights_folder

TARGET = "ftbench.evaluate.encoder_job:run"
# Options of a generative eval that change what is scored; they mean nothing for a task head.
GENERATIVE_ONLY = (("label_pattern", "--label-pattern"), ("metrics", "--metrics"), ("no_reference", "--no-reference"))


@dataclass(frozen=True)
class EncoderVariant:
    """One encoder run to score: its weights folder (with ftbench_task.json), its run folder and task facts."""

    name: str
    path: str
    run: str | None
    info: dict[str, Any]

    @property
    def task(self) -> str:
        return str(self.info["task"])

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "run": self.run, "info": self.info}


def encoder_weights(ws: Workspace, ref: str) -> Weights | None:
    """The weights `ref` names when they are a classification/NER/QA run's, else None (a generative model, a
    GGUF, or something the generative path reports on). A run of such a task without final weights is refused."""
    try:
        found = resolve(ws, ref, want=("model", "adapter", "gguf"))
    except FtbenchError:
        return None
    if not isinstance(found, Weights):
        return None
    if (found.path / TASK_FILE).is_file():
        return found
    if found.run is not None and recipe_task(found.run.path) in PREDICT_TASKS:
        weights_folder(found.path)  # raises the sentence `ftbench predict` gives (a checkpoint: not finished)
    return None


def encoder_variants(
    ws: Workspace, model: str, adapters: Sequence[str], also: Sequence[str], include_model: bool = True
) -> list[EncoderVariant]:
    """The encoder runs among MODEL, --adapter and --also, or [] when none is one (a generative eval).

    MODEL may be the plain base model the --adapter runs were trained on (as in `ftbench eval BASE --adapter
    RUN`): it is not scored, since it has no trained task head. Anything else that is not an encoder run is
    refused. `include_model=False` (--no-base) leaves MODEL out, as in a generative eval.
    """
    refs = [model, *adapters, *also]
    found = {ref: encoder_weights(ws, ref) for ref in refs}
    encoders = [ref for ref in refs if found[ref] is not None]
    if not encoders:
        return []
    infos = {ref: json.loads((found[ref].path / TASK_FILE).read_text(encoding="utf-8")) for ref in encoders}
    if found[model] is None and adapters and _is_base_of(ws, model, [infos[r] for r in encoders]):
        refs = refs[1:]
    elif not include_model:
        refs = refs[1:]
        if not refs:
            raise FtbenchError("--no-base with no --adapter or --also leaves no run to score.", "Drop --no-base.")
    other = next((ref for ref in refs if found[ref] is None), None)
    if other is not None:
        first = encoders[0]
        raise FtbenchError(
            f"'{first}' is a {infos[first]['task']} run but '{other}' is not a classification, NER or QA run; "
            "an eval scores encoder runs or generative models, not both.",
            f"Evaluate them separately: `ftbench eval {first} --data FILE` and `ftbench eval {other} --data FILE`.",
        )
    out: list[EncoderVariant] = []
    taken: set[str] = set()
    for ref in refs:
        weights = found[ref]
        assert weights is not None
        name = unique_name(weights.label, taken)
        taken.add(name)
        run = str(weights.run.path) if weights.run is not None else None
        out.append(EncoderVariant(name, str(weights.path), run, infos[ref]))
    check_same_task(out)
    return out


def _is_base_of(ws: Workspace, model: str, infos: Sequence[dict[str, Any]]) -> bool:
    try:
        path = resolve(ws, model, want=("model",)).path.resolve()
    except FtbenchError:
        return False
    return all(info.get("base_model") and Path(info["base_model"]).resolve() == path for info in infos)


def check_same_task(variants: Sequence[EncoderVariant]) -> None:
    """One task and one label set: otherwise the same rows cannot score every variant."""
    first = variants[0]
    for v in variants[1:]:
        if v.task != first.task:
            raise FtbenchError(
                f"Variant '{first.name}' is a {first.task} run but '{v.name}' is a {v.task} run; one eval scores one task.",
                "Evaluate runs of each task in an eval of its own.",
            )
        labels_a, labels_b = first.info.get("labels"), v.info.get("labels")
        if labels_a is not None and sorted(labels_a) != sorted(labels_b or []):
            raise FtbenchError(
                f"Variants '{first.name}' and '{v.name}' have different labels ({', '.join(labels_a)} vs "
                f"{', '.join(labels_b or [])}), so their scores do not compare.",
                "Evaluate runs trained on the same label set together.",
            )
        if bool(first.info.get("multi_label")) != bool(v.info.get("multi_label")):
            raise FtbenchError(
                f"Variant '{first.name}' is {_label_kind(first)} but '{v.name}' is {_label_kind(v)}.",
                "Evaluate single-label and multi-label runs separately.",
            )


def _label_kind(v: EncoderVariant) -> str:
    return "multi-label" if v.info.get("multi_label") else "single-label"


# ---------------------------------------------------------------------------------------------------------
# eval rows


def _row_format(task: str) -> tuple[str, dict[str, tuple[str, ...]] | None]:
    """The data format and column aliases the task's training reads its rows with."""
    fmt = TASK_SPECS[task].formats[0]
    if task == "classification":
        from ftbench.train.tasks.classification import LABEL_ALIASES, TEXT_ALIASES

        return fmt, {"label": LABEL_ALIASES, "text": TEXT_ALIASES}
    return fmt, None


def _recipe_of(run_dir: str | None) -> Any:
    """The run's validated recipe (for its data.columns and held-out split), or None for a bare weights folder."""
    if run_dir is None:
        return None
    from ftbench.core.recipe import validate_recipe

    raw = json.loads((Path(run_dir) / "job.json").read_text(encoding="utf-8")).get("params", {}).get("recipe")
    return validate_recipe(raw, source=f"{run_dir}/recipe.yaml") if raw else None


def eval_rows(variants: Sequence[EncoderVariant], data: str | None, limit: int | None = None) -> list[Numbered]:
    """The rows every variant is scored on: `data`, else the first run's held-out rows; checked as training
    checks them, against the first variant's labels."""
    from ftbench.train.encoders import load_task_rows, read_task_file

    first = variants[0]
    fmt, aliases = _row_format(first.task)
    run = next((v.run for v in variants if v.run), None)
    recipe = _recipe_of(run)
    if data:
        if not Path(data).exists():
            raise FtbenchError(f"Eval set {data} does not exist.", f"Pass a {fmt} JSONL file, or a run id.")
        columns = dict(recipe.data.columns) if recipe is not None else {}
        hint = f"Fix the row or remove it; a {first.task} eval file has the fields its training data has."
        rows = read_task_file(data, fmt, columns, aliases, max_rows=limit, hint=hint)
    else:
        if recipe is None:
            raise FtbenchError(
                f"Variant '{first.name}' is not in a run folder, so it has no held-out rows.", "Pass --data FILE."
            )
        rows = load_task_rows(recipe, fmt, aliases)[1]
        if not rows:
            raise FtbenchError(
                f"Run {Path(run or '').name} held out no eval rows (no data.eval, eval_split 0).", "Pass --data FILE."
            )
        rows = rows[:limit] if limit else rows
    check_rows(first, rows)
    return rows


def check_rows(variant: EncoderVariant, rows: list[Numbered]) -> None:
    """Each task's own row checks (training's): labels known to the run, tags known, answers in their context."""
    info = variant.info
    if variant.task == "classification":
        from ftbench.train.tasks.classification import check_labels, encode_labels

        _, multi = check_labels(rows)
        if multi != bool(info.get("multi_label")):
            row = rows[0]
            raise FtbenchError(
                f"{row.source}: row {row.number} has label {row.row['label']!r}, but run '{variant.name}' is "
                f"{_label_kind(variant)}.",
                "Give single-label runs one label per row and multi-label runs a list of labels.",
            )
        encode_labels(rows, info["labels"], multi)
    elif variant.task == "ner":
        from ftbench.train.tasks.ner import discover_tags

        discover_tags(rows, info["labels"])
    else:
        from ftbench.train.tasks.qa import check_rows as check_answers

        check_answers(rows)


def encoder_params(args: Any, ws: Workspace, data: str | None) -> tuple[dict[str, Any], str] | None:
    """The eval job's params and name when the variants are encoder runs; None for a generative eval.
    `data` is --data as a full path (None: the first run's held-out rows)."""
    variants = encoder_variants(ws, args.model, args.adapter, args.also, include_model=not args.no_base)
    if not variants:
        return None
    for key, flag in GENERATIVE_ONLY:
        if getattr(args, key, None):
            raise FtbenchError(
                f"{flag} scores generated text; encoder runs are scored with their task's own metrics.",
                f"Drop {flag}; the {variants[0].task} metrics are {', '.join(TASK_SPECS[variants[0].task].metrics)}.",
            )
    if args.batch_size < 1:
        raise FtbenchError("--batch-size must be at least 1.", "e.g. --batch-size 16")
    eval_rows(variants, data, args.limit)
    run = next((v.run for v in variants if v.run), None)
    label = data or f"{Path(run or '').name} eval rows"
    params = {
        "task": variants[0].task,
        "data": data,
        "limit": args.limit,
        "data_label": label,
        "variants": [v.to_dict() for v in variants],
        "batch_size": args.batch_size,
        "device": args.device,
    }
    return params, f"{Path(label).stem}-{len(variants)}-variants"
