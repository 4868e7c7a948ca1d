"""Tokenizers as users have them, end to end through llama.cpp:

* SentencePiece-family models given only as tokenizer.json (what transformers and `ftbench import` save):
  Llama-2 style (BPE with byte fallback, "▁" prefix) and Gemma-3 after an import round trip;
* BPE pre-tokenizers: llama.cpp's fingerprint table, a structure no rule knows (chosen by the probe and then
  verified), and a forced name (`--pre`).
"""

from __future__ import annotations

import json

import gguf
import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("sentencepiece")
pytest.importorskip("google.protobuf")

from export_models import make_arch_model, make_sentencepiece_gemma3, make_sentencepiece_llama  # noqa: E402

from ftbench.cli import main  # noqa: E402
from ftbench.export.gguf.writer import convert  # noqa: E402
from ftbench.export.verify import HFReference, check_gguf  # noqa: E402


def _field(path, key):
    return gguf.GGUFReader(path).get_field(key).contents()


def test_llama2_style_tokenizer_json_without_tokenizer_model(tmp_path):
    from tinymodels import corpus

    model = make_sentencepiece_llama(tmp_path / "sp-llama", corpus())
    (model / "tokenizer.model").unlink()  # as a user who only has tokenizer.json
    ref = HFReference(model)
    out = convert(model, tmp_path / "m-f32.gguf", "f32")
    assert _field(out["path"], "tokenizer.ggml.model") == "llama" and _field(
        out["path"], "tokenizer.ggml.add_space_prefix"
    )
    res = check_gguf(out["path"], ref, "f32")
    assert res.tokens_match, res.problems
    assert res.passed and res.nmse < 1e-5


def test_imported_gemma3_with_tokenizer_json_only_round_trips(tmp_path):
    """Gemma-3 with a trained SentencePiece tokenizer -> GGUF -> `ftbench import` (tokenizer.json only) -> GGUF:
    identical token ids and F16 NMSE < 1e-4 against the imported HF model."""
    from ftbench.export.importer import import_gguf

    original = make_sentencepiece_gemma3(tmp_path / "gemma3")
    first = convert(original, tmp_path / "orig-F32.gguf", "f32")["path"]
    imported = import_gguf(first, tmp_path / "imported")
    (imported / "tokenizer.model").unlink(missing_ok=True)  # the case from the issue: tokenizer.json alone
    assert json.loads((imported / "tokenizer.json").read_text())["model"]["type"] in ("BPE", "Unigram")
    ref = HFReference(imported)
    assert ref.ids == HFReference(original).ids  # the import kept the tokenizer's behaviour
    again = convert(imported, tmp_path / "again-F16.gguf", "f16")["path"]
    assert _field(again, "tokenizer.ggml.add_space_prefix") is False  # Gemma: no "▁" prefix
    res = check_gguf(again, ref, "f16")
    assert res.tokens_match, res.problems
    assert res.passed and res.nmse < 1e-4


GPT2_RX = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"


def _restructure_as_split(model_dir):
    """The same GPT-2 splitting written as Split(regex) + ByteLevel(use_regex=false): no rule knows this shape."""
    tj = model_dir / "tokenizer.json"
    data = json.loads(tj.read_text())
    data["pre_tokenizer"] = {
        "type": "Sequence",
        "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": GPT2_RX}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
        ],
    }
    tj.write_text(json.dumps(data))


def test_unknown_pre_tokenizer_is_chosen_by_probe_and_verified(tmp_path):
    from ftbench.export.gguf.tokenizer import choose_pre, structural_pre

    model = make_arch_model(tmp_path / "llama", "llama")
    _restructure_as_split(model)
    assert structural_pre(json.loads((model / "tokenizer.json").read_text())) is None
    choice = choose_pre(model)
    assert choice.name == "gpt-2" and choice.how.startswith("probe")
    out = convert(model, tmp_path / "m-f16.gguf", "f16", pre=choice)
    assert out["pre"] == "gpt-2" and out["pre_how"].startswith("probe")
    res = check_gguf(out["path"], HFReference(model), "f16")
    assert res.tokens_match and res.passed, res.problems


def test_pre_is_forced_from_the_cli_and_bad_names_are_refused(tmp_path, workspace, capsys):
    model = make_arch_model(tmp_path / "llama", "llama")
    rc = main(["--workspace", str(workspace.root), "export", str(model), "--quant", "f16", "--pre", "gpt-2", "--wait"])
    out = capsys.readouterr().out
    assert rc == 0 and "pre-tokenizer: gpt-2 (forced)" in out
    (f16,) = workspace.exports_dir.glob("*/llama-F16.gguf")
    assert _field(f16, "tokenizer.ggml.pre") == "gpt-2"

    rc = main(["--workspace", str(workspace.root), "export", str(model), "--quant", "f16", "--pre", "gpt2-typo"])
    err = capsys.readouterr().err
    assert rc == 2 and "'gpt2-typo'" in err and "llama-bpe" in err


def test_recipe_pre_tokenizer_is_used_for_a_run(tmp_path):
    from ftbench.export.job import recipe_export_option
    from ftbench.export.pipeline import resolve_source

    run = tmp_path / "run"
    model = make_arch_model(run / "model", "llama")
    (run / "recipe.yaml").write_text("task: sft\nexport:\n  pre_tokenizer: qwen2\n")
    assert recipe_export_option(resolve_source(None, str(model)), "pre_tokenizer") == "qwen2"


def test_demo_smollm2_gets_llama_cpp_s_name(demo_workspace):
    """SmolLM2's vocabulary is in llama.cpp's fingerprint table as `smollm` (it used to be written as gpt-2)."""
    from ftbench.export.gguf.tokenizer import choose_pre

    choice = choose_pre(demo_workspace.models_dir / "smollm2-135m-instruct")
    assert (choice.name, choice.how) == ("smollm", "llama.cpp fingerprint")
