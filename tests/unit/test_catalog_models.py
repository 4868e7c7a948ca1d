"""Model inspection from metadata only: safetensors headers, config.json, model cards, GGUF, adapters."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from hfenv import use_hf_home
from safetensors.numpy import save_file

from ftbench.catalog.hf_files import read_safetensors_header
from ftbench.catalog.model_listing import discover_models
from ftbench.catalog.models import inspect_model, safetensors_stats
from ftbench.core.errors import FtbenchError

LLAMA_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 2048,
    "vocab_size": 100,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
}


def make_model(
    folder: Path, tensors: dict[str, np.ndarray], config: dict | None = None, card: str | None = None
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config or LLAMA_CONFIG))
    (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ messages }}"}))
    if card is not None:
        (folder / "README.md").write_text(card)
    return folder


def make_gguf(path: Path) -> Path:
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(4096)
    writer.add_embedding_length(64)
    writer.add_block_count(2)
    writer.add_feed_forward_length(128)
    writer.add_head_count(4)
    writer.add_head_count_kv(2)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_license("mit")
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list([f"t{i}" for i in range(300)])
    writer.add_chat_template("{{ messages }}")
    writer.add_tensor("token_embd.weight", np.zeros((300, 64), dtype=np.float16))
    writer.add_tensor("output_norm.weight", np.ones(64, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_params_and_dtype_come_from_headers(tmp_path: Path) -> None:
    tensors = {
        "embed": np.zeros((100, 64), np.float16),
        "norm": np.zeros(64, np.float32),
        "w": np.zeros((3, 5, 7), np.float16),
    }
    folder = make_model(tmp_path / "m", tensors)
    header = read_safetensors_header(folder / "model.safetensors")
    assert header["w"]["shape"] == [3, 5, 7] and header["w"]["dtype"] == "F16"
    total, by_dtype = safetensors_stats([folder / "model.safetensors"])
    assert total == 6400 + 64 + 105
    assert by_dtype == {"F16": 6505, "F32": 64}


def test_sharded_checkpoint_counts_every_shard(tmp_path: Path) -> None:
    folder = tmp_path / "sharded"
    folder.mkdir()
    save_file({"a": np.zeros((10, 10), np.float32)}, str(folder / "model-00001-of-00002.safetensors"))
    save_file({"b": np.zeros((5,), np.float32)}, str(folder / "model-00002-of-00002.safetensors"))
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}})
    )
    (folder / "config.json").write_text(json.dumps(LLAMA_CONFIG))
    info = inspect_model(folder)
    assert (info.params, info.dtype) == (105, "F32")


def test_corrupt_header_is_reported_not_raised_through(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(LLAMA_CONFIG))
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    with pytest.raises(FtbenchError, match="not a valid safetensors"):
        read_safetensors_header(folder / "model.safetensors")
    info = inspect_model(folder)
    assert info.params is None and "not a valid safetensors" in info.error


def test_hf_folder_facts(tmp_path: Path) -> None:
    card = "---\nlicense: apache-2.0\ntags: [a]\n---\n# Model\n"
    folder = make_model(tmp_path / "m", {"x": np.zeros((8, 8), np.float16)}, card=card)
    info = inspect_model(folder)
    assert info.kind == "hf"
    assert info.architecture == "LlamaForCausalLM" and info.model_type == "llama"
    assert (info.context_length, info.vocab_size, info.chat_template, info.license) == (2048, 100, True, "apache-2.0")
    assert info.size_bytes == sum(f.stat().st_size for f in folder.iterdir())
    assert info.shape["hidden_size"] == 64 and info.shape["num_kv_heads"] == 2 and info.shape["head_dim"] == 16
    assert info.shape["tied_embeddings"] == 1


def test_real_tiny_llama_param_count_matches_its_tensors(tiny_llama: Path) -> None:
    from safetensors.numpy import load_file

    info = inspect_model(tiny_llama)
    arrays = load_file(str(tiny_llama / "model.safetensors"))
    assert info.params == sum(a.size for a in arrays.values())
    assert info.chat_template is True
    config = json.loads((tiny_llama / "config.json").read_text())
    assert info.vocab_size == config["vocab_size"] and info.context_length == config["max_position_embeddings"]


def test_gguf_metadata(tmp_path: Path) -> None:
    info = inspect_model(make_gguf(tmp_path / "tiny-f16.gguf"))
    assert info.kind == "gguf"
    assert (info.architecture, info.context_length, info.vocab_size, info.license, info.chat_template) == (
        "llama",
        4096,
        300,
        "mit",
        True,
    )
    assert info.params == 300 * 64 + 64
    assert info.quantization == "F16"
    assert info.shape == {
        "hidden_size": 64,
        "num_layers": 2,
        "num_heads": 4,
        "num_kv_heads": 2,
        "intermediate_size": 128,
        "vocab_size": 300,
    }


def test_truncated_gguf_is_listed_with_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "cut.gguf"
    path.write_bytes(b"GGUF\x03\x00")
    info = inspect_model(path)
    assert info.kind == "gguf" and info.error and info.params is None


def test_adapter_names_its_base(tmp_path: Path) -> None:
    folder = tmp_path / "lora"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(
        json.dumps({"peft_type": "LORA", "base_model_name_or_path": "org/base", "r": 4})
    )
    save_file(
        {"A": np.zeros((4, 64), np.float32), "B": np.zeros((64, 4), np.float32)},
        str(folder / "adapter_model.safetensors"),
    )
    info = inspect_model(folder)
    assert (info.kind, info.base_model, info.peft_type, info.params, info.dtype) == (
        "adapter",
        "org/base",
        "LORA",
        512,
        "F32",
    )


def test_not_a_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FtbenchError, match="is not a model"):
        inspect_model(tmp_path)


def test_discover_roots_runs_and_hf_cache(workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_catalog_datasets import make_hub_repo

    make_model(workspace.models_dir / "tiny", {"x": np.zeros((4, 4), np.float32)})
    make_model(
        workspace.models_dir / "tiny" / "checkpoint-1", {"x": np.zeros((4, 4), np.float32)}
    )  # not a separate model
    make_gguf(workspace.models_dir / "tiny-f16.gguf")
    adapter = workspace.runs_dir / "20261122-sft" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "base_model_name_or_path": "tiny"}))
    hub = tmp_path / "hf" / "hub"
    make_hub_repo(hub, "model", "org/cached", {"config.json": json.dumps(LLAMA_CONFIG).encode()})
    use_hf_home(monkeypatch, tmp_path / "hf")

    found = {m.name: m for m in discover_models(workspace, hf_cache=True)}
    assert set(found) == {"tiny", "tiny-f16.gguf", "runs/20261122-sft/adapter", "org/cached"}
    assert found["runs/20261122-sft/adapter"].base_model == "tiny"
    assert found["org/cached"].source == "hf-cache" and found["org/cached"].vocab_size == 100
    assert "org/cached" not in {m.name for m in discover_models(workspace, hf_cache=False)}


def test_a_gguf_from_an_export_that_did_not_finish_is_marked(workspace) -> None:
    """A quant finished before its export failed is listed with the reason, from the cache too; a good one is not."""
    from ftbench.core.atomic import atomic_write_json

    for job, state in (("20261130-export-a", "failed"), ("20261130-export-b", "succeeded")):
        (workspace.exports_dir / job).mkdir(parents=True)
        make_gguf(workspace.exports_dir / job / "m-Q8_0.gguf")
        atomic_write_json(workspace.exports_dir / job / "status.json", {"id": job, "state": state})
    for visit in ("cold", "warm"):
        found = {m.name: m for m in discover_models(workspace, hf_cache=False)}
        failed, good = found["exports/20261130-export-a/m-Q8_0.gguf"], found["exports/20261130-export-b/m-Q8_0.gguf"]
        assert failed.error == "written by an export that failed; not verified", visit
        assert good.error is None and good.quantization == "F16", visit
