"""The vllm engine: one sentence on how to install it where it is missing; a real run on a CUDA machine."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from ftbench.chat.protocol import GenSettings, VariantSpec
from ftbench.core.errors import FtbenchError
from ftbench.serve.engines import VLLM_MISSING, Engine

HAS_VLLM = importlib.util.find_spec("vllm") is not None


@pytest.mark.skipif(HAS_VLLM, reason="vllm is installed here")
def test_missing_vllm_says_how_to_install_it(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(FtbenchError) as info:
        Engine().load([VariantSpec(name="base", kind="hf", path=str(tmp_path))], "vllm")
    assert info.value.message == VLLM_MISSING
    assert "pip install vllm" in VLLM_MISSING and VLLM_MISSING.count(". ") == 0


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed")
def test_vllm_serves_the_base_and_an_adapter_by_name(tiny_llama: Path, tmp_path: Path) -> None:
    from test_chat_hf import make_adapter

    model = tmp_path / "tiny"
    shutil.copytree(tiny_llama, model)
    adapter = make_adapter(model, tmp_path / "a", 1)
    engine = Engine()
    engine.load(
        [
            VariantSpec(name="base", kind="hf", path=str(model)),
            VariantSpec(name="a", kind="adapter", path=str(adapter), base=str(model)),
        ],
        "vllm",
    )
    greedy = GenSettings(temperature=0.0, max_new_tokens=6)
    hello = [{"role": "user", "content": "hello model"}]
    base = engine.generate("base", hello, greedy, lambda _: None, lambda: False)
    tuned = engine.generate("a", hello, greedy, lambda _: None, lambda: False)
    assert 0 < base["tokens"] <= 6 and base["prompt_tokens"] > 3
    assert base["text"] != tuned["text"]
