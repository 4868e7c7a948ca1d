"""The task/method/format table (core/specs.py) is the one source: everything that lists them agrees with it."""

from __future__ import annotations

import importlib.util
import itertools

import pytest

from ftbench.core.errors import FtbenchError
from ftbench.core.specs import (
    CAUSAL_FORMATS,
    ESTIMATED_METHODS,
    FORMAT_SPECS,
    METHOD_SPECS,
    TASK_SPECS,
    combination_problem,
    load_target,
    task_spec,
)


def test_every_task_names_known_methods_formats_and_an_existing_trainer():
    for spec in TASK_SPECS.values():
        assert set(spec.methods) <= set(METHOD_SPECS), spec.name
        assert set(spec.formats) <= set(FORMAT_SPECS), spec.name
        assert importlib.util.find_spec(spec.trainer) is not None, spec.trainer
        assert spec.heads and spec.heads[0].startswith("AutoModelFor")
    assert CAUSAL_FORMATS == TASK_SPECS["sft"].formats


def test_every_method_apply_target_resolves():
    for spec in METHOD_SPECS.values():
        assert callable(load_target(spec.apply)), spec.apply
    # train/methods.py is the one home of apply_method: the old per-family copies are gone
    import ftbench.train.encoders as encoders
    import ftbench.train.model as model

    assert not hasattr(encoders, "apply_method") and model.apply_method is load_target(
        "ftbench.train.methods:apply_method"
    )


@pytest.mark.parametrize(
    ("task", "method", "fmt"), list(itertools.product(TASK_SPECS, METHOD_SPECS, ("auto", *FORMAT_SPECS)))
)
def test_recipe_validation_allows_exactly_the_table(task, method, fmt):
    from ftbench.core.recipe import validate_recipe

    raw = {"task": task, "model": "m", "data": {"train": "d.jsonl", "format": fmt}, "method": method}
    if task == "grpo":  # grpo needs a reward to be a valid recipe at all (tests/unit/test_objectives.py)
        raw["grpo"] = {"rewards": [{"kind": "length", "target": 10}]}
    allowed = method in TASK_SPECS[task].methods and (fmt == "auto" or fmt in TASK_SPECS[task].formats)
    if allowed:
        assert validate_recipe(raw).method.name == method
    else:
        with pytest.raises(FtbenchError) as info:
            validate_recipe(raw)
        assert info.value.message == f"recipe: {combination_problem(task, method, fmt)}."


def test_combination_messages_name_the_key_and_what_is_allowed():
    assert (
        combination_problem("ner", "lora", "alpaca") == "data.format: alpaca cannot train task ner; use ner (or auto)"
    )
    assert combination_problem("dpo", "prompt_tuning", "auto") == (
        "method.name: prompt_tuning is not supported with task dpo; use full, lora, qlora"
    )
    assert combination_problem("qa", "qlora", "squad").startswith("method.name: qlora is not supported with task qa")
    assert combination_problem("sft", "qlora", "messages") is None


def test_default_learning_rate_comes_from_the_method_spec():
    from ftbench.core.recipe import validate_recipe

    for name, spec in METHOD_SPECS.items():
        task = next(t for t in TASK_SPECS.values() if name in t.methods).name
        assert (
            validate_recipe({"task": task, "model": "m", "data": "d", "method": name}).learning_rate()
            == spec.default_lr
        )


def test_estimator_offers_the_methods_with_an_estimate_rule():
    from ftbench.core.estimate import METHODS, estimate_vram

    assert METHODS == ESTIMATED_METHODS == ("full", "lora", "qlora")
    shape = {"hidden_size": 64, "num_layers": 2, "vocab_size": 100, "intermediate_size": 128, "num_heads": 4}
    full, lora, qlora = (estimate_vram(shape, 200_000, m, seq_len=16, batch=1) for m in METHODS)
    assert full.trainable_params == 200_000 and lora.trainable_params == qlora.trainable_params < 200_000
    assert qlora.weights < lora.weights < full.weights + full.gradients
    with pytest.raises(FtbenchError, match="Unknown method 'prompt_tuning' for the estimate"):
        estimate_vram(shape, 200_000, "prompt_tuning")


def test_detection_order_and_fields_are_the_table():
    from ftbench.catalog.formats import DETECTION_ORDER, FORMAT_FIELDS, detect_format

    assert DETECTION_ORDER == tuple(FORMAT_SPECS)
    assert FORMAT_FIELDS == {name: spec.fields for name, spec in FORMAT_SPECS.items()}
    # the more specific format wins: preference rows also have a text-like prompt
    assert detect_format([{"prompt": "p", "chosen": "a", "rejected": "b", "text": "t"}]) == "preference"


def test_task_dispatch_and_predict_read_the_table():
    from ftbench.train.predict import PREDICT_TASKS
    from ftbench.train.tasks import task_module

    assert PREDICT_TASKS == ("classification", "ner", "qa")
    assert task_module("sft").__name__ == TASK_SPECS["sft"].trainer
    with pytest.raises(FtbenchError, match="Unknown task 'translate'"):
        task_spec("translate")
