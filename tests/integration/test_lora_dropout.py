"""`training.fast_dropout`: LoRA dropout masks from 16-bit uniforms are Bernoulli(p) masks with the inverted
scale, fixed by the seed, replayed by checkpointing's recompute, and swapped into peft's LoRA layers."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from ftbench.train.lora_dropout import FastDropout, use_fast_dropout  # noqa: E402


@pytest.mark.parametrize("p", [0.05, 0.1, 0.5])
def test_masks_drop_p_of_the_elements_and_keep_the_expectation(p):
    n = 2_000_000
    torch.manual_seed(0)
    out = FastDropout(p).train()(torch.ones(n))
    dropped = float((out == 0).float().mean())
    assert abs(dropped - p) < 5 * math.sqrt(p * (1 - p) / n)  # within 5 standard errors of Bernoulli(p)
    assert float(out.mean()) == pytest.approx(1.0, abs=5 * math.sqrt(p / (1 - p) / n))
    kept = out[out != 0]
    assert torch.all(kept == kept[0]) and float(kept[0]) == pytest.approx(1 / (1 - p), rel=1e-4)


def test_setting_p_to_zero_switches_it_off_as_trl_does():
    """TRL's disable_dropout finds nn.Dropout modules and sets p = 0 (DPO, KTO, ORPO)."""
    dropout = FastDropout(0.1).train()
    assert isinstance(dropout, torch.nn.Dropout)
    dropout.p = 0.0
    x = torch.randn(64)
    assert dropout(x) is x


def test_neighbouring_elements_are_independent():
    """Four uniforms come from each 64-bit word: their drops must not be correlated."""
    torch.manual_seed(1)
    drops = (FastDropout(0.3).train()(torch.ones(4_000_000)) == 0).float()
    for lag in (1, 2, 3, 4):
        corr = torch.corrcoef(torch.stack([drops[:-lag], drops[lag:]]))[0, 1]
        assert abs(float(corr)) < 0.005


def test_identity_in_eval_and_at_zero_and_the_gradient_is_the_mask():
    x = torch.randn(16, 32)
    assert FastDropout(0.2).eval()(x) is x
    assert FastDropout(0.0).train()(x) is x
    leaf = x.clone().requires_grad_()
    dropout = FastDropout(0.2).train()
    out = dropout(leaf)
    out.sum().backward()
    torch.testing.assert_close(leaf.grad, (out != 0).float() / 0.8, rtol=1e-4, atol=0)


def test_the_seed_fixes_the_masks():
    dropout = FastDropout(0.1).train()
    x = torch.ones(1000)
    torch.manual_seed(7)
    first = dropout(x)
    torch.manual_seed(7)
    assert torch.equal(dropout(x), first)
    assert not torch.equal(dropout(x), first)  # the next call draws new masks


def lora_model(tiny_llama, checkpointing: bool):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    config = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.2, target_modules="all-linear", task_type="CAUSAL_LM")
    model = get_peft_model(model, config)
    torch.nn.init.normal_(next(p for n, p in model.named_parameters() if "lora_B" in n))  # B != 0: dropout matters
    return model


def step(model, ids):
    torch.manual_seed(3)
    model.train()
    model.zero_grad()
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_swapped_into_peft_and_replayed_by_checkpointing(tiny_llama):
    """A training step with checkpointing recomputes each layer: its masks must be the ones the forward drew,
    or the gradients would not be the gradients of the loss."""
    ids = torch.randint(0, 100, (2, 12))
    plain = lora_model(tiny_llama, checkpointing=False)
    n_lora = sum(1 for n, _ in plain.named_modules() if n.endswith("lora_dropout"))
    assert use_fast_dropout(plain) == n_lora > 0
    assert not any(type(m) is torch.nn.Dropout for m in plain.modules() if m.training and getattr(m, "p", 0) > 0)
    checkpointed = lora_model(tiny_llama, checkpointing=True)
    use_fast_dropout(checkpointed)
    loss, want = step(plain, ids)
    loss_ckpt, got = step(checkpointed, ids)
    assert loss_ckpt == pytest.approx(loss, rel=1e-6)
    for name, grad in got.items():
        torch.testing.assert_close(grad, want[name], atol=1e-5, rtol=1e-4)
    plain.eval()
    with torch.no_grad():  # eval mode: no dropout, the LoRA model's own output
        swapped = plain(input_ids=ids).logits
        for module in plain.modules():
            if isinstance(module, torch.nn.ModuleDict) and any(isinstance(d, FastDropout) for d in module.values()):
                for key in list(module.keys()):
                    module[key] = torch.nn.Dropout(module[key].p)
        torch.testing.assert_close(plain.eval()(input_ids=ids).logits, swapped)


@pytest.mark.parametrize("fast", [True, False])
def test_the_recipe_switch_decides(tiny_llama, fast):
    from transformers import AutoModelForCausalLM

    from ftbench.core.recipe import validate_recipe
    from ftbench.train.methods import apply_method

    recipe = validate_recipe(
        {
            "task": "sft",
            "model": str(tiny_llama),
            "method": {"name": "lora", "dropout": 0.1},
            "data": {"train": "d"},
            "training": {"fast_dropout": fast},
        }
    )
    model = apply_method(AutoModelForCausalLM.from_pretrained(tiny_llama), recipe, {})
    kinds = {type(m) for n, m in model.named_modules() if ".lora_dropout." in n}
    assert kinds == ({FastDropout} if fast else {torch.nn.Dropout})
