"""The same SFT recipe trains to the same losses: whatever the random state of the process before the run
(the LoRA weights drawn at load follow `training.seed`), and with `training.torch_compile` on or off. The
real job target runs in-process on the tiny llama for a few steps. On the CPU torch.compile (Inductor) writes
and builds C++ kernels, so it needs a C++ compiler; without one that test says so and skips. Compiling the
forward and backward takes well over 30 s on 2 cores (on a cold Inductor cache), hence slow."""

from __future__ import annotations

import shutil

import pytest
from test_train_tasks import base_recipe, losses, run_inline, tiny_lm, toy_data  # noqa: F401 (fixtures)


def compile_unavailable() -> str | None:
    """Why torch.compile cannot run on this machine's CPU, or None when it can."""
    import torch

    if not hasattr(torch, "compile"):
        return f"torch {torch.__version__} has no torch.compile"
    if not any(shutil.which(cxx) for cxx in ("g++", "c++", "clang++")):
        return "torch.compile on the CPU builds C++ kernels and this machine has no C++ compiler (apt-get install g++)"
    return None


def test_new_weights_follow_the_recipe_seed_not_the_process_state(workspace, tiny_lm, toy_data):  # noqa: F811
    import torch

    from ftbench.core.events import read_events

    first_steps = []
    for state in (1, 2):
        torch.manual_seed(state)  # what an earlier run or import left behind
        recipe = base_recipe(tiny_lm, toy_data["alpaca"], data={"eval_split": 0.0}, training={"max_steps": 1})
        job_dir, _ = run_inline(workspace, recipe | {"training": recipe["training"] | {"logging_steps": 1}})
        [step] = read_events(job_dir / "events.jsonl", ["train"])
        first_steps.append((step["loss"], step["grad_norm"]))
    # LoRA's B starts at zero, so the loss is the base model's either way; the gradient shows LoRA's A
    assert first_steps[0] == first_steps[1]


@pytest.mark.slow
def test_torch_compile_gives_the_eager_losses(workspace, tiny_lm, toy_data):  # noqa: F811
    reason = compile_unavailable()
    if reason:
        pytest.skip(reason)
    from torch._dynamo.utils import counters

    curves = {}
    for compiled in (False, True):
        counters.clear()
        recipe = base_recipe(
            tiny_lm,
            toy_data["alpaca"],
            data={"eval_split": 0.0},
            method={"name": "lora", "r": 8, "dropout": 0.0},  # no dropout: compiled RNG streams differ from eager
            training={"max_steps": 4, "logging_steps": 1, "save_steps": 4, "torch_compile": compiled},
        )
        job_dir, result = run_inline(workspace, recipe)
        assert result["steps"] == 4
        curves[compiled] = losses(job_dir)
        frames = counters["stats"]["unique_graphs"]
        assert (frames > 0) == compiled, f"torch_compile={compiled} but dynamo compiled {frames} graphs"
    eager = curves[False]
    assert len(eager) == 4 and eager[-1] < eager[0] - 0.05  # the steps train, so the backward is compared too
    assert curves[True] == pytest.approx(eager, rel=1e-4, abs=1e-5)
