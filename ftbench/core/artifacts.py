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
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftbench.core.errors import FtbenchError
from ftbench.core.layout import CHECKPOINT_RE, Checkpoint, JobLayout
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
SELECTORS = ("last", "best")
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
        return _job_kind(_read_status(path))
    if (path / ADAPTER_CONFIG).is_file():
        return "adapter"
    if (path / MODEL_CONFIG).is_file():
        return "model"
    if any((path / marker).is_file() for marker in DATASET_FOLDER_MARKERS):
        return "dataset"
    return None


def _job_kind(status: dict[str, Any]) -> str:
    kind = status.get("kind", "train")
    return "run" if kind == "train" else "export" if kind == "export" else "job"


def _read_status(job_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads(JobLayout(job_dir).status.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def adapter_base(path: Path) -> str | None:
    """base_model_name_or_path from an adapter's adapter_config.json (None when unreadable)."""
    try:
        data = json.loads((path / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data.get("base_model_name_or_path") if isinstance(data, dict) else None


# ---------------------------------------------------------------------------------------------- GGUF peek
_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_GGUF_STRING, _GGUF_ARRAY = 8, 9
_FILE_TYPES = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    32: "BF16",
}


def peek_gguf(path: Path) -> dict[str, Any]:
    """The general.* and adapter.* keys of a GGUF header, read up to the first tokenizer key (never the tensors).

    Kept to one function so a faster shared header reader can replace it."""
    wanted: dict[str, Any] = {}
    try:
        with open(path, "rb") as fh:
            if fh.read(4) != b"GGUF":
                raise ValueError("bad magic")
            version, _n_tensors, n_kv = struct.unpack("<IQQ", fh.read(20))
            if version < 2:
                raise ValueError(f"GGUF version {version}")
            for _ in range(n_kv):
                key = _read_gguf_string(fh)
                if key.startswith("tokenizer."):
                    break
                value = _read_gguf_value(fh, struct.unpack("<I", fh.read(4))[0])
                if key.startswith(("general.", "adapter.")):
                    wanted[key] = value
    except (OSError, ValueError, struct.error, UnicodeDecodeError) as exc:
        raise FtbenchError(
            f"{path} is not a readable GGUF file ({exc}).", "Check the path; the file may be truncated."
        ) from exc
    return wanted


def _read_gguf_string(fh: Any) -> str:
    (length,) = struct.unpack("<Q", fh.read(8))
    return fh.read(length).decode("utf-8")


def _read_gguf_value(fh: Any, vtype: int) -> Any:
    if vtype == _GGUF_STRING:
        return _read_gguf_string(fh)
    if vtype == _GGUF_ARRAY:
        item_type, count = struct.unpack("<IQ", fh.read(12))
        return [_read_gguf_value(fh, item_type) for _ in range(count)]
    fmt = _GGUF_SCALARS.get(vtype)
    if fmt is None:
        raise ValueError(f"unknown value type {vtype}")
    return struct.unpack(fmt, fh.read(struct.calcsize(fmt)))[0]


def gguf_file(path: Path, ref: str = "") -> GGUFFile:
    keys = peek_gguf(path)
    file_type = keys.get("general.file_type")
    is_lora = keys.get("general.type") == "adapter"
    return GGUFFile(
        kind="gguf",
        path=path,
        ref=ref,
        architecture=keys.get("general.architecture"),
        quant_type=_FILE_TYPES.get(file_type, str(file_type)) if file_type is not None else None,
        is_lora=is_lora,
        base=keys.get("general.base_model.0.name") if is_lora else None,
    )


# ---------------------------------------------------------------------------------------------- job ids
def job_dirs(ws: Workspace) -> list[Path]:
    """Every job folder in the workspace (runs/, exports/, jobs/)."""
    out = []
    for parent in ws.job_parents():
        if parent.is_dir():
            out.extend(child for child in parent.iterdir() if JobLayout(child).is_job())
    return out


def runs_newest_first(ws: Workspace) -> list[Path]:
    """Training runs by creation time, newest first (the folder name breaks ties: ids start with a time stamp)."""
    runs = [d for d in job_dirs(ws) if _job_kind(_read_status(d)) == "run"]
    return sorted(runs, key=lambda d: (_read_status(d).get("created_at") or 0, d.name), reverse=True)


def match_job_ids(ws: Workspace, ref: str) -> list[Path]:
    """Job folders `ref` names as an id: `last`/`last~N`, the exact id, else every id it prefixes."""
    if ref == "last" or ref.startswith("last~"):
        back = ref.removeprefix("last~") if ref != "last" else "0"
        if not back.isdigit():
            raise FtbenchError(
                f"'{ref}' is not a run handle.", "Write `last` for the newest run, `last~1` for the one before."
            )
        runs = runs_newest_first(ws)
        if int(back) >= len(runs):
            have = f"only {len(runs)} run{'s' if len(runs) != 1 else ''}" if runs else "no runs"
            raise FtbenchError(
                f"'{ref}' needs {int(back) + 1} runs, but {ws.root} has {have}.", "List runs with `ftbench runs`."
            )
        return [runs[int(back)]]
    if not ref or "/" in ref or ref.startswith("."):
        return []
    dirs = job_dirs(ws)
    exact = [d for d in dirs if d.name == ref]
    return exact or [d for d in dirs if d.name.startswith(ref)]


def unique_prefixes(ids: Iterable[str], minimum: int = 8) -> dict[str, str]:
    """The shortest prefix of each id that no other id starts with (at least `minimum` characters)."""
    ids = sorted(set(ids))
    out = {}
    for i, job_id in enumerate(ids):
        neighbours = [ids[j] for j in (i - 1, i + 1) if 0 <= j < len(ids)]
        common = max((_common_prefix(job_id, other) for other in neighbours), default=0)
        out[job_id] = job_id[: min(len(job_id), max(minimum, common + 1))]
    return out


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def candidates(ws: Workspace, prefix: str) -> list[str]:
    """References that complete `prefix` (for tab completion): handles, job ids, RUN@selectors, checkpoint names."""
    if "@" in prefix:
        base, _, sel = prefix.rpartition("@")
        try:
            dirs = match_job_ids(ws, base)
        except FtbenchError:
            return []
        if len(dirs) != 1:
            return []
        names = [*SELECTORS, *(c.name for c in JobLayout(dirs[0]).checkpoints() if c.complete)]
        return [f"{base}@{n}" for n in names if n.startswith(sel)]
    handles = ["last", "last~1"] if runs_newest_first(ws) else []
    ids = sorted(d.name for d in job_dirs(ws))
    return [h for h in handles if h.startswith(prefix) and h != prefix] + [i for i in ids if i.startswith(prefix)]


# ---------------------------------------------------------------------------------------------- resolve
def split_selector(ref: str) -> tuple[str, str | None]:
    """`RUN@checkpoint-12` -> (`RUN`, `checkpoint-12`); a reference without a known selector is kept whole."""
    base, at, sel = ref.rpartition("@")
    if at and base and (sel in SELECTORS or CHECKPOINT_RE.fullmatch(sel)):
        return base, sel
    return ref, None


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
        status = _read_status(path)
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
        status = _read_status(parent)
        run = Run(kind=_job_kind(status), path=parent, id=str(status.get("id") or parent.name), status=status)
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
                    f"{cp.path} is incomplete (no {JobLayout.TRAINER_STATE}); the save was cut short.",
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
