"""An Ollama Modelfile next to the GGUF: FROM, a TEMPLATE matching the chat template, stop tokens, parameters.

Ollama templates are Go templates, not Jinja, so the known chat formats are recognised by their marker
tokens and written in Ollama's form; an unknown format gets no TEMPLATE (Ollama then falls back to the
template embedded in the GGUF) and a comment saying so.
"""

from __future__ import annotations

from pathlib import Path

from ftbench.core.atomic import atomic_write_text

# Current Ollama passes the system prompt twice: as `.System` and as a "system" entry in `.Messages`. These
# templates read only `.Messages`, so it appears once. Gemma has no system role: its system text becomes a
# user turn, as in Ollama's own Gemma template.
TEMPLATES = {
    "chatml": (
        "<|im_start|>",
        ["<|im_end|>"],
        "{{ range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n",
    ),
    "llama3": (
        "<|start_header_id|>",
        ["<|eot_id|>"],
        "{{ range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>{{ end }}"
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    ),
    "gemma": (
        "<start_of_turn>",
        ["<end_of_turn>"],
        '{{ range .Messages }}<start_of_turn>{{ if eq .Role "assistant" }}model{{ else }}user{{ end }}\n'
        "{{ .Content }}<end_of_turn>\n{{ end }}<start_of_turn>model\n",
    ),
    "phi3": (
        "<|assistant|>",
        ["<|end|>"],
        "{{ range .Messages }}<|{{ .Role }}|>\n{{ .Content }}<|end|>\n{{ end }}<|assistant|>\n",
    ),
}


def chat_format(chat_template: str | None) -> str | None:
    if not chat_template:
        return None
    for name, (marker, _, _) in TEMPLATES.items():
        if marker in chat_template:
            return name
    return None


def quoted(value: str) -> str:
    """A Modelfile string: quotes and backslashes escaped and newlines spelled out, so a token from the tokenizer
    config (user-provided text) can end neither the string nor the line and add instructions of its own."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def modelfile_text(
    gguf_name: str,
    chat_template: str | None,
    eos_token: str | None,
    n_ctx: int | None = None,
    adapter_name: str | None = None,
) -> str:
    """The Modelfile for a GGUF in the same folder (relative FROM, so the folder can be moved)."""
    fmt = chat_format(chat_template)
    lines = [f"FROM ./{gguf_name}"]
    if adapter_name:
        lines.append(f"ADAPTER ./{adapter_name}")
    stops: list[str] = []
    if fmt:
        _, fmt_stops, template = TEMPLATES[fmt]
        lines.append(f'TEMPLATE """{template}"""')
        stops.extend(fmt_stops)
    else:
        lines.append(
            "# No TEMPLATE: the chat format is not one ftbench knows, so Ollama uses the template in the GGUF."
        )
    if eos_token and eos_token not in stops:
        stops.append(eos_token)
    for stop in stops:
        lines.append(f"PARAMETER stop {quoted(stop)}")
    lines.append("PARAMETER temperature 0.7")
    if n_ctx:  # the model's own context length: Ollama's default (2048-4096) would cut long prompts
        lines.append(f"PARAMETER num_ctx {int(n_ctx)}")
    return "\n".join(lines) + "\n"


def write_modelfile(
    folder: Path,
    gguf_name: str,
    chat_template: str | None,
    eos_token: str | None,
    n_ctx: int | None = None,
    adapter_name: str | None = None,
) -> Path:
    path = folder / "Modelfile"
    atomic_write_text(path, modelfile_text(gguf_name, chat_template, eos_token, n_ctx, adapter_name))
    return path
