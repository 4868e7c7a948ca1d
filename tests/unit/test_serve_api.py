"""Request validation, response shapes and the key check of the OpenAI-compatible server (no models, no HTTP)."""

from __future__ import annotations

import pytest

from ftbench.core.errors import FtbenchError
from ftbench.serve.connect import base_url, curl_example, serve_card, ssh_tunnel_line
from ftbench.serve.openai_api import ApiError, Limits, chunk_body, completion_body, parse_request
from ftbench.serve.safety import check_bind, is_loopback, key_matches

MODELS = ["base", "sft-a"]
LIMITS = Limits(max_tokens=100, max_body_bytes=1000)
CHAT = {"model": "sft-a", "messages": [{"role": "user", "content": "hi"}]}


def test_chat_request_becomes_settings_stops_and_messages() -> None:
    req = parse_request(
        {
            **CHAT,
            "max_tokens": 7,
            "temperature": 0,
            "top_p": 0.5,
            "seed": 3,
            "stop": "END",
            "stream": True,
            "stream_options": {"include_usage": True},
        },
        MODELS,
        LIMITS,
        chat=True,
    )
    assert (req.model, req.stream, req.include_usage, req.stops) == ("sft-a", True, True, ("END",))
    s = req.settings
    assert (s.max_new_tokens, s.greedy, s.top_p, s.seed, s.top_k, s.system) == (7, True, 0.5, 3, 0, "")
    assert req.messages == [{"role": "user", "content": "hi"}] and req.prompt is None


def test_defaults_content_parts_and_developer_role() -> None:
    req = parse_request(
        {
            "model": "base",
            "messages": [
                {"role": "developer", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            ],
        },
        MODELS,
        LIMITS,
        chat=True,
    )
    assert req.messages == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "ab"}]
    assert req.settings.max_new_tokens == 100 and req.settings.temperature == 1.0 and not req.stream
    assert parse_request({**CHAT, "max_completion_tokens": 5}, MODELS, LIMITS, chat=True).settings.max_new_tokens == 5
    done = parse_request({"model": "base", "prompt": ["once"]}, MODELS, LIMITS, chat=False)
    assert done.prompt == "once" and done.messages is None


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ([], 400, None),
        ({"messages": CHAT["messages"]}, 400, "model"),
        ({**CHAT, "model": "gpt-4"}, 404, "model"),
        ({**CHAT, "max_tokens": 101}, 400, "max_tokens"),
        ({**CHAT, "max_tokens": 0}, 400, "max_tokens"),
        ({**CHAT, "max_tokens": True}, 400, "max_tokens"),
        ({**CHAT, "temperature": 2.5}, 400, "temperature"),
        ({**CHAT, "top_p": "1"}, 400, "top_p"),
        ({**CHAT, "n": 3}, 400, "n"),
        ({**CHAT, "stop": ["a", "b", "c", "d", "e"]}, 400, "stop"),
        ({**CHAT, "stream": "yes"}, 400, "stream"),
        ({**CHAT, "messages": []}, 400, "messages"),
        ({**CHAT, "messages": ["hi"]}, 400, "messages[0]"),
        ({**CHAT, "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, 400, "messages[0].content"),
    ],
)
def test_bad_requests_name_the_field(body, status, param) -> None:
    with pytest.raises(ApiError) as info:
        parse_request(body, MODELS, LIMITS, chat=True)
    err = info.value
    assert err.status == status and err.param == param
    assert set(err.body()["error"]) == {"message", "type", "param", "code"} and err.message.endswith(".")
    if status == 404:
        assert err.code == "model_not_found" and "base, sft-a" in err.message


def test_response_shapes() -> None:
    req = parse_request(CHAT, MODELS, LIMITS, chat=True)
    result = {"text": "yo", "tokens": 2, "prompt_tokens": 9, "stop_reason": "length"}
    body = completion_body(req, "chatcmpl-1", 5, result)
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "yo"}
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"] == {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}
    assert chunk_body(req, "c", 5, role=True)["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunk_body(req, "c", 5, piece="x")["choices"][0]["delta"] == {"content": "x"}
    usage = chunk_body(req, "c", 5, usage_of=result)
    assert usage["choices"] == [] and usage["usage"]["total_tokens"] == 11
    text = parse_request({"model": "base", "prompt": "p"}, MODELS, LIMITS, chat=False)
    assert completion_body(text, "cmpl-1", 5, {**result, "stop_reason": "cancelled"})["choices"][0]["text"] == "yo"


def test_loopback_and_bind_policy() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.3.2.1", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.5", "example.com"))
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", "k")
    with pytest.raises(FtbenchError) as info:
        check_bind("0.0.0.0", None)
    assert info.value.message.startswith("Refusing to serve on 0.0.0.0 without an API key")


def test_key_check_is_bearer_and_exact() -> None:
    assert key_matches("s3cret", "Bearer s3cret") and key_matches("s3cret", "bearer s3cret")
    assert not any(
        key_matches("s3cret", h) for h in (None, "", "Bearer s3cre", "Bearer s3cret2", "Basic s3cret", "s3cret")
    )


def test_connection_card() -> None:
    assert base_url("127.0.0.1", 8001) == "http://127.0.0.1:8001/v1" and base_url("::1", 9) == "http://[::1]:9/v1"
    assert ssh_tunnel_line(8001, "gpu-box", "ana") == "ssh -N -L 8001:127.0.0.1:8001 ana@gpu-box"
    curl = curl_example("http://127.0.0.1:8001/v1", "sft-a", needs_key=True)
    assert curl.startswith("curl http://127.0.0.1:8001/v1/chat/completions") and "$FTBENCH_API_KEY" in curl
    assert '"model": "sft-a"' in curl and "Bearer" not in curl_example("http://x/v1", "base", needs_key=False)
    card = serve_card(
        {
            "url": "http://127.0.0.1:8001/v1",
            "port": 8001,
            "variants": ["base", "sft-a"],
            "auth": False,
            "loopback": True,
        },
        "gpu-box",
    )
    assert card[0].endswith("http://127.0.0.1:8001/v1") and card[1].endswith("base, sft-a")
    assert "ssh -N -L 8001:127.0.0.1:8001" in card[2] and card[3].split(None, 1)[1].startswith("curl ")


def test_what_each_screen_serves(tmp_path) -> None:
    """Run monitor: the run's adapter on its recorded base; Models: an adapter on its base; chat: its columns."""
    import json

    from ftbench.chat.protocol import VariantSpec
    from ftbench.serve.launch import options_for_model, options_for_run, options_for_variants

    run = tmp_path / "run"
    (run / "adapter").mkdir(parents=True)
    (run / "adapter" / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "/m/base"}))
    opts = options_for_run(run)
    assert (opts.model, opts.adapters, opts.host, opts.port) == ("/m/base", [str(run)], "127.0.0.1", 0)
    (run / "model").mkdir()
    (run / "model" / "config.json").write_text("{}")
    assert options_for_run(run).model == str(run / "model") and options_for_run(run).adapters == []
    with pytest.raises(FtbenchError):
        options_for_run(tmp_path / "nothing")
    assert options_for_model(tmp_path / "a", "adapter", "base-x").adapters == [str(tmp_path / "a")]
    assert options_for_model(tmp_path / "m.gguf", "gguf", None).model == str(tmp_path / "m.gguf")
    columns = [
        VariantSpec("base", "hf", path="/m/base"),
        VariantSpec("a", "adapter", path="/a", base="/m/base"),
        VariantSpec("q4", "gguf", path="/x.gguf"),
        VariantSpec("q4-lora", "gguf", path="/x.gguf", lora="/l.gguf"),
    ]
    opts = options_for_variants(columns)
    assert (opts.model, opts.adapters, opts.ggufs) == ("/m/base", ["/a"], ["/x.gguf"])
    with pytest.raises(FtbenchError):
        options_for_variants([])
