"""One resolver for what users type: a model, an adapter, a run (or one of its checkpoints), an export, a GGUF
file or a dataset.

Every command, screen and recipe field resolves references through `resolve`, so a reference copied from one
place means the same thing in another, from any current folder.

Lookup order (all steps are tried; two *different* matches are an error that names both):

1. a job id: exact, or a unique prefix; `last` is the newest training run, `last~1` the one before;
2. an absolute path (`~` expanded);
3. a path relative to the current folder;
4. a path relative to the workspace, then to each configured model folder and dataset folder.

A run reference may end in a checkpoint selector: `RUN@checkpoint-12`, `RUN@last` (the final weights, else the
newest complete checkpoint), `RUN@best` (the lowest eval_loss among the checkpoints and the final weights). A
run asked for as weights without a selector gives its final weights, or, when training has not saved them, its
newest complete checkpoint with a one-line `note` saying which.

Kinds, decided only by `classify` (torch-free, a few stat calls): a folder with status.json is a job (`run` for
training, `export`, else `job`); a folder with adapter_config.json is an `adapter` even when it also holds
config.json (trainer checkpoints of PEFT models carry the base's config.json next to the adapter); a folder
with config.json is a `model`; a `.gguf` file is `gguf`; a data file (.jsonl, .json, .csv, .parquet, .txt,
.jsonl.gz, .arrow) or a `datasets`-style folder is a `dataset`.

Job handles (ids, prefixes, `last~N`, selectors) live in core/handles.py, the GGUF header peek in
catalog/gguf_header.py, and every file name inside a job folder in core/layout.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftbench.core.errors import FtbenchError
from ftbench.core.handles import job_kind, job_status, match_job_ids, split_selector
from ftbench.core.layout import Checkpoint, JobLayout
from ftbench.core.workspace import Workspace

KINDS = ("run", "export", "job", "adapter", "model", "gguf", "dataset")
WEIGHTS = ("adapter", "model")
DATA_SUFFIXES = (
    ".jsonl",
    ".ndjson",
    ".json",
    ".csv",
    ".tsv",
    ".parquet",
    ".arrow",
    ".txt",
    ".jsonl.gz",
    ".ndjson.gz",
    ".json.gz",
    ".csv.gz",
    ".tsv.gz",
)
DATASET_FOLDER_MARKERS = ("dataset_info.json", "dataset_dict.json", "state.json")
ADAPTER_CONFIG = "adapter_config.json"
MODEL_CONFIG = "config.json"


class AmbiguousReference(FtbenchError):
    """A reference that names two different things (or prefixes several ids): never guessed between."""


class NotFound(FtbenchError):
    """Nothing the reference could name exists (callers with a further fallback, such as catalog names, catch it)."""


# ---------------------------------------------------------------------------------------------- artifacts
@dataclass(frozen=True, kw_only=True)
class Artifact:
    """Something a reference named. `note` is a one-line remark to show the user (e.g. a checkpoint fallback)."""

    kind: str
    path: Path
    ref: str = ""
    note: str | None = None

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True, kw_only=True)
class Run(Artifact):
    """A job folder: a training run, an export or another job, with its layout and status."""

    id: str
    status: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def layout(self) -> JobLayout:
        return JobLayout(self.path)

    @property
    def name(self) -> str:
        return str(self.status.get("name") or self.id)

    @property
    def outputs(self) -> list[Path]:
        """The run's final weight folders (adapter/, model/) that exist."""
        return self.layout.weight_folders()

    @property
    def files(self) -> list[Path]:
        """GGUF files in the folder (an export's results), model files before LoRA adapters."""
        return sorted(self.path.glob("*.gguf"), key=lambda p: ("-lora-" in p.name.lower(), p.name))

    def checkpoints(self) -> list[Checkpoint]:
        return self.layout.checkpoints()

    def weights(self, selector: str | None = None) -> Weights:
        """The adapter or model folder a selector names (see the module docstring)."""
        return _run_weights(self, selector)


@dataclass(frozen=True, kw_only=True)
class Weights(Artifact):
    """An HF model folder (`kind="model"`) or a PEFT adapter (`kind="adapter"`, `base` from its config).

    `run` and `checkpoint` say where it came from when it lives in a run folder (for names and notes)."""

    base: str | None = None
    run: Run | None = None
    checkpoint: str | None = None

    @property
    def label(self) -> str:
        """A short column name: the run's short name (plus the checkpoint), else the folder name."""
        if self.run is None:
            return self.path.name
        short = short_run_name(self.run.id)
        return f"{short}@{self.checkpoint}" if self.checkpoint else short


@dataclass(frozen=True, kw_only=True)
class GGUFFile(Artifact):
    """A .gguf file with what its header says; `is_lora` for a LoRA adapter GGUF (its `base` when recorded)."""

    architecture: str | None = None
    quant_type: str | None = None
    is_lora: bool = False
    base: str | None = None


@dataclass(frozen=True, kw_only=True)
class Dataset(Artifact):
    """A data file or a saved `datasets` folder."""


def short_run_name(run_id: str) -> str:
    """20261122-141503-sft-sentiment-3f2a -> sft-sentiment-3f2a (columns are narrow)."""
    parts = run_id.split("-", 2)
    if len(parts) == 3 and parts[0].isdigit() and len(parts[0]) == 8 and parts[1].isdigit() and len(parts[1]) == 6:
        return parts[2]
    return run_id


# ---------------------------------------------------------------------------------------------- classify
def classify(path: Path) -> str | None:
    """The kind of the thing at `path` (see the module docstring), or None when it is none of them."""
    if path.is_file():
        lower = path.name.lower()
        if lower.endswith(".gguf"):
            return "gguf"
        if lower.endswith(DATA_SUFFIXES):
            return "dataset"
        return None
    if not path.is_dir():
        return None
    layout = JobLayout(path)
    if layout.is_job():
        return job_kind(job_status(path))
    if (path / ADAPTER_CONFIG).is_file():
        return "adapter"
    if (path / MODEL_CONFIG).is_file():
        return "model"
    if any((path / marker).is_file() for marker in DATASET_FOLDER_MARKERS):
        return "dataset"
    return None


def adapter_base(path: Path) -> str | None:
    """base_model_name_or_path from an adapter's adapter_config.json (None when unreadable)."""
    try:
        data = json.loads((path / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data.get("base_model_name_or_path") if isinstance(data, dict) else None


def gguf_file(path: Path, ref: str = "") -> GGUFFile:
    """A GGUFFile from the header alone (a LoRA adapter GGUF has general.type = adapter)."""
    from ftbench.catalog.gguf_header import file_type_name, read_gguf_header  # numpy: only when a GGUF is named

    header = read_gguf_header(path)
    is_lora = header.get("general.type") == "adapter"
    file_type = header.get("general.file_type")
    quant = file_type_name(int(file_type)) if isinstance(file_type, int) else None
    base = header.get("general.base_model.0.name") if is_lora else None
    return GGUFFile(
        kind="gguf", path=path, ref=ref, architecture=header.architecture, quant_type=quant, is_lora=is_lora, base=base
    )


# ---------------------------------------------------------------------------------------------- resolve
def resolve(
    ws: Workspace | None,
    ref: str,
    want: Iterable[str] = KINDS,
    cwd: Path | None = None,
    roots: Iterable[Path] | None = None,
) -> Artifact:
    """The artifact `ref` names, as one of the kinds in `want` (see the module docstring for the order).

    A run asked for as `adapter`/`model` gives its weights; an export asked for as `gguf` gives its model file.
    `roots` overrides the folders searched after the workspace (default: the model and dataset folders)."""
    want = tuple(want)
    text = ref.strip()
    if not text:
        raise FtbenchError("An empty reference names nothing.", "Give a run id, a path, or a name under the workspace.")
    base_ref, selector = split_selector(text)
    if selector is not None and Path(text).expanduser().exists():
        base_ref, selector = text, None  # a real path containing '@'
    tried: list[str] = []
    found: list[tuple[str, Path]] = []
    skipped: list[tuple[Path, str]] = []
    id_problem: FtbenchError | None = None

    if ws is not None:
        tried.append("a job id or unique prefix")
        try:
            ids = match_job_ids(ws, base_ref)
        except FtbenchError as exc:
            ids, id_problem = [], exc
        if len(ids) > 1:
            names = ", ".join(sorted(d.name for d in ids)[:5])
            id_problem = AmbiguousReference(
                f"'{base_ref}' is the start of {len(ids)} job ids: {names}.", "Give more of the id."
            )
        elif ids:
            found.append(("job id", ids[0].resolve()))

    for how, path in _path_candidates(ws, base_ref, cwd, roots, tried):
        kind = classify(path)
        if kind is None:
            skipped.append((path, _unknown_words(path)))
        elif _acceptable(kind, want, selector):
            found.append((how, path))
        else:
            skipped.append((path, f"a {_kind_words(kind)}"))

    distinct: dict[Path, str] = {}
    for how, path in found:
        distinct.setdefault(path, how)
    if len(distinct) > 1:
        (a, how_a), (b, how_b) = list(distinct.items())[:2]
        raise AmbiguousReference(
            f"'{ref}' matches two different things: {a} ({how_a}) and {b} ({how_b}).",
            "Give an absolute path, or a path that starts with ./ for the current folder.",
        )
    if not distinct:
        if id_problem is not None and not skipped:
            raise id_problem
        raise _not_found(ref, want, tried, skipped, id_problem)
    path = next(iter(distinct))
    return _as_wanted(path, text, want, selector)


def _path_candidates(
    ws: Workspace | None, ref: str, cwd: Path | None, roots: Iterable[Path] | None, tried: list[str]
) -> list[tuple[str, Path]]:
    path = Path(ref).expanduser()
    if path.is_absolute():
        tried.append("an absolute path")
        return [("absolute path", path.resolve())] if path.exists() else []
    out = []
    here = (cwd or Path.cwd()).resolve()
    bases = [("current folder", here)]
    tried.append(f"a path under the current folder {here}")
    if ws is not None:
        extra = list(roots) if roots is not None else [*ws.model_roots(), *ws.dataset_roots()]
        bases.append(("workspace", ws.root))
        bases.extend(("configured folder", root) for root in extra)
        tried.append(f"a path under the workspace {ws.root}" + (" or its model/dataset folders" if extra else ""))
    for how, base in bases:
        candidate = base / path
        if candidate.exists():
            out.append((f"{how} {base}", candidate.resolve()))
    return out


def _unknown_words(path: Path) -> str:
    if path.is_dir():
        return f"a folder without {ADAPTER_CONFIG}, {MODEL_CONFIG} or {JobLayout.STATUS}"
    return "a file that is neither a .gguf nor a data file"


def _acceptable(kind: str, want: tuple[str, ...], selector: str | None) -> bool:
    if selector is not None:
        return kind == "run" and any(w in want for w in WEIGHTS)
    if kind in want:
        return True
    if kind == "run":
        return any(w in want for w in (*WEIGHTS, "gguf"))
    if kind == "export":
        return "gguf" in want
    return False


KIND_NOUNS = {
    "run": "run",
    "export": "export",
    "job": "job",
    "adapter": "adapter",
    "model": "model",
    "gguf": "GGUF file",
    "dataset": "dataset",
}


def _kind_words(kind: str) -> str:
    return {
        "run": "training run",
        "export": "export job",
        "job": "job",
        "adapter": "PEFT adapter",
        "model": "model folder",
        "gguf": "GGUF file",
        "dataset": "dataset",
    }[kind]


def _not_found(
    ref: str, want: tuple[str, ...], tried: list[str], skipped: list[tuple[Path, str]], id_problem: FtbenchError | None
) -> FtbenchError:
    wanted = " or ".join(KIND_NOUNS[k] for k in want) if set(want) != set(KINDS) else "model, run or dataset"
    if skipped:
        path, what = skipped[0]
        hint = _wrong_kind_hint(path, what, want)
        return FtbenchError(f"'{ref}' is {path}, {what}, not a {wanted}.", hint)
    if id_problem is not None and isinstance(id_problem, AmbiguousReference):
        return id_problem
    message = f"No {wanted} '{ref}': tried {', '.join(tried)}."
    if id_problem is not None:
        message += f" {id_problem.message}"
    return NotFound(message, "List runs with `ftbench runs` and models with `ftbench models`.")


def _wrong_kind_hint(path: Path, what: str, want: tuple[str, ...]) -> str:
    if what == "a PEFT adapter" and "model" in want:
        base = adapter_base(path) or "see adapter_config.json"
        return f"Pass its base ({base}) as the model and this folder as the adapter."
    return "Check the path; `ftbench models`, `ftbench datasets` and `ftbench runs` list what the workspace has."


def _as_wanted(path: Path, ref: str, want: tuple[str, ...], selector: str | None) -> Artifact:
    kind = classify(path)
    if kind in ("run", "export", "job"):
        status = job_status(path)
        run = Run(kind=kind, path=path, ref=ref, id=str(status.get("id") or path.name), status=status)
        if selector is not None or (kind == "run" and kind not in want and any(w in want for w in WEIGHTS)):
            weights = run.weights(selector)
            if weights.kind not in want:
                raise FtbenchError(
                    f"Run {run.id} holds {_kind_words(weights.kind)} weights ({weights.path}), "
                    f"not a {' or '.join(want)}.",
                    "Pass it where that kind is taken (a full model as MODEL, an adapter with --adapter).",
                )
            return weights
        if kind in want:
            return run
        ggufs = [f for f in run.files if "gguf" in want]
        if ggufs:
            return gguf_file(ggufs[0], ref)
        raise FtbenchError(
            f"{_kind_words(kind).capitalize()} {run.id} has no GGUF file.",
            "Pick a finished export from `ftbench runs --all`.",
        )
    if kind == "gguf":
        return gguf_file(path, ref)
    if kind in WEIGHTS:
        return _weights_at(path, ref, kind)
    return Dataset(kind="dataset", path=path, ref=ref)


def _weights_at(path: Path, ref: str, kind: str) -> Weights:
    """Weights at `path`, knowing their run when they sit in one (RUN/adapter, RUN/checkpoints/checkpoint-N)."""
    run, checkpoint = None, None
    parent = path.parent
    if parent.name == JobLayout.CHECKPOINTS and JobLayout(parent.parent).is_job():
        parent, checkpoint = parent.parent, path.name
    if (checkpoint or path.name in (JobLayout.ADAPTER, JobLayout.MODEL)) and JobLayout(parent).is_job():
        status = job_status(parent)
        run = Run(kind=job_kind(status), path=parent, id=str(status.get("id") or parent.name), status=status)
    base = adapter_base(path) if kind == "adapter" else None
    return Weights(kind=kind, path=path, ref=ref, base=base, run=run, checkpoint=checkpoint)


def _run_weights(run: Run, selector: str | None) -> Weights:
    layout = run.layout
    final = layout.final_output()
    if selector is None or selector == "last":
        if final is not None:
            return _weights_from(run, final, None)
        newest = layout.last_checkpoint()
        if newest is None:
            raise FtbenchError(
                f"Run {run.id} has no weights yet: no adapter/ or model/ and no complete checkpoint.",
                "Wait for its first checkpoint (the monitor's `c` asks for one now), or pick another run.",
            )
        note = (
            None
            if selector == "last"
            else f"Run {run.id} has no final weights yet; using its newest checkpoint, {newest.name}."
        )
        return _weights_from(run, newest.path, newest.name, note)
    if selector == "best":
        return _best_weights(run, final)
    for cp in layout.checkpoints():
        if cp.name == selector:
            if not cp.complete:
                raise FtbenchError(
                    f"{cp.path} is incomplete (no whole {JobLayout.TRAINER_STATE}); the save was cut short.",
                    "Pick another checkpoint, or RUN@last.",
                )
            return _weights_from(run, cp.path, cp.name)
    have = ", ".join(c.name for c in layout.checkpoints() if c.complete) or "none"
    raise FtbenchError(
        f"Run {run.id} has no {selector} (complete checkpoints: {have}).", f"Use {run.id}@last or one of those."
    )


def _weights_from(run: Run, folder: Path, checkpoint: str | None, note: str | None = None) -> Weights:
    kind = classify(folder)
    if kind not in WEIGHTS:
        raise FtbenchError(
            f"{folder} holds neither adapter_config.json nor config.json.",
            "The folder was changed by hand; pick another.",
        )
    return Weights(
        kind=kind,
        path=folder,
        ref=run.ref,
        note=note,
        base=adapter_base(folder) if kind == "adapter" else None,
        run=run,
        checkpoint=checkpoint,
    )


def eval_losses(run: Run) -> dict[int, float]:
    """eval_loss by step, from the trainer_state.json of every complete checkpoint."""
    losses: dict[int, float] = {}
    for cp in run.checkpoints():
        if not cp.complete:
            continue
        try:
            state = json.loads((cp.path / JobLayout.TRAINER_STATE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for entry in state.get("log_history") or []:
            if isinstance(entry.get("eval_loss"), (int, float)) and isinstance(entry.get("step"), int):
                losses[entry["step"]] = float(entry["eval_loss"])
    return losses


def _best_weights(run: Run, final: Path | None) -> Weights:
    """The complete checkpoint (or the final weights) with the lowest eval_loss; the final weights win a tie."""
    losses = eval_losses(run)
    scored = [(losses[cp.step], cp.step, cp) for cp in run.checkpoints() if cp.complete and cp.step in losses]
    final_loss = _final_eval_loss(run)
    if not scored and final_loss is None:
        raise FtbenchError(
            f"Run {run.id} has no eval_loss to pick the best checkpoint by.",
            f"Evaluate during training (data.eval in the recipe), or use {run.id}@last.",
        )
    best = min(scored, key=lambda s: (s[0], -s[1])) if scored else None
    if best is None or (final is not None and final_loss is not None and final_loss <= best[0]):
        if final is None:
            raise FtbenchError(
                f"Run {run.id} evaluated only at the end and its final weights are missing.", f"Use {run.id}@last."
            )
        return _weights_from(run, final, None)
    return _weights_from(run, best[2].path, best[2].name)


def _final_eval_loss(run: Run) -> float | None:
    try:
        metrics = json.loads(run.layout.metrics.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = metrics.get("eval_loss") if isinstance(metrics, dict) else None
    return float(value) if isinstance(value, (int, float)) else None
