"""Shell completion: each script generates and parses, and bash really completes job ids, checkpoints and models.

The bash test sources the generated script in a real bash, fills COMP_WORDS the way readline would, and
calls the completion function; the candidates come from a real `ftbench` process on PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ftbench.cli import main
from ftbench.commands.completion import COMPLETES, SHELLS, complete_values, find_action, script

SUBCOMMANDS = ("runs", "logs", "train", "chat", "export", "serve", "completion")


def make_run(ws, run_id: str, created: float, checkpoints: tuple[int, ...] = ()) -> Path:
    run = ws.jobs_parent("train") / run_id
    run.mkdir(parents=True)
    (run / "status.json").write_text(
        json.dumps({"id": run_id, "kind": "train", "state": "succeeded", "created_at": created})
    )
    for step in checkpoints:
        cp = run / "checkpoints" / f"checkpoint-{step}"
        cp.mkdir(parents=True)
        (cp / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
        (cp / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": []}))
    return run


def model_folder(path: Path) -> None:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model_type": "llama"}))


@pytest.mark.parametrize("shell", SHELLS)
def test_each_script_generates_with_every_subcommand(shell, tmp_path):
    text = script(shell)
    for name in SUBCOMMANDS:
        assert name in text
    assert "ftbench completion --candidates job" in text and "--candidates model" in text
    checker = {"bash": ["bash", "-n"], "zsh": ["zsh", "-n"], "fish": ["fish", "--no-execute"]}[shell]
    if shutil.which(checker[0]) is None:
        assert shell != "bash", "bash is needed to check the bash script"
        pytest.skip(f"{shell} is not installed")
    path = tmp_path / f"ftbench.{shell}"
    path.write_text(text)
    result = subprocess.run([*checker, str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_completed_argument_exists():
    from ftbench.cli import build_parser

    parser = build_parser()
    for command, dest in COMPLETES:
        assert find_action(parser, command, dest).dest == dest
    with pytest.raises(KeyError):
        find_action(parser, "logs", "no_such_argument")


def test_cli_prints_script_and_needs_a_shell(capsys):
    assert main(["completion", "bash"]) == 0
    assert "complete -o bashdefault -F _shtab_ftbench ftbench" in capsys.readouterr().out
    assert main(["completion"]) == 2
    assert "needs a shell" in capsys.readouterr().err


def test_model_candidates_list_model_folders_gguf_and_runs(workspace):
    model_folder(workspace.root / "models" / "tiny-llama")
    model_folder(workspace.root / "models" / "org" / "small")
    (workspace.root / "models" / "q4.gguf").write_bytes(b"GGUF")
    (workspace.root / "models" / "notes").mkdir()
    run = make_run(workspace, "20261130-010000-sft-a-1111", 100.0)
    assert complete_values(workspace, "model", "") == ["org/small", "q4.gguf", "tiny-llama", "last", "last~1", run.name]
    assert complete_values(workspace, "model", "t") == ["tiny-llama"]
    assert complete_values(workspace, "job", "t") == []


def bash_complete(script_path: Path, env: dict[str, str], words: list[str]) -> list[str]:
    cmd = (
        f"source {script_path}; COMP_WORDS=({' '.join(words)}); COMP_CWORD={len(words) - 1}; "
        f'COMP_LINE="{" ".join(words)}"; COMP_POINT=${{#COMP_LINE}}; _shtab_ftbench; printf "%s\\n" "${{COMPREPLY[@]}}"'
    )
    result = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line]


def test_bash_completes_ids_checkpoints_models_and_recipes(workspace, tmp_path):
    old = make_run(workspace, "20261129-230000-sft-old-1111", 100.0)
    new = make_run(workspace, "20261130-010000-dpo-new-2222", 200.0, checkpoints=(4, 8))
    model_folder(workspace.root / "models" / "tiny-llama")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    launcher = bin_dir / "ftbench"
    launcher.write_text(f'#!/bin/sh\nexec {sys.executable} -m ftbench.cli "$@"\n')
    launcher.chmod(0o755)
    repo = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FTBENCH_HOME": str(workspace.root),
        "PYTHONPATH": str(repo),
    }
    script_path = tmp_path / "ftbench.bash"
    script_path.write_text(script("bash"))
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "sft.yaml").write_text("a: 1\n")
    (recipes / "notes.txt").write_text("x\n")

    assert sorted(bash_complete(script_path, env, ["ftbench", "lo"])) == ["logs"]
    assert bash_complete(script_path, env, ["ftbench", "logs", "2026113"]) == [new.name]
    assert bash_complete(script_path, env, ["ftbench", "show", "2026"]) == [old.name, new.name]
    assert bash_complete(script_path, env, ["ftbench", "resume", "la"]) == ["last", "last~1"]
    assert bash_complete(script_path, env, ["ftbench", "predict", "last@checkpoint-"]) == [
        "last@checkpoint-4",
        "last@checkpoint-8",
    ]
    assert bash_complete(script_path, env, ["ftbench", "chat", "tin"]) == ["tiny-llama"]
    assert bash_complete(script_path, env, ["ftbench", "train", f"{recipes}/"]) == [f"{recipes}/sft.yaml"]
