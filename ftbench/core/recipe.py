"""Recipes: the YAML that says what to train, validated by pydantic v2 models with `extra="forbid"`.

Why strict: a misspelt key that is silently ignored costs a user a whole training run, so every unknown key,
wrong type or impossible combination is a `FtbenchError` naming the key path, the bad value and what is
allowed (with the nearest valid key for a typo). Every field has a default, so a three-line recipe runs:

    task: sft
    model: models/smollm2-135m-instruct
    data: datasets/demo/sentiment-alpaca.jsonl

Shorthands: `model: PATH`, `data: PATH` and `method: lora` stand for `{path: PATH}`, `{train: PATH}` and
`{name: lora}`. `--set key.path=value` overrides any key; the value is parsed as YAML, then typed by the
schema. This module is torch-free: the TUI and the CLI validate recipes without loading a model.
"""

from __future__ import annotations

import copy
import difflib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ftbench.core.errors import FtbenchError
from ftbench.core.objectives import GrpoSection, KtoSection, OrpoSection, SimpoSection
from ftbench.core.recipe_errors import explain
from ftbench.core.specs import FORMAT_SPECS, METHOD_SPECS, METHODS, TASKS, combination_problem
from ftbench.core.specs import FORMATS as DATA_FORMATS
from ftbench.core.text_files import read_text

if TYPE_CHECKING:
    from ftbench.core.gpu import GpuReport
    from ftbench.core.workspace import Workspace

FORMATS = ("auto", *DATA_FORMATS)  # the table of tasks, methods and formats is core/specs.py
FORMAT_FIELDS = tuple(dict.fromkeys(f for spec in FORMAT_SPECS.values() for f in (*spec.fields, *spec.optional)))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSection(_Section):
    """The base model: a folder (relative to the workspace, or absolute) or a Hugging Face cache id."""

    path: str
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    trust_remote_code: bool = False
    attn_implementation: Literal["auto", "eager", "sdpa", "flash_attention_2"] = "auto"


class DataSection(_Section):
    """Training data, its format and how it becomes token sequences."""

    train: str
    eval: str | None = None
    eval_split: float = Field(0.0, ge=0.0, lt=1.0, description="fraction of train held out for eval (fixed seed)")
    format: Literal[FORMATS] = "auto"  # type: ignore[valid-type]
    columns: dict[str, str] = Field(default_factory=dict, description="format field -> column in the file")
    max_length: int = Field(1024, ge=8)
    packing: bool = Field(
        False, description="pack the whole set into max_length rows before batching (batch_size then counts rows)"
    )
    padding_free: bool = Field(
        True, description="lay each batch's examples end to end in rows of at most max_length tokens (no padding)"
    )
    train_on_prompt: bool = False
    chat_template: str | None = None
    skip_bad_rows: bool = False
    max_rows: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _known_fields(self) -> DataSection:
        """Every data.columns key is a field of data.format (of any format while it is auto); a typo would
        otherwise be ignored and the row check would blame the file."""
        spec = FORMAT_SPECS.get(self.format)
        known = (*spec.fields, *spec.optional) if spec else FORMAT_FIELDS
        whose = f"the {self.format} format's" if spec else "any format's"
        for field_name in self.columns:
            if field_name not in known:
                near = difflib.get_close_matches(field_name, known, n=1, cutoff=0.6)
                raise ValueError(
                    f"data.columns maps {field_name!r}, which is not {whose} field"
                    + (f" (did you mean {near[0]!r}?)" if near else f" (fields: {', '.join(known)})")
                )
        return self


class MethodSection(_Section):
    """How the weights change: all of them, a LoRA adapter (optionally on a 4/8-bit base), or soft prompts."""

    name: Literal[METHODS] = "lora"  # type: ignore[valid-type]
    r: int = Field(16, ge=1)
    alpha: float = Field(32.0, gt=0, description="LoRA scaling numerator (scale = alpha / r)")
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    rslora: bool = False
    target_modules: Literal["auto"] | list[str] = "auto"
    bits: Literal[4, 8] = 4
    quant_type: Literal["nf4", "fp4"] = "nf4"
    double_quant: bool = True
    num_virtual_tokens: int = Field(20, ge=1)
    prompt_init: Literal["random", "text"] = "random"
    prompt_init_text: str | None = None

    @model_validator(mode="after")
    def _prompt_text(self) -> MethodSection:
        if self.name == "prompt_tuning" and self.prompt_init == "text" and not self.prompt_init_text:
            raise ValueError(
                "method.prompt_init: text needs method.prompt_init_text (the words the soft prompt starts from)"
            )
        return self


class TrainingSection(_Section):
    """The optimisation loop; names follow transformers' TrainingArguments where one exists."""

    epochs: float = Field(1.0, gt=0)
    max_steps: int = Field(-1, description="-1: train for `epochs`; otherwise this many optimizer steps")
    batch_size: int = Field(4, ge=1)
    gradient_accumulation: int = Field(1, ge=1)
    lr: float | None = Field(
        None,
        gt=0,
        description="None: the method's default (core/specs.py: 2e-4 lora/qlora, 2e-5 full, 3e-2 prompt tuning)",
    )
    scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup", "cosine_with_restarts", "polynomial"] = (
        "cosine"
    )
    warmup_ratio: float = Field(0.0, ge=0.0, lt=1.0)
    warmup_steps: int = Field(0, ge=0)
    weight_decay: float = Field(0.0, ge=0.0)
    max_grad_norm: float = 1.0
    optimizer: Literal[
        "adamw_torch",
        "adamw_torch_fused",
        "adafactor",
        "sgd",
        "paged_adamw_8bit",
        "paged_adamw_32bit",
        "adamw_bnb_8bit",
    ] = "adamw_torch"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    gradient_checkpointing: bool = False
    sparse_logits: bool = Field(
        True, description="causal LMs: compute logits and loss only at trained positions (same loss, less work)"
    )
    fast_dropout: bool = Field(
        True,
        description="LoRA dropout masks from 16-bit uniforms on the CPU (same distribution, a fraction of the cost)",
    )
    liger: bool = Field(False, description="Liger kernels (the `liger` extra; GPU): fused RMSNorm, RoPE, SwiGLU, loss")
    torch_compile: bool = Field(False, description="torch.compile the model (pays a compile at start)")
    logging_steps: int = Field(10, ge=1)
    eval_steps: int | None = Field(None, ge=1, description="None: evaluate once per epoch when there is eval data")
    save_steps: int | None = Field(None, ge=1, description="None: save a checkpoint once per epoch")
    save_total_limit: int = Field(2, ge=1)
    early_stopping_patience: int | None = Field(None, ge=1)
    seed: int = 42
    devices: Literal["auto"] | int = "auto"
    gpus: Literal["auto"] | int | list[int] = Field(
        "auto", description="auto: every free GPU (none: CPU); N: wait for N free GPUs; [0, 3]: wait for exactly these"
    )
    distributed: Literal["ddp", "fsdp", "deepspeed"] = "ddp"
    deepspeed_stage: Literal[1, 2, 3] = 2
    report_to: list[Literal["tensorboard", "mlflow", "wandb", "trackio"]] = Field(
        default_factory=list,
        description="experiment trackers besides events.jsonl, writing into the run folder: tensorboard "
        "(RUN/tensorboard), mlflow (a file store in RUN/mlflow), wandb (offline, RUN/wandb), trackio (a local "
        "store in RUN/trackio)",
    )

    @field_validator("max_steps")
    @classmethod
    def _max_steps(cls, value: int) -> int:
        if value == 0 or value < -1:
            raise ValueError(f"training.max_steps is {value}; it must be -1 (train for `epochs`) or a step count >= 1")
        return value

    @field_validator("devices")
    @classmethod
    def _devices(cls, value: Any) -> Any:
        if isinstance(value, int) and value < 1:
            raise ValueError("training.devices must be 'auto' or a number of processes >= 1")
        return value

    @field_validator("gpus")
    @classmethod
    def _gpus(cls, value: Any) -> Any:
        if isinstance(value, int) and value < 1:
            raise ValueError("training.gpus must be 'auto', a GPU count >= 1 or a list of GPU indices such as [0, 3]")
        if isinstance(value, list) and (not value or min(value) < 0 or len(set(value)) != len(value)):
            raise ValueError("training.gpus must list distinct GPU indices >= 0, such as [0, 3]")
        return value


class DpoSection(_Section):
    """Direct preference optimisation settings (task: dpo)."""

    beta: float = Field(0.1, gt=0)
    loss_type: Literal["sigmoid", "ipo", "hinge"] = "sigmoid"
    max_prompt_length: int = Field(512, ge=1)


class ExportSection(_Section):
    """Export defaults a run carries into `ftbench export` (the flags win)."""

    pre_tokenizer: str | None = Field(None, description="llama.cpp pre-tokenizer name, as `ftbench export --pre`")


class EvalSection(_Section):
    """Generation eval while training (task sft): answers to held-out prompts scored like `ftbench eval`, as events."""

    generate: bool = False
    prompts: str | None = Field(None, description="JSONL of prompts with references; None: the run's eval rows")
    metrics: list[str] | None = Field(
        None, description="None: all of exact_match, token_f1, rouge*, bleu, chrf (+ labels)"
    )
    label_pattern: str | None = Field(None, description=r"score label accuracy, e.g. 'Sentiment: (\w+)'")
    every_steps: int | None = Field(None, ge=1)
    at_end: bool = True
    max_prompts: int = Field(32, ge=1)
    max_new_tokens: int = Field(32, ge=1)
    batch_size: int = Field(8, ge=1)


class Recipe(_Section):
    """A whole recipe. `name` defaults to the recipe file's stem."""

    task: Literal[TASKS]  # type: ignore[valid-type]
    name: str | None = None
    model: ModelSection
    data: DataSection
    method: MethodSection = Field(default_factory=MethodSection)
    training: TrainingSection = Field(default_factory=TrainingSection)
    dpo: DpoSection = Field(default_factory=DpoSection)
    orpo: OrpoSection = Field(default_factory=OrpoSection)
    simpo: SimpoSection = Field(default_factory=SimpoSection)
    kto: KtoSection = Field(default_factory=KtoSection)
    grpo: GrpoSection = Field(default_factory=GrpoSection)
    export: ExportSection | None = None
    eval: EvalSection = Field(default_factory=EvalSection)

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        raw = dict(raw)
        for key, field_name in (("model", "path"), ("data", "train"), ("method", "name")):
            if isinstance(raw.get(key), str):
                raw[key] = {field_name: raw[key]}
        return raw

    @model_validator(mode="after")
    def _combinations(self) -> Recipe:
        problem = combination_problem(self.task, self.method.name, self.data.format)
        if problem:
            raise ValueError(problem)
        per_step = self.training.batch_size * self.training.gradient_accumulation
        if self.task == "grpo" and (problem := self.grpo.problem(per_step)):
            raise ValueError(problem)
        return self

    # --- helpers -------------------------------------------------------------------------------------------

    def learning_rate(self) -> float:
        """The explicit lr, else the usual default for the method."""
        if self.training.lr is not None:
            return self.training.lr
        return METHOD_SPECS[self.method.name].default_lr

    def sparse_logits_planned(self) -> bool:
        """Whether the run computes logits only at trained positions (train/levers.py adds the model's check):
        SFT with training.sparse_logits on, not replaced by Liger's fused loss, not prompt tuning (its virtual
        tokens lengthen the sequence the mask was built for). The VRAM estimate reads it too."""
        t = self.training
        return self.task == "sft" and t.sparse_logits and not t.liger and self.method.name != "prompt_tuning"

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    # --- encoder-task fields (classification, ner, qa) -----------------------------------------------------
    # Owned by the encoder-task engineer: add task-specific sections/fields below this line.
    classification: ClassificationSection = Field(default_factory=lambda: ClassificationSection())
    ner: NerSection = Field(default_factory=lambda: NerSection())
    qa: QaSection = Field(default_factory=lambda: QaSection())


# --- encoder-task sections (classification, ner, qa); owned by the encoder-task engineer -------------------


class ClassificationSection(_Section):
    """Sequence classification (task: classification). Columns come from data.columns (text, text_pair, label)."""

    labels: list[str] | None = Field(
        None, description="label names in id order; None: discovered from the data, sorted"
    )
    multi_label: bool | None = Field(None, description="None: multi-label when the label column holds lists")
    threshold: float = Field(
        0.5, gt=0.0, lt=1.0, description="multi-label: a label is predicted when its probability >= this"
    )


class NerSection(_Section):
    """Token classification (task: ner). Columns from data.columns (tokens, ner_tags)."""

    labels: list[str] | None = Field(
        None, description="tag names in id order (needed when tags are ints); None: from the data"
    )
    label_all_tokens: bool = Field(False, description="label every sub-token of a word, not only the first")


class QaSection(_Section):
    """Extractive question answering (task: qa), SQuAD format (id, question, context, answers)."""

    doc_stride: int = Field(128, ge=0, description="tokens shared by consecutive windows of a long context")
    max_answer_length: int = Field(30, ge=1, description="longest answer span in tokens")
    n_best: int = Field(20, ge=1, description="start/end candidates considered per window")
    null_score_diff_threshold: float = Field(0.0, description="answer '' when null score - best span score > this")


Recipe.model_rebuild()

# ---------------------------------------------------------------------------------------------------------
# loading, overrides and errors


def load_recipe_dict(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw mapping in a recipe file (yaml.safe_load), with a clear error for a missing or broken file."""
    p = Path(path)
    if not p.exists():
        raise FtbenchError(f"Recipe file {p} does not exist.", "Check the path; example recipes are in recipes/.")
    text = read_text(p, "recipes")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FtbenchError(
            f"Recipe {p} is not valid YAML at{where}: {problem}.", "Fix the YAML syntax (indentation, colons, quotes)."
        ) from exc
    if raw is None:
        raise FtbenchError(f"Recipe {p} is empty.", "A recipe needs at least task, model and data.")
    if not isinstance(raw, dict):
        raise FtbenchError(
            f"Recipe {p} must be a mapping of keys, not a {type(raw).__name__}.", "Start with `task: sft`."
        )
    raw.setdefault("name", p.stem)
    return raw


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """`key.path=value` strings applied to a copy of `raw`; values are YAML (so `5`, `true`, `[a, b]` work)."""
    out = copy.deepcopy(raw)
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise FtbenchError(f"--set {item!r} is not of the form key.path=value.", "Example: --set training.lr=1e-4")
        try:
            parsed = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            parsed = value
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if isinstance(child, str) and part in ("model", "data", "method"):
                child = {{"model": "path", "data": "train", "method": "name"}[part]: child}
            if child is None:
                child = {}
            if not isinstance(child, dict):
                raise FtbenchError(
                    f"--set {key}: {part} is a value ({child!r}), not a section.",
                    "Set the value itself, e.g. --set " + ".".join(parts[: parts.index(part) + 1]) + "=...",
                )
            node[part] = child
            node = child
        node[parts[-1]] = parsed
    return out


def validate_recipe(raw: dict[str, Any], source: str = "recipe") -> Recipe:
    """A `Recipe`, or a FtbenchError for the first problem, naming the key path, value and what is allowed."""
    try:
        return Recipe.model_validate(raw)
    except ValidationError as exc:
        raise explain(exc, source, Recipe) from None


CUDA_OPTIMIZERS = ("paged_adamw_8bit", "paged_adamw_32bit", "adamw_bnb_8bit")  # bitsandbytes' CUDA kernels
DDP_CPU_ENV = "FTBENCH_DDP_CPU"  # "1": training.devices > 1 runs that many CPU processes (tests, no GPU)


def check_machine(recipe: Recipe, report: GpuReport, source: str) -> None:
    """What this machine cannot do, refused before a job folder exists (the schema cannot know the machine):
    more devices than GPUs, fp16 without a GPU, bf16 on a GPU older than Ampere, bitsandbytes optimizers
    without CUDA."""
    from ftbench.core.gpu import compute_capability

    t = recipe.training
    gpus = len(report.gpus) if report.available else 0
    here = f"this machine has {report.summary}"
    if isinstance(t.devices, int) and t.devices > max(gpus, 1) and os.environ.get(DDP_CPU_ENV) != "1":
        raise FtbenchError(
            f"{source}: training.devices is {t.devices}, but {here}.",
            "Set training.devices: auto (or a number up to the GPU count).",
        )
    if t.precision == "fp16" and not gpus:
        raise FtbenchError(
            f"{source}: training.precision fp16 needs a GPU, but {here}.", "Use precision: auto (fp32 here) or bf16."
        )
    if t.optimizer in CUDA_OPTIMIZERS and not gpus:
        raise FtbenchError(
            f"{source}: training.optimizer {t.optimizer} runs on CUDA only, but {here}.",
            "Use optimizer: adamw_torch here, or train on a machine with an NVIDIA GPU.",
        )
    old = [g.index for g in report.gpus if (compute_capability(g.index) or (8, 0)) < (8, 0)] if gpus else []
    if t.precision == "bf16" and old:
        raise FtbenchError(
            f"{source}: training.precision bf16 needs an Ampere or newer GPU; GPU {old[0]} here is older.",
            "Use precision: auto (it picks fp16 there) or fp16.",
        )


def load_recipe(path: str | os.PathLike[str], overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    raw = apply_overrides(load_recipe_dict(path), overrides)
    return validate_recipe(raw, str(path))


def resolve_path(
    value: str, workspace: Workspace | Path | None, recipe_dir: Path | None = None, want: tuple[str, ...] = ("model",)
) -> str:
    """An absolute path for a recipe path, in the artifacts lookup order with the recipe's folder as the
    "current folder" (a run id, absolute, recipe-relative, workspace-relative, the model/dataset folders).

    When the resolver finds nothing of the wanted kind, the first existing of workspace-, recipe- and
    cwd-relative, else the workspace-relative path: the reader that opens it then says what is wrong with it."""
    from ftbench.core.artifacts import AmbiguousReference, resolve

    p = Path(value).expanduser()
    if p.is_absolute():
        return str(p)
    ws = _as_workspace(workspace)
    try:
        return str(resolve(ws, value, want=want, cwd=recipe_dir).path)
    except AmbiguousReference:
        raise
    except FtbenchError:
        bases = [b for b in (ws.root if ws else None, recipe_dir, Path.cwd()) if b is not None]
        existing = next((base / p for base in bases if (base / p).exists()), (bases[0] / p))
        return str(existing.resolve())


def _as_workspace(workspace: Workspace | Path | None) -> Workspace | None:
    """Callers pass the Workspace; a bare folder (older callers, tests) is read with its ftbench.toml if any."""
    from ftbench.core.workspace import CONFIG_NAME
    from ftbench.core.workspace import Workspace as _Workspace

    if workspace is None or isinstance(workspace, _Workspace):
        return workspace
    root = Path(workspace)
    return _Workspace.open(root, create=False) if (root / CONFIG_NAME).is_file() else _Workspace(root=root.resolve())


def resolve_recipe_paths(recipe: Recipe, workspace: Workspace | Path | None, recipe_dir: Path | None = None) -> Recipe:
    """A copy with model and data paths made absolute. A model value that is not an existing path and looks
    like a hub id (`org/name`) is kept as is, for the Hugging Face cache."""
    out = recipe.model_copy(deep=True)
    model_path = resolve_path(recipe.model.path, workspace, recipe_dir, want=("model",))
    if not Path(model_path).exists() and _looks_like_hub_id(recipe.model.path):
        model_path = recipe.model.path
    out.model.path = model_path
    out.data.train = resolve_path(recipe.data.train, workspace, recipe_dir, want=("dataset",))
    if recipe.data.eval:
        out.data.eval = resolve_path(recipe.data.eval, workspace, recipe_dir, want=("dataset",))
    if recipe.grpo.reward_file:  # user code: relative to the recipe that names it, never searched for elsewhere
        out.grpo.reward_file = str(((recipe_dir or Path.cwd()) / Path(recipe.grpo.reward_file).expanduser()).resolve())
    return out


def _looks_like_hub_id(value: str) -> bool:
    parts = value.split("/")
    return len(parts) == 2 and all(parts) and not value.startswith((".", "~")) and not Path(parts[0]).exists()
