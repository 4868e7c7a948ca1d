"""The one table of what ftbench can train: tasks, methods and data formats, one spec entry each.

Everything that needs to know "which task x method x format combinations exist" reads this table: recipe
validation (core/recipe.py), the VRAM estimator (core/estimate.py), the New run screen, the Datasets record
view, format detection (catalog/formats.py), training data loading (train/data.py, train/encoders.py), the
job's preflight and `ftbench predict`. Torch-free, so the TUI and the CLI can read it freely; code that needs
torch is named by a "module:function" string and imported only inside the job (`load_target`).

Adding a training method is one `MethodSpec` here plus its apply function in train/methods.py; adding a data
format is one `FormatSpec` plus (when it has its own rules) a row check in catalog/formats.py and a renderer
in tui/widgets/record_view.py if none of the existing views fit. ARCHITECTURE.md walks through both.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from ftbench.core.errors import FtbenchError


@dataclass(frozen=True)
class MethodSpec:
    """How the weights change.

    `fields` are the `method.*` recipe keys this method reads (shown in the model card and the New run help);
    `estimate` names the VRAM estimator's rule (full, lora or qlora; None: no estimate is offered);
    `apply` is the "module:function" that wraps a loaded model for the method, called in the job process as
    `apply(model, recipe, plan)` (see train/methods.py).
    """

    name: str
    summary: str
    default_lr: float
    fields: tuple[str, ...]
    estimate: str | None
    apply: str
    needs: tuple[str, ...] = ()  # Python packages it imports (checked in preflight, before any model loads)
    adapter: bool = True  # saves a PEFT adapter (adapter/) rather than full weights (model/)


@dataclass(frozen=True)
class FormatSpec:
    """A data format: the fields a row needs after the `data.columns` mapping, and how a row is shown.

    Detection tries formats in table order and takes the first whose `fields` are all present, so a more
    specific format comes before a more general one. `view` picks the record view's layout (chat, tokens,
    squad, sections or fields); `view_keys` are that layout's keys (chat: list, role, text; sections: the
    keys in order).
    """

    name: str
    summary: str
    fields: tuple[str, ...]
    optional: tuple[str, ...] = ()
    view: str = "fields"
    view_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskSpec:
    """What a task trains on and produces.

    `trainer` is the module in train/tasks that trains it (the interface is in train/tasks/__init__.py);
    `heads` are the transformers Auto classes the model is loaded with; `peft_task_type` is PEFT's TaskType
    name for LoRA; `predicts` says what `ftbench predict` returns for such a run ("" : use `ftbench chat`).
    """

    name: str
    summary: str
    causal: bool
    methods: tuple[str, ...]
    formats: tuple[str, ...]
    metrics: tuple[str, ...]
    heads: tuple[str, ...]
    peft_task_type: str
    trainer: str
    predicts: str = ""


METHOD_SPECS: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        MethodSpec(
            "full",
            "every weight trains; saves a full model/",
            2e-5,
            (),
            "full",
            "ftbench.train.methods:apply_full",
            adapter=False,
        ),
        MethodSpec(
            "lora",
            "a low-rank adapter on the linear layers; the base stays frozen",
            2e-4,
            ("r", "alpha", "dropout", "rslora", "target_modules"),
            "lora",
            "ftbench.train.methods:apply_lora",
        ),
        MethodSpec(
            "qlora",
            "LoRA on a 4-bit (or method.bits: 8) quantised base, through bitsandbytes",
            2e-4,
            ("r", "alpha", "dropout", "rslora", "target_modules", "bits", "quant_type", "double_quant"),
            "qlora",
            "ftbench.train.methods:apply_lora",
            needs=("bitsandbytes",),
        ),
        MethodSpec(
            "prompt_tuning",
            "trainable soft-prompt tokens in front of every input; the model stays frozen",
            3e-2,
            ("num_virtual_tokens", "prompt_init", "prompt_init_text"),
            None,
            "ftbench.train.methods:apply_prompt_tuning",
        ),
    )
}

FORMAT_SPECS: dict[str, FormatSpec] = {
    spec.name: spec
    for spec in (
        FormatSpec(
            "preference",
            "prompt with a chosen and a rejected answer",
            ("prompt", "chosen", "rejected"),
            view="sections",
            view_keys=("prompt", "chosen", "rejected"),
        ),
        FormatSpec(
            "unpaired",
            "prompt with one completion labelled good (true) or bad (false), for KTO",
            ("prompt", "completion", "label"),
            view="sections",
            view_keys=("prompt", "completion", "label"),
        ),
        FormatSpec(
            "squad",
            "extractive QA: question, context, answers {text, answer_start}",
            ("question", "context", "answers"),
            ("id", "title"),
            view="squad",
        ),
        FormatSpec(
            "ner", "tokens with one tag each", ("tokens", "ner_tags"), view="tokens", view_keys=("tokens", "ner_tags")
        ),
        FormatSpec(
            "messages",
            "chat turns [{role, content}]",
            ("messages",),
            view="chat",
            view_keys=("messages", "role", "content"),
        ),
        FormatSpec(
            "sharegpt",
            "chat turns [{from, value}]",
            ("conversations",),
            view="chat",
            view_keys=("conversations", "from", "value"),
        ),
        FormatSpec(
            "alpaca",
            "instruction, optional input, output",
            ("instruction", "output"),
            ("input", "system"),
            view="sections",
            view_keys=("system", "instruction", "input", "output"),
        ),
        FormatSpec("classification", "text with a label (a list for multi-label)", ("text", "label"), ("text_pair",)),
        FormatSpec("text", "plain text for language modelling", ("text",)),
        FormatSpec(
            "prompts",
            "prompts (with an optional reference answer) for GRPO to answer and reward",
            ("prompt",),
            ("answer",),
            view="sections",
            view_keys=("prompt", "answer"),
        ),
    )
}

_LM_FORMATS = ("alpaca", "messages", "sharegpt", "text")
_ENCODER_METHODS = ("full", "lora")
_PREFERENCE_METRICS = ("train_loss", "eval_loss", "rewards/accuracies", "rewards/margins")

TASK_SPECS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            "sft",
            "supervised fine-tuning of a causal LM on prompts and answers",
            True,
            ("full", "lora", "qlora", "prompt_tuning"),
            _LM_FORMATS,
            ("train_loss", "eval_loss", "perplexity"),
            ("AutoModelForCausalLM",),
            "CAUSAL_LM",
            "ftbench.train.tasks.sft",
        ),
        TaskSpec(
            "dpo",
            "direct preference optimisation of a causal LM",
            True,
            ("full", "lora", "qlora"),
            ("preference",),
            ("train_loss", "eval_loss", "rewards/accuracies", "rewards/margins"),
            ("AutoModelForCausalLM",),
            "CAUSAL_LM",
            "ftbench.train.tasks.dpo",
        ),
        TaskSpec(
            "orpo",
            "odds-ratio preference optimisation (TRL): SFT and preference in one loss, no reference model",
            True,
            ("full", "lora", "qlora"),
            ("preference",),
            _PREFERENCE_METRICS,
            ("AutoModelForCausalLM",),
            "CAUSAL_LM",
            "ftbench.train.tasks.trl_preference",
        ),
        TaskSpec(
            "simpo",
            "SimPO (TRL's CPO with the SimPO loss): length-normalised reward margin, no reference model",
            True,
            ("full", "lora", "qlora"),
            ("preference",),
            _PREFERENCE_METRICS,
            ("AutoModelForCausalLM",),
            "CAUSAL_LM",
            "ftbench.train.tasks.trl_preference",
        ),
        TaskSpec(
            "kto",
            "Kahneman-Tversky optimisation (TRL) on unpaired good/bad completions",
            True,
            ("full", "lora", "qlora"),
            ("unpaired",),
            ("train_loss", "eval_loss", "rewards/chosen", "rewards/rejected", "kl"),
            ("AutoModelForCausalLM",),
            "CAUSAL_LM",
            "ftbench.train.tasks.trl_preference",
        ),
        TaskSpec(
            "grpo",
            "group relative policy optimisation (TRL): sampled answers scored by rule or Python rewards",
            True,
            ("full", "lora", "qlora"),
            ("prompts",),
            ("train_loss", "reward", "reward_std"),
            ("AutoModelForCausalLM",),
            "CAUSAL_LM",
            "ftbench.train.tasks.grpo",
        ),
        TaskSpec(
            "classification",
            "a label (or several) per text",
            False,
            (*_ENCODER_METHODS, "prompt_tuning"),
            ("classification",),
            ("accuracy", "f1_macro", "f1_micro"),
            ("AutoModelForSequenceClassification",),
            "SEQ_CLS",
            "ftbench.train.tasks.classification",
            "labels with probabilities",
        ),
        TaskSpec(
            "ner",
            "a tag per word (named entities)",
            False,
            _ENCODER_METHODS,
            ("ner",),
            ("precision", "recall", "f1", "accuracy"),
            ("AutoModelForTokenClassification",),
            "TOKEN_CLS",
            "ftbench.train.tasks.ner",
            "entity spans with types and scores",
        ),
        TaskSpec(
            "qa",
            "extractive question answering (an answer span in the context)",
            False,
            _ENCODER_METHODS,
            ("squad",),
            ("exact_match", "f1"),
            ("AutoModelForQuestionAnswering",),
            "QUESTION_ANS",
            "ftbench.train.tasks.qa",
            "answer spans with scores",
        ),
    )
}

TASKS: tuple[str, ...] = tuple(TASK_SPECS)
METHODS: tuple[str, ...] = tuple(METHOD_SPECS)
FORMATS: tuple[str, ...] = tuple(FORMAT_SPECS)
CAUSAL_TASKS: tuple[str, ...] = tuple(t.name for t in TASK_SPECS.values() if t.causal)
CAUSAL_FORMATS: tuple[str, ...] = _LM_FORMATS
ESTIMATED_METHODS: tuple[str, ...] = tuple(m.name for m in METHOD_SPECS.values() if m.estimate)


def task_spec(name: str) -> TaskSpec:
    spec = TASK_SPECS.get(name)
    if spec is None:
        raise FtbenchError(f"Unknown task '{name}'.", f"Use one of: {', '.join(TASKS)}.")
    return spec


def method_spec(name: str) -> MethodSpec:
    spec = METHOD_SPECS.get(name)
    if spec is None:
        raise FtbenchError(f"Unknown method '{name}'.", f"Use one of: {', '.join(METHODS)}.")
    return spec


def format_spec(name: str) -> FormatSpec:
    spec = FORMAT_SPECS.get(name)
    if spec is None:
        raise FtbenchError(f"Unknown data format '{name}'.", f"Use one of: {', '.join(FORMATS)}.")
    return spec


def combination_problem(task: str, method: str, fmt: str) -> str | None:
    """Why this task cannot train with this method on this format (one phrase naming the recipe key), or None."""
    spec = TASK_SPECS[task]
    if fmt != "auto" and fmt not in spec.formats:
        return f"data.format: {fmt} cannot train task {task}; use {' or '.join(spec.formats)} (or auto)"
    if method not in spec.methods:
        return f"method.name: {method} is not supported with task {task}; use {', '.join(spec.methods)}"
    return None


def load_target(target: str) -> Any:
    """The object a "module:function" spec string names; imports the module (call it in job processes only)."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)
