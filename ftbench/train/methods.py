"""Wrapping a loaded model for the recipe's method, for every task: the one `apply_method`.

Which function applies a method is the `apply` field of its MethodSpec (core/specs.py); each takes
`(model, recipe, info)`, returns the model to train and records what it chose in `info` (the run's model
card and metrics.json). Causal LMs and encoders differ only where the task's spec says so: the PEFT task
type, where `target_modules: auto` puts LoRA (every linear layer in the blocks of a causal LM; the attention
query/value projections of an encoder) and the encoder's untrained head, which LoRA trains in full.
Runs only inside a job process: torch and peft are imported lazily.
"""

from __future__ import annotations

from typing import Any

from ftbench.core.errors import FtbenchError
from ftbench.core.recipe import Recipe
from ftbench.core.specs import load_target, method_spec, task_spec

# LoRA target modules per encoder architecture (the attention query/value projections, as in the LoRA
# paper). ModernBERT fuses q/k/v into one `Wqkv` linear; DeBERTa(v1) fuses them into `in_proj`.
LORA_TARGETS: dict[str, list[str]] = {
    "bert": ["query", "value"],
    "roberta": ["query", "value"],
    "xlm-roberta": ["query", "value"],
    "camembert": ["query", "value"],
    "electra": ["query", "value"],
    "albert": ["query", "value"],
    "distilbert": ["q_lin", "v_lin"],
    "deberta-v2": ["query_proj", "value_proj"],
    "deberta": ["in_proj"],
    "modernbert": ["Wqkv"],
    "mpnet": ["q", "v"],
}


def apply_method(model: Any, recipe: Recipe, info: dict[str, Any]) -> Any:
    """`model` wrapped for `recipe.method` (the recipe was validated, so the task allows the method)."""
    return load_target(method_spec(recipe.method.name).apply)(model, recipe, info)


def apply_full(model: Any, recipe: Recipe, info: dict[str, Any]) -> Any:
    """Full fine-tuning trains the model as loaded."""
    return model


def apply_lora(model: Any, recipe: Recipe, info: dict[str, Any]) -> Any:
    """LoRA, and QLoRA (LoRA on the 4/8-bit base that train/model.py loaded)."""
    from peft import LoraConfig, TaskType, get_peft_model

    method, task = recipe.method, task_spec(recipe.task)
    if method.name == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=recipe.training.gradient_checkpointing
        )
    if method.target_modules != "auto":
        targets = list(method.target_modules)
    elif task.causal:
        targets = linear_module_names(model)
    else:
        targets = lora_target_modules(getattr(model.config, "model_type", ""), model)
    if not targets:
        raise FtbenchError(
            f"No linear layers found to put LoRA on in {recipe.model.path}.",
            "Name them with method.target_modules: [q_proj, v_proj, ...].",
        )
    info["target_modules"] = targets
    heads = None if task.causal else head_modules(model)
    config = LoraConfig(
        task_type=getattr(TaskType, task.peft_task_type),
        r=method.r,
        lora_alpha=method.alpha,
        lora_dropout=method.dropout,
        use_rslora=method.rslora,
        target_modules=targets,
        modules_to_save=heads,
    )
    try:
        model = get_peft_model(model, config)
    except ValueError as exc:
        raise FtbenchError(
            f"method.target_modules {targets} do not fit {recipe.model.path}: {exc}.",
            "Use target_modules: auto or names from the model.",
        ) from exc
    if recipe.training.fast_dropout:
        from ftbench.train.lora_dropout import use_fast_dropout

        use_fast_dropout(model)
    return model


def apply_prompt_tuning(model: Any, recipe: Recipe, info: dict[str, Any]) -> Any:
    """Soft prompt tokens in front of every input; only they train."""
    from peft import PromptTuningConfig, PromptTuningInit, TaskType, get_peft_model

    method, task = recipe.method, task_spec(recipe.task)
    from_text = method.prompt_init == "text"
    config = PromptTuningConfig(
        task_type=getattr(TaskType, task.peft_task_type),
        num_virtual_tokens=method.num_virtual_tokens,
        prompt_tuning_init=PromptTuningInit.TEXT if from_text else PromptTuningInit.RANDOM,
        prompt_tuning_init_text=method.prompt_init_text if from_text else None,
        tokenizer_name_or_path=recipe.model.path if from_text else None,
    )
    info["num_virtual_tokens"] = method.num_virtual_tokens
    return get_peft_model(model, config)


def linear_module_names(model: Any) -> list[str]:
    """Leaf names of the linear layers inside the transformer blocks (q_proj, up_proj, c_attn, ...)."""
    import torch

    kinds: tuple[type, ...] = (torch.nn.Linear,)
    try:
        from transformers.pytorch_utils import Conv1D

        kinds += (Conv1D,)
    except ImportError:
        pass
    try:
        import bitsandbytes as bnb

        kinds += (bnb.nn.Linear4bit, bnb.nn.Linear8bitLt)
    except Exception:  # noqa: BLE001
        pass
    names: set[str] = set()
    output = model.get_output_embeddings()
    for full_name, module in model.named_modules():
        if not isinstance(module, kinds) or module is output:
            continue
        parts = full_name.split(".")
        if any(p.isdigit() for p in parts):  # inside a numbered block: layers.3.self_attn.q_proj
            names.add(parts[-1])
    return sorted(names)


def lora_target_modules(model_type: str, model: Any = None) -> list[str]:
    """The LoRA targets for `model_type`; for an unknown encoder, the linear layers named like q/v projections."""
    if model_type in LORA_TARGETS:
        return list(LORA_TARGETS[model_type])
    if model is not None:
        import torch

        found: set[str] = set()
        for name, module in model.named_modules():
            leaf = name.rsplit(".", 1)[-1]
            if isinstance(module, torch.nn.Linear) and leaf in {
                "query",
                "value",
                "q_proj",
                "v_proj",
                "q_lin",
                "v_lin",
                "query_proj",
                "value_proj",
                "Wqkv",
            }:
                found.add(leaf)
        if found:
            return sorted(found)
    raise FtbenchError(
        f"No LoRA target modules are known for model type {model_type}.",
        "Set method.target_modules to the names of the attention linear layers (e.g. [query, value]).",
    )


def head_modules(model: Any) -> list[str]:
    """The task head: every top-level child with weights except the encoder itself (BERT: classifier;
    DistilBERT: pre_classifier + classifier; DeBERTa-v2: pooler + classifier; ModernBERT: head + classifier;
    QA: qa_outputs). These start untrained, so LoRA trains them in full and saves them with the adapter."""
    prefix = getattr(model, "base_model_prefix", "")
    return sorted(
        name for name, child in model.named_children() if name != prefix and any(True for _ in child.parameters())
    )
