"""The Modelfile's TEMPLATE rendered the way Ollama renders it: a Go template over `.System` and `.Messages`.

Current Ollama fills both: the system prompt is `.System` AND the first entry of `.Messages`. A tiny renderer
for the Go template subset the Modelfiles use (fields, range, if/else, eq, `{{-` trimming) shows what the
model would really be fed, and that is compared with the model's own (Jinja) chat template.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from ftbench.export.ollama import TEMPLATES, modelfile_text

ACTION = re.compile(r"{{(-?)\s*(.*?)\s*(-?)}}", re.S)
CONVERSATION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Hi there"},
    {"role": "assistant", "content": "Hello."},
    {"role": "user", "content": "What is 2+2?"},
]


def tokenize(template: str) -> list[tuple[str, str]]:
    """('text', s) and ('action', body) tokens, with Go's `{{-`/`-}}` whitespace trimming applied."""
    tokens: list[tuple[str, str]] = []
    pos, trim_next = 0, False
    for m in ACTION.finditer(template):
        text = template[pos : m.start()]
        if trim_next:
            text = text.lstrip()
        if m.group(1):
            text = text.rstrip()
        tokens.append(("text", text))
        tokens.append(("action", m.group(2)))
        pos, trim_next = m.end(), bool(m.group(3))
    tail = template[pos:]
    tokens.append(("text", tail.lstrip() if trim_next else tail))
    return tokens


def parse(tokens: list[tuple[str, str]], i: int = 0, stop: tuple[str, ...] = ()) -> tuple[list[Any], int, str]:
    """A tree of nodes: ('text', s), ('field', path), ('range', path, body), ('if', [(cond, body)...], else_body)."""
    nodes: list[Any] = []
    while i < len(tokens):
        kind, value = tokens[i]
        i += 1
        if kind == "text":
            if value:
                nodes.append(("text", value))
            continue
        word = value.split(" ", 1)[0]
        if word in stop or value.startswith("else"):
            return nodes, i, value
        if word == "range":
            body, i, _ = parse(tokens, i, ("end",))
            nodes.append(("range", value.split(" ", 1)[1], body))
        elif word == "if":
            branches, cond, else_body = [], value.split(" ", 1)[1], []
            while True:
                body, i, ended = parse(tokens, i, ("end",))
                branches.append((cond, body))
                if ended.startswith("else if "):
                    cond = ended[len("else if ") :]
                    continue
                if ended == "else":
                    else_body, i, _ = parse(tokens, i, ("end",))
                break
            nodes.append(("if", branches, else_body))
        else:
            nodes.append(("field", value))
    return nodes, i, ""


def lookup(expr: str, dot: dict[str, Any], root: dict[str, Any]) -> Any:
    expr = expr.strip()
    if expr.startswith('"'):
        return expr.strip('"')
    scope = root if expr.startswith("$.") else dot
    return scope.get(expr.lstrip("$").lstrip("."), "")


def truth(cond: str, dot: dict[str, Any], root: dict[str, Any]) -> bool:
    parts = re.findall(r'"[^"]*"|\S+', cond)
    if parts[0] == "eq":
        return lookup(parts[1], dot, root) == lookup(parts[2], dot, root)
    if parts[0] == "not":
        return not truth(" ".join(parts[1:]), dot, root)
    return bool(lookup(parts[0], dot, root))


def execute(nodes: list[Any], dot: dict[str, Any], root: dict[str, Any]) -> str:
    out = []
    for node in nodes:
        if node[0] == "text":
            out.append(node[1])
        elif node[0] == "field":
            out.append(str(lookup(node[1], dot, root)))
        elif node[0] == "range":
            for item in lookup(node[1], dot, root):
                out.append(execute(node[2], item, root))
        else:
            body = next((b for cond, b in node[1] if truth(cond, dot, root)), node[2])
            out.append(execute(body, dot, root))
    return "".join(out)


def render_like_ollama(template: str, messages: list[dict[str, str]]) -> str:
    """Ollama's data for a chat: `.System` is the system prompt, and `.Messages` still holds it too."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    data = {
        "System": system,
        "Prompt": "",
        "Messages": [{"Role": m["role"], "Content": m["content"]} for m in messages],
    }
    nodes, _, _ = parse(tokenize(template))
    return execute(nodes, data, data)


def template_of(modelfile: str) -> str:
    m = re.search(r'TEMPLATE """(.*?)"""', modelfile, re.S)
    assert m, modelfile
    return m.group(1)


def test_renderer_reproduces_the_double_system_prompt_of_the_old_template() -> None:
    """The renderer is faithful enough to show the bug this file guards against."""
    old = (
        "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
        "{{ range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n"
    )
    assert render_like_ollama(old, CONVERSATION).count("You are terse.") == 2
    trimmed = render_like_ollama("a  {{- if .System }} b {{- end }}  c", CONVERSATION)
    assert trimmed == "a b  c"


def test_chatml_modelfile_renders_exactly_like_the_models_chat_template() -> None:
    jinja2 = pytest.importorskip("jinja2")
    from tinymodels import CHATML

    modelfile = modelfile_text("m.gguf", CHATML, "<|im_end|>", n_ctx=8192)
    rendered = render_like_ollama(template_of(modelfile), CONVERSATION)
    expected = jinja2.Template(CHATML).render(messages=CONVERSATION, add_generation_prompt=True)
    assert rendered == expected
    assert rendered.count("You are terse.") == 1


@pytest.mark.parametrize("fmt", sorted(TEMPLATES))
def test_every_format_shows_the_system_prompt_once_and_ends_ready_for_the_reply(fmt: str) -> None:
    marker = TEMPLATES[fmt][0]
    rendered = render_like_ollama(template_of(modelfile_text("m.gguf", marker, None)), CONVERSATION)
    assert rendered.count("You are terse.") == 1
    assert (
        rendered.index("You are terse.")
        < rendered.index("Hi there")
        < rendered.index("Hello.")
        < rendered.index("What is 2+2?")
    )
    assert rendered.rstrip().endswith(("assistant", "assistant<|end_header_id|>", "model", "<|assistant|>"))


def test_gemma_has_no_system_turn_and_uses_model_for_the_assistant() -> None:
    rendered = render_like_ollama(template_of(modelfile_text("g.gguf", "<start_of_turn>user", "<eos>")), CONVERSATION)
    assert "<start_of_turn>system" not in rendered
    assert rendered == (
        "<start_of_turn>user\nYou are terse.<end_of_turn>\n<start_of_turn>user\nHi there<end_of_turn>\n"
        "<start_of_turn>model\nHello.<end_of_turn>\n<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n"
        "<start_of_turn>model\n"
    )


def test_num_ctx_follows_the_models_context_length() -> None:
    assert "PARAMETER num_ctx 32768" in modelfile_text("m.gguf", "<|im_start|>", None, n_ctx=32768)
    assert "PARAMETER num_ctx 2048" in modelfile_text("m.gguf", "<|im_start|>", None, n_ctx=2048)
    assert "num_ctx" not in modelfile_text("m.gguf", "<|im_start|>", None)
