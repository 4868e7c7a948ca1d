"""The eval's batched generation (a shared prompt prefix computed once, rows prefilled in length-sorted chunks and
stitched into one cache, adapters switched per batch) must give every prompt exactly the answer chat's backend
gives it alone, in-process on a tiny random llama."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from test_chat_hf import make_adapter  # noqa: E402
from test_eval_job import MAX_TOKENS, alone  # noqa: E402
from tinymodels import corpus  # noqa: E402

from ftbench.chat.protocol import VariantSpec  # noqa: E402
from ftbench.evaluate import prefill  # noqa: E402
from ftbench.evaluate.hf_runner import GenConfig, HFRunner, left_padded  # noqa: E402
from ftbench.evaluate.prefill import MIN_SHARED_PREFIX, shared_prefix  # noqa: E402

INSTRUCTION = "Read the following note carefully and answer with one short sentence about what it says:"


def test_shared_prefix_leaves_every_row_a_token_and_left_padding_aligns_rows_right():
    rows = [[5, 6, 7, 1], [5, 6, 7, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert shared_prefix(rows) == 3
    assert shared_prefix([[5, 6], [5, 6, 7]]) == 1  # every row keeps a token of its own
    model = torch.nn.Linear(1, 1)  # only .device is read
    model.device = torch.device("cpu")
    enc = left_padded(model, 0, rows)
    assert enc["input_ids"].tolist() == [[0, 0, 5, 6, 7, 1], [5, 6, 7, 2, 3, 4], [0, 5, 6, 7, 8, 9]]
    assert enc["attention_mask"].tolist() == [[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1], [0, 1, 1, 1, 1, 1]]


def _last_logits_alone(model, prompt: list[int]) -> torch.Tensor:
    with torch.inference_mode():
        return model(input_ids=torch.tensor([prompt])).logits[0, -1]


@pytest.mark.parametrize("shared", [0, 4])
def test_stitched_cache_gives_each_row_the_logits_it_has_alone(tiny_llama: Path, monkeypatch, shared: int):
    """Rows of 1..9 own tokens in chunks of 2 (so chunk widths differ and one chunk has only the last token when
    there is a prefix): running each row's last token on the stitched cache equals running its prompt alone."""
    from transformers import AutoModelForCausalLM

    monkeypatch.setattr(prefill, "PREFILL_ROWS", 2)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32).eval()
    start = [11, 12, 13, 14][:shared]
    prompts = [start + [20 + (7 * i + j) % 50 for j in range(n)] for i, n in enumerate([3, 1, 9, 2, 5, 1, 7])]
    if not shared:
        prompts[1], prompts[5] = [30, 31], [32, 33]  # no prefix: every row needs a head token of its own
    staged = prefill.staged_batch(model, 0, prompts, shared)
    assert staged is not None
    assert staged.cache.get_seq_length() == staged.input_ids.shape[1] - 1
    positions = (staged.attention_mask.cumsum(-1) - 1)[:, -1:]
    with torch.inference_mode():
        out = model(
            input_ids=staged.input_ids[:, -1:],
            attention_mask=staged.attention_mask,
            position_ids=positions,
            **{staged.keyword: staged.cache},
        )
    for i, prompt in enumerate(prompts):
        assert staged.input_ids[i, -len(prompt) + shared :].tolist() == prompt[shared:]
        assert staged.attention_mask[i].sum() == len(prompt)
        torch.testing.assert_close(out.logits[i, -1], _last_logits_alone(model, prompt), atol=1e-4, rtol=1e-4)


def test_batched_answers_with_a_shared_prefix_equal_each_prompt_alone(tiny_llama: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(prefill, "PREFILL_ROWS", 2)  # several chunks of different widths
    adapters = {"A": make_adapter(tiny_llama, tmp_path / "A", 1), "B": make_adapter(tiny_llama, tmp_path / "B", 2)}
    prompts = [f"{INSTRUCTION} {line[:50]}" for line in corpus(n=6, seed=5)]
    specs = [VariantSpec("base", "hf", str(tiny_llama))] + [
        VariantSpec(name, "adapter", str(path), base=str(tiny_llama)) for name, path in adapters.items()
    ]
    runner = HFRunner(specs, GenConfig(max_new_tokens=MAX_TOKENS), device="cpu")
    base = runner.backend.bases[str(tiny_llama.resolve())]
    batch = [[{"role": "user", "content": p}] for p in prompts]
    assert shared_prefix([runner._prompt_ids(base, m) for m in batch]) >= MIN_SHARED_PREFIX  # the prefix path runs
    batched = {s.name: [a["prediction"] for a in runner.generate(s.name, batch)] for s in specs}
    assert batched == alone(tiny_llama, adapters, prompts)
    assert batched["A"] != batched["base"] and batched["B"] != batched["A"]  # switching is exercised


def _nll_alone(model, prompt: list[int], ref: list[int]) -> float:
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([prompt + ref])).logits[0].float()
    logprobs = torch.log_softmax(logits[len(prompt) - 1 : -1], dim=-1)
    return -float(logprobs[torch.arange(len(ref)), torch.tensor(ref)].sum()) if ref else 0.0


@pytest.mark.parametrize("stitched", [True, False])
def test_reference_nll_on_the_shared_prefix_equals_each_row_teacher_forced_alone(
    tiny_llama: Path, monkeypatch, stitched: bool
):
    """Prefix once + chunked prompts + only the reference columns projected (or, for caches that cannot be
    stitched, one left-padded forward) give each row the NLL a plain forward of prompt + reference gives it."""
    monkeypatch.setattr(prefill, "PREFILL_ROWS", 2)
    if not stitched:
        monkeypatch.setattr(prefill, "_stitchable", lambda cache: False)
    runner = HFRunner([VariantSpec("base", "hf", str(tiny_llama))], GenConfig(), device="cpu")
    base = runner.backend.bases[str(tiny_llama.resolve())]
    lines = corpus(n=5, seed=9)
    batch = [
        ([{"role": "user", "content": f"{INSTRUCTION} {line[: 10 + 9 * i]}"}], line[-12 - 5 * i :])
        for i, line in enumerate(lines)
    ]
    batch.append(([{"role": "user", "content": f"{INSTRUCTION} nothing"}], ""))  # no reference tokens: 0 over 0
    prompts = [runner._prompt_ids(base, m) for m, _ in batch]
    assert shared_prefix(prompts) >= MIN_SHARED_PREFIX
    got = runner.reference_nll("base", batch)
    for (_, ref), prompt, (nll, n) in zip(batch, prompts, got, strict=True):
        ref_ids = base.tokenizer(ref, add_special_tokens=False)["input_ids"]
        assert n == len(ref_ids)
        assert nll == pytest.approx(_nll_alone(base.model, prompt, ref_ids), abs=1e-4)
    assert sum(n for _, n in got) > 20 and len({len(p) for p in prompts}) > 3  # varied rows were really compared
