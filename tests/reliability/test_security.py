"""Attacks from the hardening issue, each tried for real and required to fail.

A run name, an export name, a transcript id or a stored option is text someone else may have written (a shared
recipe, a shared transcript, a copied run folder). None of it may turn into a path outside the folder it belongs
to, or switch on a model folder's own Python.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from ftbench.chat.transcripts import Transcript, load_transcript, parse_transcript
from ftbench.core.errors import FtbenchError
from ftbench.core.safe_paths import inside, safe_name
from ftbench.core.workspace import Workspace
from ftbench.export.ollama import modelfile_text

RUN_ID = "20261122-000000-sft-evil-ab12"
ESCAPES = ["../../../somewhere/x", "/etc/cron.d/x", "..", ".", "a/../../b", "..\\..\\x", "\x00x", "-", ""]


def all_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.mark.parametrize("text", ESCAPES)
def test_safe_name_never_leaves_its_folder(text: str, tmp_path: Path) -> None:
    name = safe_name(text)
    assert name and "/" not in name and "\\" not in name and not name.startswith(".") and "\x00" not in name
    assert inside(tmp_path, tmp_path / name).parent == tmp_path.resolve()


@pytest.mark.parametrize("rel", ["../x", "a/../../x", "/etc/passwd"])
def test_inside_refuses_escapes(rel: str, tmp_path: Path) -> None:
    with pytest.raises(FtbenchError, match="outside"):
        inside(tmp_path / "out", tmp_path / "out" / rel)


def test_inside_follows_symlinks(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "link").symlink_to(tmp_path)
    with pytest.raises(FtbenchError, match="outside"):
        inside(tmp_path / "out", tmp_path / "out" / "link" / "x.gguf")


# -- 1: a run name becomes the export's file names ------------------------------------------------------------------


def test_export_of_a_run_named_like_a_path_stays_in_its_folder(tiny_llama: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from ftbench.export.pipeline import resolve_source, run_export

    ws = Workspace.open(tmp_path / "deep" / "e r" / "ws")  # a space: printed commands must quote it
    run = ws.runs_dir / RUN_ID
    shutil.copytree(tiny_llama, run / "model")
    (run / "status.json").write_text(
        json.dumps({"id": RUN_ID, "kind": "train", "state": "succeeded", "name": "../../../somewhere/x"})
    )
    before = all_files(tmp_path)
    source = resolve_source(ws, RUN_ID)
    assert source.name == "somewhere-x"
    out = ws.exports_dir / "e1"
    result = run_export(source, out, quants=["f16"], verify=False, log=lambda _m: None)
    new = all_files(tmp_path) - before
    assert new and all(
        out.resolve() in p.resolve().parents or p.resolve() == out.resolve() or p.resolve() in out.resolve().parents
        for p in new
    ), new
    assert [Path(f["path"]).name for f in result["files"]] == ["somewhere-x-F16.gguf"]
    assert not (tmp_path / "deep" / "somewhere").exists() and not (tmp_path / "somewhere").exists()
    import shlex

    assert shlex.split(result["commands"]["ollama"])[:2] == ["cd", str(out)]
    assert shlex.split(result["commands"]["llama.cpp"])[2] == str(out / "somewhere-x-F16.gguf")


# -- 2: trust decisions never come from a stored file ---------------------------------------------------------------


def evil_model(tiny_llama: Path, folder: Path, marker: Path) -> Path:
    """A model folder whose auto_map points at Python that leaves a marker file when imported."""
    shutil.copytree(tiny_llama, folder)
    (folder / "evil.py").write_text(f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["auto_map"] = {
        "AutoConfig": "evil.EvilConfig",
        "AutoModelForCausalLM": "evil.EvilModel",
        "AutoTokenizer": ["evil.EvilTokenizer", None],
    }
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def write_transcript(path: Path, chat_id: str, variants: list[dict]) -> Path:
    head = {
        "type": "chat",
        "version": 1,
        "id": chat_id,
        "title": "",
        "created": 0.0,
        "variants": variants,
        "settings": {},
        "overrides": {},
    }
    path.write_text(json.dumps(head) + "\n")
    return path


def test_transcript_cannot_carry_trust_remote_code(tmp_path: Path) -> None:
    path = write_transcript(
        tmp_path / "t.jsonl",
        "shared",
        [{"name": "m", "kind": "hf", "path": "/x", "options": {"trust_remote_code": True, "seed": 3}}],
    )
    t = parse_transcript(path)
    assert t.variants[0].options == {"seed": 3}
    assert "trust_remote_code" not in json.dumps(t.to_lines())


def test_hf_backend_ignores_a_columns_trust_option(tiny_llama: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from ftbench.chat.hf import HFBackend
    from ftbench.chat.protocol import VariantSpec

    marker = tmp_path / "remote-code-ran"
    model = evil_model(tiny_llama, tmp_path / "evil-model", marker)
    spec = VariantSpec(name="m", kind="hf", path=str(model), options={"trust_remote_code": True})
    backend = HFBackend(device="cpu")
    try:
        backend.load(spec)
    except FtbenchError:
        pass  # refusing is as good as loading the built-in class; running the folder's code is not
    assert not marker.exists()
    # Positive control: the live flag does run it, so the assertion above can fail.
    sys.modules.pop("evil", None)
    try:
        HFBackend(device="cpu", trust_remote_code=True).load(VariantSpec(name="m2", kind="hf", path=str(model)))
    except Exception:  # noqa: BLE001 - the evil module defines no classes; importing it is what counts
        pass
    assert marker.exists()


def test_predict_ignores_trust_in_the_run_folder(tiny_bert: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from ftbench.train.predict import load_predictor

    marker = tmp_path / "remote-code-ran"
    run = tmp_path / "run"
    weights = run / "model"
    shutil.copytree(tiny_bert, weights)
    (weights / "evil.py").write_text(f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n")
    cfg = json.loads((weights / "config.json").read_text())
    cfg["auto_map"] = {"AutoConfig": "evil.C", "AutoModelForSequenceClassification": "evil.M"}
    (weights / "config.json").write_text(json.dumps(cfg))
    (weights / "ftbench_task.json").write_text(
        json.dumps({"task": "classification", "labels": ["a", "b"], "trust_remote_code": True})
    )
    try:
        load_predictor(run, device="cpu")
    except FtbenchError:
        pass
    assert not marker.exists()


# -- 3: transcript ids never become paths ---------------------------------------------------------------------------


@pytest.mark.parametrize("chat_id", ["../../../x", "/tmp/x", "..", ".hidden", "a/b", ""])
def test_transcript_with_a_path_for_an_id_is_refused(chat_id: str, tmp_path: Path) -> None:
    ws = Workspace.open(tmp_path / "ws")
    path = write_transcript(tmp_path / "shared.jsonl", chat_id, [{"name": "s", "kind": "scripted"}])
    before = all_files(tmp_path)
    with pytest.raises(FtbenchError, match="not a plain name"):
        load_transcript(ws, str(path))
    assert all_files(tmp_path) == before


def test_a_transcript_object_with_a_bad_id_cannot_save(tmp_path: Path) -> None:
    from ftbench.chat.protocol import VariantSpec

    ws = Workspace.open(tmp_path / "ws")
    t = Transcript(id="../../escaped", variants=[VariantSpec(name="s", kind="scripted")])
    with pytest.raises(FtbenchError):
        t.save(ws)
    assert not (tmp_path / "escaped.jsonl").exists()


@pytest.mark.parametrize("ref", ["*", "2026*", "[0-9]*", "?", "../chats/x"])
def test_load_by_id_is_exact_not_a_glob(ref: str, tmp_path: Path) -> None:
    ws = Workspace.open(tmp_path / "ws")
    write_transcript(ws.chats_dir / "20261122-chat-a.jsonl", "20261122-chat-a", [{"name": "s", "kind": "scripted"}])
    with pytest.raises(FtbenchError):
        load_transcript(ws, ref)
    assert load_transcript(ws, "20261122-chat-a").id == "20261122-chat-a"


# -- 6: what ftbench writes into Modelfiles and shell commands is quoted ----------------------------------------------


def test_modelfile_escapes_an_eos_token_that_tries_to_add_instructions() -> None:
    text = modelfile_text("m-F16.gguf", None, 'x"\nADAPTER /tmp/evil.gguf\nPARAMETER stop "y')
    lines = text.splitlines()
    assert not any(line.startswith("ADAPTER") for line in lines)
    stop = [line for line in lines if line.startswith("PARAMETER stop")]
    assert stop == ['PARAMETER stop "x\\"\\nADAPTER /tmp/evil.gguf\\nPARAMETER stop \\"y"']


# -- 6: files ftbench writes respect the umask ----------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o077, 0o027, 0o002])
def test_new_files_follow_the_umask_and_replaced_files_keep_their_mode(umask: int, tmp_path: Path) -> None:
    import os

    from ftbench.core.atomic import atomic_write_text

    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "new.json", "{}")
        kept = tmp_path / "kept.json"
        kept.write_text("x")
        kept.chmod(0o640)
        atomic_write_text(kept, "y")
    finally:
        os.umask(old)
    assert (tmp_path / "new.json").stat().st_mode & 0o777 == 0o666 & ~umask
    assert kept.stat().st_mode & 0o777 == 0o640 and kept.read_text() == "y"


def test_file_names_from_names_hold_no_shell_syntax() -> None:
    from ftbench.export.pipeline import gguf_name

    assert gguf_name("my run; rm -rf ~", "q8_0") == "my-run-rm-rf-Q8_0.gguf"


# -- 6: a recipe (or the recipe frozen in a run folder) cannot turn on remote code ----------------------------------


def run_training_job(ws: Workspace, recipe: dict) -> dict:
    """The training job target in this process, as `job_entry` runs it (a real JobContext)."""
    from inlinejob import run_job_inline

    from ftbench.core.jobs import new_job_id

    job_dir = ws.runs_dir / new_job_id("train", "sft")
    try:
        run_job_inline(ws.root, job_dir, "train", "ftbench.train.worker:run", {"recipe": recipe})
    except Exception:  # noqa: BLE001 - failing is fine; running the folder's code is not
        pass
    return json.loads((job_dir / "status.json").read_text())


def test_a_training_job_trusts_only_the_live_flag(tiny_llama: Path, tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("torch")
    from ftbench.core.remote_code import TRUST_REMOTE_CODE_ENV

    marker = tmp_path / "remote-code-ran"
    model = evil_model(tiny_llama, tmp_path / "evil-model", marker)
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"text": f"hello {i}"}) + "\n" for i in range(4)))
    recipe = {
        "task": "sft",
        "model": {"path": str(model), "trust_remote_code": True},  # a shared recipe, or a copied run folder
        "data": {"train": str(data), "max_length": 16},
        "training": {"max_steps": 1, "batch_size": 2, "save_total_limit": 1},
    }
    ws = Workspace.open(tmp_path / "ws")
    monkeypatch.delenv(TRUST_REMOTE_CODE_ENV, raising=False)
    status = run_training_job(ws, recipe)
    assert not marker.exists()
    assert (status.get("result") or {}).get("steps") == 1, status  # trained, with transformers' own llama classes
    # Positive control: the attempt started with --trust-remote-code does run it, so the check above can fail.
    sys.modules.pop("evil", None)
    monkeypatch.setenv(TRUST_REMOTE_CODE_ENV, "1")
    run_training_job(ws, recipe)
    assert marker.exists()


def test_an_eval_job_trusts_only_the_live_flag(tiny_llama: Path, tmp_path: Path, monkeypatch) -> None:
    """`ftbench eval --trust-remote-code` reaches the job through its environment; nothing else turns it on."""
    pytest.importorskip("torch")
    from inlinejob import run_job_inline

    from ftbench.cli import build_parser
    from ftbench.commands.eval import build_params
    from ftbench.core.jobs import JOB_TARGETS, new_job_id
    from ftbench.core.remote_code import remote_code_env

    marker = tmp_path / "remote-code-ran"
    model = evil_model(tiny_llama, tmp_path / "evil-model", marker)
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"hi {i}", "reference": "ok"}) + "\n" for i in range(2)))
    ws = Workspace.open(tmp_path / "ws")

    def eval_job(*flags: str) -> Path:
        args = build_parser().parse_args(["eval", str(model), "--data", str(prompts), "--max-tokens", "2", *flags])
        params, _ = build_params(args, ws)
        sys.modules.pop("evil", None)
        monkeypatch.setenv(*next(iter(remote_code_env(args.trust_remote_code).items())))
        job_dir = ws.root / "jobs" / new_job_id("eval", "trust")
        run_job_inline(ws.root, job_dir, "eval", JOB_TARGETS["eval"], params)
        return job_dir

    summary = json.loads((eval_job() / "metrics.json").read_text())
    assert not marker.exists()
    assert summary["examples"] == 2 and len(summary["variants"]) == 1  # answered, with transformers' llama classes
    # Positive control: with the flag the folder's code runs (and, being a stub, fails the load).
    with pytest.raises(FtbenchError, match="Cannot load the model"):
        eval_job("--trust-remote-code")
    assert marker.exists()


@pytest.mark.parametrize("command", ["train", "resume"])
def test_train_and_resume_refuse_a_recipe_that_asks_for_trust(command: str, tmp_path: Path, capsys) -> None:
    from ftbench.cli import main

    ws = Workspace.open(tmp_path / "ws")
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "llama"}))
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"text": "hi"}) + "\n")
    recipe = f"task: sft\nmodel: {{path: {model}, trust_remote_code: true}}\ndata: {data}\n"
    if command == "train":
        target = tmp_path / "shared.yaml"
        target.write_text(recipe)
    else:
        run = ws.runs_dir / RUN_ID
        run.mkdir(parents=True)
        (run / "status.json").write_text(json.dumps({"id": RUN_ID, "kind": "train", "state": "failed"}))
        (run / "recipe.yaml").write_text(recipe)
        target = run / "recipe.yaml"
    before = sorted(p.name for p in ws.runs_dir.iterdir())
    code = main(["-w", str(ws.root), command, str(target) if command == "train" else RUN_ID])
    err = capsys.readouterr().err
    assert code == 2 and f"error: {target} sets model.trust_remote_code: true" in err and "--trust-remote-code" in err
    assert sorted(p.name for p in ws.runs_dir.iterdir()) == before  # no job folder, no new attempt
