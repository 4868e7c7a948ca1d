"""The chat server protocol, the server loop with the scripted backend, the client over a real subprocess,
transcripts and prompt-set helpers. No torch anywhere here."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time

import pytest

from ftbench.chat.client import ChatClient
from ftbench.chat.protocol import GenSettings, ProtocolError, VariantSpec, decode, encode, validate_request
from ftbench.chat.server import ChatServer
from ftbench.chat.transcripts import Transcript, list_transcripts, load_transcript
from ftbench.core.errors import FtbenchError


def test_encode_decode_round_trip_keeps_unicode_and_newlines() -> None:
    msg = {"type": "token", "id": 3, "text": '안녕\n🙂 "q"'}
    line = encode(msg)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert decode(line) == msg


@pytest.mark.parametrize(
    "line, needle",
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "JSON list, not an object"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_decode_rejects_bad_lines(line: bytes, needle: str) -> None:
    with pytest.raises(ProtocolError) as err:
        decode(line)
    assert needle in err.value.message


@pytest.mark.parametrize(
    "req, needle",
    [
        ({"op": "fly", "id": 1}, "Unknown op 'fly'"),
        ({"op": "ping"}, "no integer id"),
        ({"op": "ping", "id": True}, "no integer id"),
        ({"op": "load", "id": 1}, "needs a 'variant' object"),
        ({"op": "generate", "id": 1, "variant": "a", "messages": []}, "non-empty list"),
        ({"op": "generate", "id": 1, "variant": "a", "messages": [{"role": "bot", "content": "x"}]}, "messages[0]"),
    ],
)
def test_validate_request_names_the_problem(req: dict, needle: str) -> None:
    with pytest.raises(ProtocolError) as err:
        validate_request(req)
    assert needle in err.value.message


def test_gen_settings_coerce_strings_and_reject_bad_values() -> None:
    s = GenSettings.from_dict({"temperature": "0", "top_k": "7", "system": "be brief"})
    assert s.greedy and s.top_k == 7 and s.system == "be brief"
    assert s.merged({"seed": "5"}).seed == 5 and s.seed == 0
    with pytest.raises(FtbenchError, match="top_p=1.5 is out of range"):
        GenSettings(top_p=1.5)
    with pytest.raises(FtbenchError, match="Unknown generation setting 'temp'"):
        GenSettings.from_dict({"temp": 1})
    with pytest.raises(FtbenchError, match="max_new_tokens='many' is not a valid int"):
        GenSettings.from_dict({"max_new_tokens": "many"})


def test_variant_spec_checks() -> None:
    with pytest.raises(FtbenchError, match="kind 'onnx'"):
        VariantSpec(name="x", kind="onnx", path="/m")
    with pytest.raises(FtbenchError, match="names no base model"):
        VariantSpec(name="x", kind="adapter", path="/a")
    with pytest.raises(ProtocolError, match="unknown key 'colour'"):
        VariantSpec.from_dict({"name": "x", "kind": "scripted", "colour": "red"})
    spec = VariantSpec(name="a", kind="adapter", path="/a", base="/b")
    assert VariantSpec.from_dict(spec.to_dict()) == spec


def run_server(lines: list[dict | bytes]) -> list[dict]:
    """Feed request lines to an in-process server (scripted backend) and collect its events."""
    out = io.BytesIO()
    server = ChatServer(out)
    raw = b"".join(line if isinstance(line, bytes) else encode(line) for line in lines)
    server.read_loop(io.BytesIO(raw))
    server.serve()
    return [json.loads(x) for x in out.getvalue().splitlines()]


def test_server_loads_generates_and_survives_bad_requests() -> None:
    events = run_server(
        [
            b"garbage\n",
            {"op": "load", "id": 1, "variant": {"name": "a", "kind": "scripted"}},
            {
                "op": "load",
                "id": 2,
                "variant": {"name": "bad", "kind": "scripted", "options": {"fail_load": "no weights here"}},
            },
            {"op": "generate", "id": 3, "variant": "missing", "messages": [{"role": "user", "content": "x"}]},
            {
                "op": "generate",
                "id": 4,
                "variant": "a",
                "messages": [{"role": "user", "content": "hi there"}],
                "settings": {"max_new_tokens": 3},
            },
            {"op": "list", "id": 5},
            {"op": "unload", "id": 6, "variant": "a"},
            {"op": "list", "id": 7},
        ]
    )
    assert events[0]["type"] == "error" and events[0]["id"] is None and "not JSON" in events[0]["error"]["message"]
    by_id: dict[int, list[dict]] = {}
    for e in events[1:]:
        by_id.setdefault(e["id"], []).append(e)
    assert by_id[1][0]["type"] == "loaded" and by_id[1][0]["variant"] == "a"
    assert by_id[2][0] == {
        "type": "error",
        "id": 2,
        "variant": "bad",
        "error": {"message": "no weights here", "hint": "This scripted column was told to fail."},
    }
    assert by_id[3][0]["type"] == "error" and "No loaded column named 'missing'" in by_id[3][0]["error"]["message"]
    tokens = [e["text"] for e in by_id[4] if e["type"] == "token"]
    done = by_id[4][-1]
    assert tokens == ["[a]", " turn", " 1:"]  # capped at max_new_tokens=3
    assert (
        done["type"] == "done"
        and done["text"] == "".join(tokens)
        and done["tokens"] == 3
        and done["stop_reason"] == "length"
    )
    assert done["ttft_s"] is not None and done["ttft_s"] >= 0
    assert [v["name"] for v in by_id[5][0]["variants"]] == ["a"]
    assert by_id[7][0]["variants"] == []


def test_cancel_marks_queued_generations_cancelled() -> None:
    msgs = [{"role": "user", "content": "one two three"}]
    events = run_server(
        [
            {"op": "load", "id": 1, "variant": {"name": "a", "kind": "scripted"}},
            {"op": "generate", "id": 2, "variant": "a", "messages": msgs},
            {"op": "cancel", "id": 3},
            {"op": "generate", "id": 4, "variant": "a", "messages": msgs},
        ]
    )
    done = {e["id"]: e for e in events if e["type"] == "done"}
    assert done[2]["cancelled"] and done[2]["text"] == "" and done[2]["tokens"] == 0
    assert not done[4]["cancelled"] and done[4]["text"] == "[a] turn 1: you said one two three"


def wait_for(pred, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def test_client_streams_cancels_and_reports_a_crash(tmp_path) -> None:
    events: list[dict] = []
    client = ChatClient(on_event=events.append, log_path=tmp_path / "server.log").start(timeout_s=30)
    try:
        info = client.load(VariantSpec(name="slow", kind="scripted", options={"delay_s": 0.05, "crash_on": "CRASH"}))
        assert info["variant"] == "slow"
        pieces: list[str] = []
        done = client.generate("slow", [{"role": "user", "content": "a b"}], GenSettings(), on_token=pieces.append)
        assert "".join(pieces) == done["text"] == "[slow] turn 1: you said a b"
        assert done["tok_s"] is not None and 5 < done["tok_s"] < 40  # ~20 tok/s at 50 ms per token

        long_prompt = " ".join(["w"] * 200)
        rid = client.send(
            "generate", wait=True, variant="slow", messages=[{"role": "user", "content": long_prompt}], settings={}
        )
        wait_for(lambda: any(e.get("id") == rid and e["type"] == "token" for e in events))
        client.cancel()
        done = client.wait(rid, timeout_s=10)
        assert done["type"] == "done" and done["cancelled"] and done["tokens"] < 50

        with pytest.raises(FtbenchError, match=r"exited \(code 3\)"):
            client.generate("slow", [{"role": "user", "content": "please CRASH now"}], GenSettings(), timeout_s=10)
        wait_for(lambda: any(e["type"] == "exit" for e in events))
        exit_event = next(e for e in events if e["type"] == "exit")
        assert exit_event["returncode"] == 3 and exit_event["expected"] is False
        assert not client.alive
        with pytest.raises(FtbenchError, match="not running"):
            client.call("ping", timeout_s=5)
    finally:
        client.close()


def test_close_ends_the_server_process(tmp_path) -> None:
    client = ChatClient(log_path=tmp_path / "server.log").start(timeout_s=30)
    pid = client.pid
    assert client.call("ping", timeout_s=10)["pid"] == pid
    client.close()
    assert not client.alive and client.proc.returncode == 0


def test_client_side_imports_stay_light() -> None:
    code = (
        "import sys, ftbench.chat.client, ftbench.chat.transcripts, ftbench.chat.variants, ftbench.commands.chat;"
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'llama_cpp') if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ})
    assert result.returncode == 0, result.stdout + result.stderr


def test_transcript_round_trip_and_listing(workspace) -> None:
    t = Transcript.new(
        [VariantSpec(name="base", kind="scripted"), VariantSpec(name="ad", kind="scripted")],
        GenSettings(seed=4),
        title="demo",
    )
    t.overrides["ad"] = {"temperature": 0.0}
    t.add("base", "user", "hi")
    t.add("base", "assistant", "hello", ttft_s=0.1, tok_s=12.5, tokens=3)
    t.add("ad", "user", "hi")
    path = t.save(workspace)
    assert path.parent == workspace.chats_dir and path.name == f"{t.id}.jsonl"
    again = load_transcript(workspace, t.id[:20])
    assert (
        again.settings.seed == 4
        and again.settings_for("ad").temperature == 0.0
        and again.settings_for("base").temperature == 0.7
    )
    assert again.messages("base") == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert again.history["base"][1]["tok_s"] == 12.5
    assert [v.name for v in again.variants] == ["base", "ad"]
    listing = list_transcripts(workspace)
    assert listing[0]["id"] == t.id and listing[0]["turns"] == 1 and listing[0]["columns"] == ["base", "ad"]
    with pytest.raises(FtbenchError, match="matches no chat"):
        load_transcript(workspace, "nope")
    path.write_text(path.read_text() + '{"type": "message", "variant": "base", "role": "robot", "content": "x"}\n')
    with pytest.raises(FtbenchError, match="line 5 is not a chat message"):
        load_transcript(workspace, t.id)


def test_read_prompts_and_markdown(tmp_path) -> None:
    from ftbench.commands.chat import compare_markdown, read_prompts

    f = tmp_path / "p.jsonl"
    f.write_text('{"prompt": "a|b"}\n"plain string"\n\n{"instruction": "Sum", "input": "1 2"}\n')
    prompts = read_prompts(f)
    assert [p["prompt"] for p in prompts] == ["a|b", "plain string", "Sum\n\n1 2"]
    rows = [
        {"index": 1, "prompt": "a|b", "answers": {"x": {"text": "l1\nl2", "tokens": 2, "ttft_s": 0.05, "tok_s": 10.0}}}
    ]
    md = compare_markdown(rows, ["x"], GenSettings(temperature=0))
    assert "| 1 | a\\|b | l1<br>l2<br>*2 tok, first token 50 ms, 10.0 tok/s* |" in md and "greedy" in md
    f.write_text('{"prompt": "ok"}\n{"answer": 1}\n')
    with pytest.raises(FtbenchError, match="line 2 has no 'prompt'"):
        read_prompts(f)
