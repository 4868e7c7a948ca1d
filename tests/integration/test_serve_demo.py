"""The issue's "done when": `ftbench serve` of the demo model with two adapters answers through the official
`openai` client by variant name (the demo's real SmolLM2-135M-Instruct, adapters made here on it)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
openai = pytest.importorskip("openai")

from ftbench.cli import main  # noqa: E402
from ftbench.core.job_stop import stop_job  # noqa: E402
from ftbench.core.jobs import find_job  # noqa: E402

QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


@pytest.mark.slow
def test_demo_model_and_two_adapters_answer_by_name(demo_workspace, workspace, tmp_path: Path) -> None:
    from test_chat_hf import make_adapter

    from ftbench.demo.models import SMOLLM2_DIR

    model = demo_workspace.models_dir / SMOLLM2_DIR
    adapters = [
        make_adapter(model, tmp_path / name, seed, r=8) for seed, name in enumerate(("support-a", "support-b"), 1)
    ]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(
            [
                "serve",
                str(model),
                *(x for a in adapters for x in ("--adapter", str(a))),
                "--json",
                "-w",
                str(workspace.root),
            ]
        )
    assert code == 0, err.getvalue()
    info = json.loads(out.getvalue())
    try:
        client = openai.OpenAI(base_url=info["url"], api_key="unused", max_retries=0, timeout=300)
        assert [m.id for m in client.models.list().data] == ["base", "support-a", "support-b"]
        answers = {}
        for name in ("base", "support-a", "support-b"):
            reply = client.chat.completions.create(model=name, messages=QUESTION, temperature=0, max_tokens=8)
            answers[name] = reply.choices[0].message.content
            assert reply.usage.prompt_tokens > 10 and 0 < reply.usage.completion_tokens <= 8
        assert "paris" in answers["base"].lower()  # the real instruct model, through its chat template
        assert len(set(answers.values())) == 3, answers  # each name reaches its own weights
    finally:
        stop_job(find_job(workspace, info["id"]), grace_s=20)
