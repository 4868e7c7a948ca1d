"""transformers + PEFT chat backend on a tiny random llama with two tiny LoRA adapters built here."""

from __future__ import annotations

import json
import shutil
import statistics
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from ftbench.chat.adapter_checks import base_names_match  # noqa: E402
from ftbench.chat.hf import HFBackend, end_of_turn_ids  # noqa: E402
from ftbench.chat.protocol import GenSettings, VariantSpec  # noqa: E402
from ftbench.core.errors import FtbenchError  # noqa: E402

GREEDY = GenSettings(temperature=0.0, max_new_tokens=12)
HELLO = [{"role": "user", "content": "hello model"}]


def make_adapter(base: Path, out: Path, seed: int, task_type: str = "CAUSAL_LM", r: int = 4) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base)
    cfg = LoraConfig(
        r=r, lora_alpha=2 * r, target_modules=["q_proj", "v_proj"], task_type=task_type, init_lora_weights=False
    )
    get_peft_model(model, cfg).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def adapters(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adapters")
    return {"A": make_adapter(tiny_llama, root / "A", 1), "B": make_adapter(tiny_llama, root / "B", 2)}


def gen(backend: HFBackend, name: str, messages=HELLO, settings: GenSettings = GREEDY) -> dict:
    pieces: list[str] = []
    result = backend.generate(name, messages, settings, pieces.append, lambda: False)
    assert "".join(pieces) == result["text"]  # the stream adds up to the final text
    return result


def safetensors_bytes(adapter: Path) -> int:
    from safetensors import safe_open

    with safe_open(str(adapter / "adapter_model.safetensors"), "pt") as f:
        return sum(f.get_tensor(k).numel() * f.get_tensor(k).element_size() for k in f.keys())


def test_adapters_share_one_base_and_match_separate_loads(tiny_llama: Path, adapters: dict[str, Path]) -> None:
    shared = HFBackend(device="cpu")
    base_info = shared.load(VariantSpec(name="base", kind="hf", path=str(tiny_llama)))
    a_info = shared.load(VariantSpec(name="A", kind="adapter", path=str(adapters["A"]), base=str(tiny_llama)))
    b_info = shared.load(VariantSpec(name="B", kind="adapter", path=str(adapters["B"]), base=str(tiny_llama)))
    assert len(shared.bases) == 1 and a_info["base_reused"] and b_info["base_reused"]
    # Memory growth per adapter is the adapter's own tensors, not another base.
    for name, info in (("A", a_info), ("B", b_info)):
        assert info["adapter_param_bytes"] == safetensors_bytes(adapters[name]) > 0
    assert (
        b_info["param_bytes"]
        == base_info["param_bytes"] + a_info["adapter_param_bytes"] + b_info["adapter_param_bytes"]
    )

    # Interleave columns: each must answer exactly as a fresh model holding only that variant.
    interleaved = {name: gen(shared, name)["text"] for name in ("A", "base", "B")}
    again = {name: gen(shared, name)["text"] for name in ("B", "A", "base")}
    assert interleaved == again
    for name in ("A", "B"):
        alone = HFBackend(device="cpu")
        alone.load(VariantSpec(name=name, kind="adapter", path=str(adapters[name]), base=str(tiny_llama)))
        assert gen(alone, name)["text"] == interleaved[name]
    plain = HFBackend(device="cpu")
    plain.load(VariantSpec(name="base", kind="hf", path=str(tiny_llama)))
    assert gen(plain, "base")["text"] == interleaved["base"]
    assert len({interleaved["A"], interleaved["B"], interleaved["base"]}) == 3  # the adapters change the answers

    # Switching is a pointer change, not a reload.
    times = []
    for name in ["A", "B"] * 10:
        t0 = time.perf_counter()
        with shared.switch(name):
            pass
        times.append(time.perf_counter() - t0)
    assert statistics.median(times) < 0.05

    # Removing a column leaves the others answering the same.
    shared.unload("A")
    assert gen(shared, "B")["text"] == interleaved["B"] and gen(shared, "base")["text"] == interleaved["base"]


def test_generation_stats_sampling_seed_and_history(tiny_llama: Path) -> None:
    backend = HFBackend(device="cpu")
    backend.load(VariantSpec(name="m", kind="hf", path=str(tiny_llama)))
    result = gen(backend, "m", settings=GenSettings(temperature=0.0, max_new_tokens=10))
    assert result["tokens"] <= 10 and result["stop_reason"] in ("length", "stop")
    assert result["ttft_s"] is not None and result["ttft_s"] > 0 and result["total_s"] >= result["ttft_s"]
    sampled = GenSettings(temperature=1.0, top_p=0.95, top_k=40, seed=7, max_new_tokens=10)
    assert gen(backend, "m", settings=sampled)["text"] == gen(backend, "m", settings=sampled)["text"]
    history = [*HELLO, {"role": "assistant", "content": result["text"]}, {"role": "user", "content": "and again"}]
    assert gen(backend, "m", messages=history)["tokens"] > 0
    cancelled = backend.generate(
        "m", HELLO, GenSettings(temperature=0.0, max_new_tokens=50), lambda _: None, lambda: True
    )
    assert cancelled["stop_reason"] == "cancelled" and cancelled["tokens"] <= 1


def test_stops_on_end_of_turn_token(tiny_llama: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    ids = end_of_turn_ids(tok, model)
    vocab = tok.get_vocab()
    assert vocab["<|im_end|>"] in ids and vocab["<|endoftext|>"] in ids
    with torch.no_grad():
        model.lm_head.weight.zero_()  # all logits tie, greedy picks id 0 = <|endoftext|>, an end-of-turn token
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    backend = HFBackend(device="cpu")
    backend.load(VariantSpec(name="m", kind="hf", path=str(tmp_path / "m")))
    result = gen(backend, "m", settings=GenSettings(temperature=0.0, max_new_tokens=20))
    assert result["stop_reason"] == "stop" and result["tokens"] == 1 and result["text"] == ""


def test_model_without_chat_template_gets_named_fallback(tiny_llama: Path, tmp_path: Path) -> None:
    folder = tmp_path / "no-template"
    shutil.copytree(tiny_llama, folder)
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    cfg = json.loads((folder / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg))
    backend = HFBackend(device="cpu")
    info = backend.load(VariantSpec(name="m", kind="hf", path=str(folder)))
    assert info["template"] == "plain"
    assert info["warnings"] == [
        "no-template has no chat template; using the 'plain' fallback (System:/User:/Assistant: lines)."
    ]
    base = backend.bases[str(folder.resolve())]
    assert (
        base.render([{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}])
        == "System: s\nUser: hi\nAssistant:"
    )
    assert gen(backend, "m")["tokens"] > 0


def test_loading_errors_are_clear_and_leave_other_columns_working(
    tiny_llama: Path, adapters: dict[str, Path], tmp_path: Path, monkeypatch
) -> None:
    from tinymodels import make_tiny_causal_lm

    backend = HFBackend(device="cpu")
    backend.load(VariantSpec(name="base", kind="hf", path=str(tiny_llama)))
    before = gen(backend, "base")["text"]

    not_adapter = tmp_path / "plain-folder"
    not_adapter.mkdir()
    with pytest.raises(FtbenchError, match="is not a PEFT adapter: it has no adapter_config.json"):
        backend.load(VariantSpec(name="x", kind="adapter", path=str(not_adapter), base=str(tiny_llama)))

    other = make_tiny_causal_lm(tmp_path / "other-llama", hidden_size=32, intermediate_size=64)
    foreign = make_adapter(other, tmp_path / "foreign", 3)
    with pytest.raises(FtbenchError) as err:
        backend.load(VariantSpec(name="f", kind="adapter", path=str(foreign), base=str(tiny_llama)))
    assert f"trained on base '{other}'" in err.value.message and str(tiny_llama) in err.value.message
    with pytest.raises(FtbenchError, match="tensor shapes differ"):
        backend.load(
            VariantSpec(
                name="f", kind="adapter", path=str(foreign), base=str(tiny_llama), options={"allow_base_mismatch": True}
            )
        )

    alone = HFBackend(device="cpu")  # a base loaded only for a failing adapter is not kept
    with pytest.raises(FtbenchError, match="trained on base"):
        alone.load(VariantSpec(name="f", kind="adapter", path=str(foreign), base=str(tiny_llama)))
    assert alone.bases == {} and alone.variants == {}

    cls_adapter = make_adapter(tiny_llama, tmp_path / "cls", 4, task_type="SEQ_CLS")
    with pytest.raises(FtbenchError, match="is a SEQ_CLS adapter"):
        backend.load(VariantSpec(name="c", kind="adapter", path=str(cls_adapter), base=str(tiny_llama)))

    damaged = tmp_path / "damaged"
    shutil.copytree(adapters["B"], damaged)
    (damaged / "adapter_model.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(FtbenchError, match="Cannot read the adapter weights"):
        backend.load(VariantSpec(name="d", kind="adapter", path=str(damaged), base=str(tiny_llama)))

    # A failure after peft has started injecting layers: the base is repaired, not left half-modified.
    from peft import PeftModel

    def broken_load(self, *args, **kwargs):
        raise RuntimeError("simulated failure half-way through loading")

    monkeypatch.setattr(PeftModel, "load_adapter", broken_load)
    with pytest.raises(FtbenchError, match="Cannot load adapter .*simulated failure"):
        backend.load(VariantSpec(name="A0", kind="adapter", path=str(adapters["A"]), base=str(tiny_llama)))
    monkeypatch.undo()
    assert not any("lora" in n for n, _ in backend.bases[str(tiny_llama.resolve())].model.named_modules())

    import ftbench.chat.hf as hf

    def oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(hf.AutoModelForCausalLM, "from_pretrained", oom)
    with pytest.raises(
        FtbenchError, match="Out of memory while loading other-llama on cpu; the other columns keep working"
    ):
        backend.load(VariantSpec(name="big", kind="hf", path=str(other)))
    monkeypatch.undo()

    with pytest.raises(FtbenchError, match="needs a CUDA GPU"):
        HFBackend(device="cpu", quantize="4bit").load(VariantSpec(name="q", kind="hf", path=str(tiny_llama)))

    # After all that, the first column still answers identically and an adapter still loads.
    assert gen(backend, "base")["text"] == before
    backend.load(VariantSpec(name="A", kind="adapter", path=str(adapters["A"]), base=str(tiny_llama)))
    assert gen(backend, "A")["tokens"] > 0


def test_base_name_matching() -> None:
    assert base_names_match("HuggingFaceTB/SmolLM2-135M-Instruct", Path("/ws/models/smollm2-135m-instruct"), None)
    assert base_names_match("/elsewhere/models/tiny", Path("/ws/models/tiny"), None)
    assert base_names_match(None, Path("/ws/m"), None)
    assert not base_names_match("/x/other-llama", Path("/ws/models/tiny"), "/ws/models/tiny")


@pytest.mark.gpu
def test_four_bit_base_on_gpu(tiny_llama: Path, adapters: dict[str, Path]) -> None:
    backend = HFBackend(device="cuda", quantize="4bit")
    info = backend.load(VariantSpec(name="base", kind="hf", path=str(tiny_llama)))
    backend.load(VariantSpec(name="A", kind="adapter", path=str(adapters["A"]), base=str(tiny_llama)))
    assert info["device"] == "cuda"
    assert any("4bit" in type(m).__name__ for m in backend.bases[str(tiny_llama.resolve())].model.modules())
    assert gen(backend, "base")["tokens"] > 0 and gen(backend, "A")["tokens"] > 0
