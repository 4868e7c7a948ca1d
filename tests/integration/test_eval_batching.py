"""The eval's batched generation (left padding, a shared prompt prefix computed once, adapters switched per batch)
must give every prompt exactly the answer chat's backend gives it alone, in-process on a tiny random llama."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from test_chat_hf import make_adapter  # noqa: E402
from test_eval_job import MAX_TOKENS, alone  # noqa: E402
from tinymodels import corpus  # noqa: E402

from ftbench.chat.protocol import VariantSpec  # noqa: E402
from ftbench.evaluate.hf_runner import MIN_SHARED_PREFIX, GenConfig, HFRunner, left_padded, shared_prefix  # noqa: E402

INSTRUCTION = "Read the following note carefully and answer with one short sentence about what it says:"


def test_shared_prefix_rows_keep_the_prefix_in_front_and_pad_before_their_own_tokens():
    rows = [[5, 6, 7, 1], [5, 6, 7, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert shared_prefix(rows) == 3
    assert shared_prefix([[5, 6], [5, 6, 7]]) == 1  # every row keeps a token of its own
    model = torch.nn.Linear(1, 1)  # only .device is read
    model.device = torch.device("cpu")
    enc = left_padded(model, 0, rows, shared=3)
    assert enc["input_ids"].tolist() == [[5, 6, 7, 0, 0, 1], [5, 6, 7, 2, 3, 4], [5, 6, 7, 0, 8, 9]]
    assert enc["attention_mask"].tolist() == [[1, 1, 1, 0, 0, 1], [1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 1, 1]]
    plain = left_padded(model, 0, rows)
    assert plain["input_ids"].tolist()[0] == [0, 0, 5, 6, 7, 1]


def test_batched_answers_with_a_shared_prefix_equal_each_prompt_alone(tiny_llama: Path, tmp_path: Path):
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
