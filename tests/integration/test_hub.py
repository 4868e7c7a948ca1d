"""`ftbench pull` and `ftbench push` against the Hub stand-in (tests/hubstandin.py) through the real
huggingface_hub client: files land in the HF cache (or the workspace), a killed download resumes with a
Range request, access failures are one sentence naming the fix, and pushes deliver files and a model card."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import yaml
from hfenv import use_hf_home
from hubstandin import HubStandIn
from test_train_tasks import base_recipe, run_inline, tiny_lm, toy_data  # noqa: F401 (fixtures)

from ftbench.catalog.hf_cache import hf_cache_repos
from ftbench.cli import main
from ftbench.core.events import read_events
from ftbench.core.jobs import find_job, refresh

TOKEN = "hf_test_token"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    from huggingface_hub import constants

    with HubStandIn(tokens={TOKEN}) as stand_in:
        use_hf_home(monkeypatch, tmp_path / "hf")
        for key, value in {
            "HF_ENDPOINT": stand_in.url,
            "HF_HUB_OFFLINE": "0",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        }.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.setattr(constants, "ENDPOINT", stand_in.url)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        yield stand_in


def tiny_repo_files() -> dict[str, bytes]:
    return {
        "config.json": json.dumps({"model_type": "llama", "vocab_size": 100}).encode(),
        "model.safetensors": os.urandom(300_000),
        "tokenizer/tokenizer.json": b'{"version": "1.0"}',
    }


def ws_args(ws) -> list[str]:
    return ["--workspace", str(ws.root)]


def newest_job(ws):
    return refresh(find_job(ws, sorted(p.name for p in ws.jobs_parent("pull").iterdir())[-1]))


def test_pull_into_the_hf_cache_and_into_the_workspace(hub, workspace, capsys, tmp_path):
    files = tiny_repo_files()
    repo = hub.add_repo("org/tiny", files)
    assert main([*ws_args(workspace), "pull", "org/tiny", "--wait"]) == 0, capsys.readouterr().err
    snapshot = tmp_path / "hf" / "hub" / "models--org--tiny" / "snapshots" / repo.sha
    assert {p.relative_to(snapshot).as_posix(): p.read_bytes() for p in snapshot.rglob("*") if p.is_file()} == files
    assert str(snapshot) in capsys.readouterr().out
    assert ("org/tiny", snapshot) in hf_cache_repos("model")  # the catalog lists what pull wrote

    job = newest_job(workspace)
    total = sum(len(b) for b in files.values())
    assert job.status["result"] | {"path": None} == {
        "repo_id": "org/tiny",
        "revision": "main",
        "commit": repo.sha,
        "path": None,
        "to": "cache",
        "files": 3,
        "bytes": total,
    }
    progress = [(e["done"], e["total"]) for e in read_events(job.dir / "events.jsonl", ["progress"])]
    assert progress[0] == (0, total) and progress[-1] == (total, total)

    argv = [*ws_args(workspace), "pull", "org/tiny", "--include", "*.json", "--to", "workspace", "--wait"]
    assert main(argv) == 0, capsys.readouterr().err
    folder = workspace.models_dir / "tiny"
    pulled = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts}
    assert pulled == {"config.json", "tokenizer/tokenizer.json"}  # huggingface_hub's globs: '*' crosses '/'
    assert (folder / "config.json").read_bytes() == files["config.json"]
    assert json.loads((folder / ".cache/huggingface/ftbench-source.json").read_text())["repo_id"] == "org/tiny"


def test_a_killed_pull_finishes_when_run_again_keeping_the_files_it_had(hub, workspace, capsys, tmp_path):
    """huggingface_hub 2.x keeps finished files and restarts unfinished ones (its partial files are private to
    the process that wrote them), so a rerun after kill -9 fetches only what was not complete."""
    files = {"small.safetensors": os.urandom(200_000), "large.safetensors": os.urandom(2_000_000)}
    hub.add_repo("org/big", files)
    hub.bytes_per_s = 500_000
    assert main([*ws_args(workspace), "pull", "org/big"]) == 0
    blobs = tmp_path / "hf" / "hub" / "models--org--big" / "blobs"
    deadline = time.monotonic() + 60
    while not (blobs.is_dir() and [p for p in blobs.iterdir() if not p.name.endswith(".incomplete")]):
        assert time.monotonic() < deadline, "the small file never finished"
        time.sleep(0.05)
    first = newest_job(workspace)
    os.kill(first.status["pid"], signal.SIGKILL)
    while refresh(first).active:
        time.sleep(0.1)
    assert list(blobs.glob("*.incomplete")), "killed before the large file started"
    hub.bytes_per_s = None
    assert main([*ws_args(workspace), "pull", "org/big", "--wait"]) == 0, capsys.readouterr().err
    gets = [path.rsplit("/", 1)[-1] for method, path, _ in hub.requests if method == "GET" and "/resolve/" in path]
    assert gets.count("small.safetensors") == 1 and gets.count("large.safetensors") == 2
    (snapshot,) = (tmp_path / "hf" / "hub" / "models--org--big" / "snapshots").iterdir()
    assert {name: (snapshot / name).read_bytes() for name in files} == files


@pytest.mark.parametrize(
    "repo_id, token, offline, words",
    [
        ("org/gated", None, "0", ["org/gated is gated", "no Hugging Face token", "HF_TOKEN", "hf auth login"]),
        ("org/gated", TOKEN, "0", ["org/gated is gated", "not been granted", "Accept its terms"]),
        ("org/private", None, "0", ["org/private was not found", "private", "HF_TOKEN", "hf auth login"]),
        ("org/missing", TOKEN, "0", ["org/missing was not found", "your token cannot read it"]),
        ("org/tiny", "hf_wrong", "0", ["token was refused", "HF_TOKEN", "hf auth login"]),
        ("org/tiny", None, "1", ["HF_HUB_OFFLINE is set", "org/tiny", "Unset HF_HUB_OFFLINE"]),
    ],
)
def test_access_failures_are_one_sentence_with_the_fix(
    hub, workspace, capsys, monkeypatch, repo_id, token, offline, words
):
    hub.add_repo("org/tiny", {"config.json": b"{}"})
    hub.add_repo("org/gated", {"config.json": b"{}"}, gated=True)
    hub.add_repo("org/private", {"config.json": b"{}"}, private=True)
    if token:
        monkeypatch.setenv("HF_TOKEN", token)
    monkeypatch.setenv("HF_HUB_OFFLINE", offline)
    assert main([*ws_args(workspace), "pull", repo_id, "--wait"]) == 1
    err = capsys.readouterr().err
    message = err.split(": ", 2)[-1].split("\nhint:")[0]
    assert message.count(". ") == 0 and message.strip().endswith("."), err  # one sentence
    for word in words:
        assert word in err, (word, err)
    assert "Traceback" not in err


def test_pull_refuses_a_bad_repo_id_before_a_job_exists(workspace, capsys):
    assert main([*ws_args(workspace), "pull", "../etc/passwd"]) == 2
    assert "is not a Hugging Face repo id" in capsys.readouterr().err
    assert not workspace.jobs_parent("pull").exists() or not list(workspace.jobs_parent("pull").iterdir())


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


@pytest.fixture
def trained_and_exported(workspace, tiny_lm, toy_data, capsys):  # noqa: F811
    recipe = base_recipe(tiny_lm, toy_data["alpaca"], training={"max_steps": 4, "logging_steps": 2})
    run_dir, _ = run_inline(workspace, recipe)
    argv = [*ws_args(workspace), "export", run_dir.name, "--quant", "q8_0", "--wait"]
    assert main(argv) == 0, capsys.readouterr().err
    (export_dir,) = workspace.exports_dir.iterdir()
    capsys.readouterr()
    return run_dir, export_dir


def test_push_adapter_folder_and_gguf_file(hub, workspace, tiny_llama, capsys, monkeypatch, tmp_path):
    """Fast: a PEFT adapter folder and a GGUF file, no run behind them; the card says what it can."""
    import gguf
    import numpy as np
    from export_models import make_lora

    adapter_dir = make_lora(tiny_llama, workspace.models_dir / "lora")
    writer = gguf.GGUFWriter(str(workspace.models_dir / "tiny-Q8_0.gguf"), "llama")
    writer.add_tensor("token_embd.weight", np.zeros((8, 4), np.float32))
    for step in (writer.write_header_to_file, writer.write_kv_data_to_file, writer.write_tensors_to_file):
        step()
    writer.close()
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    argv = [*ws_args(workspace), "push", str(adapter_dir), "tester/lora", "--base-model", "org/base", "--wait"]
    assert main(argv) == 0, capsys.readouterr().err
    repo = hub.repos["tester/lora"]
    local = {p.name: p.read_bytes() for p in adapter_dir.iterdir() if p.is_file() and p.name != "README.md"}
    assert {k: v for k, v in repo.files.items() if k != "README.md"} == local
    meta = front_matter(repo.files["README.md"].decode())
    assert (meta["base_model"], meta["library_name"]) == ("org/base", "peft")

    assert main([*ws_args(workspace), "push", "tiny-Q8_0.gguf", "tester/gguf", "--wait"]) == 0
    repo = hub.repos["tester/gguf"]
    assert repo.files["tiny-Q8_0.gguf"] == (workspace.models_dir / "tiny-Q8_0.gguf").read_bytes()
    assert front_matter(repo.files["README.md"].decode())["library_name"] == "gguf"
    assert not repo.private


@pytest.mark.slow
def test_push_a_run_and_its_export_with_their_model_cards(hub, workspace, trained_and_exported, capsys, monkeypatch):
    run_dir, export_dir = trained_and_exported
    adapter = {
        p.relative_to(run_dir / "adapter").as_posix(): p.read_bytes()
        for p in (run_dir / "adapter").rglob("*")
        if p.is_file() and p.name != "README.md"  # peft's own card; ftbench's replaces it
    }

    argv = [*ws_args(workspace), "push", run_dir.name, "tester/tiny-lora", "--base-model", "org/tiny-base"]
    assert main([*argv, "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert {f["path"]: f["bytes"] for f in plan["files"]} == {
        **{name: len(data) for name, data in adapter.items()},
        "README.md": len(plan["card"].encode()),
    }
    assert hub.requests == []  # a dry run talks to nobody

    assert main(argv) == 2  # no token: one sentence before any job
    assert "needs a Hugging Face token" in capsys.readouterr().err
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert main([*argv, "--private", "--wait"]) == 0, capsys.readouterr().err
    repo = hub.repos["tester/tiny-lora"]
    assert repo.private and {k: v for k, v in repo.files.items() if k != "README.md"} == adapter
    card = repo.files["README.md"].decode()
    meta = front_matter(card)
    assert meta["base_model"] == "org/tiny-base" and meta["library_name"] == "peft"
    assert {"ftbench", "sft", "lora", "peft"} <= set(meta["tags"])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert f"| train_loss | {metrics['train_loss']} |" in card
    assert f"({metrics['info']['train_rows']} rows" in card and "## Recipe" in card and "max_steps: 4" in card

    assert main([*ws_args(workspace), "push", export_dir.name, "tester/tiny-gguf", "--wait"]) == 0
    repo = hub.repos["tester/tiny-gguf"]
    ggufs = {p.name: p.read_bytes() for p in export_dir.glob("*.gguf")}
    assert ggufs and {k: v for k, v in repo.files.items() if k != "README.md"} == ggufs
    card = repo.files["README.md"].decode()
    meta = front_matter(card)
    assert meta["library_name"] == "gguf" and "gguf" in meta["tags"] and "base_model" not in meta  # a local base
    verify = json.loads((export_dir / "status.json").read_text())["result"]["verify"][0]
    assert "## GGUF export" in card and f"verify {verify['type'].upper()}" in card and "PASS" in card
    assert f"{verify['nmse']:.2e}" in card
