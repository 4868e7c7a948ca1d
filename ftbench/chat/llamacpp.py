"""llama.cpp backend (llama-cpp-python) for GGUF columns: an exported model, optionally with a LoRA GGUF.

The chat template comes from the GGUF's `tokenizer.chat_template` (llama-cpp-python builds a Jinja formatter
from it and stops on the model's EOS). llama.cpp reports why a file cannot be loaded only on stderr, so
loading captures the C-level stderr and puts the reason into the error. Imported only in the chat server.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ftbench.chat.base import StopCheck, StreamStats, TokenCallback, with_system
from ftbench.chat.protocol import GenSettings, VariantSpec
from ftbench.core.errors import FtbenchError

GGUF_MAGIC = b"GGUF"
LLAMA_CPP_FALLBACK = "llama-2"  # what llama-cpp-python uses when a GGUF carries no chat template


@contextmanager
def captured_stderr(sink: list[str]):
    """Collect what llama.cpp logs while loading into `sink`: its Python log callback writes to sys.stderr,
    C code writes to file descriptor 2, so both are redirected for the duration."""
    sys.stderr.flush()
    saved_fd = os.dup(2)
    saved_stream = sys.stderr
    text = io.StringIO()
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        sys.stderr = text
        try:
            yield
        finally:
            sys.stderr = saved_stream
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
            tmp.seek(0)
            sink.extend(tmp.read().decode("utf-8", "replace").splitlines())
            sink.extend(text.getvalue().splitlines())


def load_reason(lines: list[str]) -> str:
    """The most telling line of llama.cpp's load log: the last one that says error or failed."""
    hits = [ln.strip() for ln in lines if any(w in ln.lower() for w in ("error", "failed", "invalid", "unknown"))]
    return hits[-1] if hits else (lines[-1].strip() if lines else "no reason given")


def check_gguf(path: Path, what: str) -> None:
    if not path.is_file():
        raise FtbenchError(f"The {what} {path} does not exist.", "Pass the path of a .gguf file.")
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic != GGUF_MAGIC:
        raise FtbenchError(
            f"{path} is not a GGUF file (starts with {magic!r}, not b'GGUF'), so llama.cpp cannot load it.",
            "Export it with `ftbench export`, or pass an HF model folder instead.",
        )


class LlamaCppBackend:
    """Variants backed by llama.cpp; one Llama per column (a LoRA GGUF is applied when the column is loaded)."""

    def __init__(self, n_ctx: int = 2048, n_gpu_layers: int | None = None) -> None:
        self.n_ctx = n_ctx
        self.n_gpu_layers = n_gpu_layers
        self.models: dict[str, Any] = {}

    def load(self, spec: VariantSpec) -> dict[str, Any]:
        from llama_cpp import Llama

        t0 = time.perf_counter()
        path = Path(spec.path).expanduser().resolve()
        check_gguf(path, "GGUF model")
        lora = Path(spec.lora).expanduser().resolve() if spec.lora else None
        if lora is not None:
            check_gguf(lora, "LoRA adapter GGUF")
        gpu_layers = spec.options.get("n_gpu_layers", self.n_gpu_layers)
        log: list[str] = []
        try:
            with captured_stderr(log):
                llm = Llama(
                    model_path=str(path),
                    lora_path=str(lora) if lora else None,
                    n_ctx=int(spec.options.get("n_ctx", self.n_ctx)),
                    n_gpu_layers=-1 if gpu_layers is None else int(gpu_layers),
                    seed=0,
                    verbose=True,  # needed for llama.cpp to log the reason of a failed load
                )
        except (ValueError, RuntimeError) as exc:
            from llama_cpp._logger import set_verbose

            set_verbose(False)
            what = f"{path} with LoRA {lora}" if lora else str(path)
            raise FtbenchError(
                f"llama.cpp cannot load {what}: {load_reason(log)}.", f"llama-cpp-python said: {exc}"
            ) from exc
        from llama_cpp._logger import set_verbose

        llm.verbose = False
        set_verbose(False)  # from now on llama.cpp logs only errors
        warnings = []
        if not llm.metadata.get("tokenizer.chat_template"):
            warnings.append(
                f"{path.name} has no chat template in its metadata; using llama.cpp's '{llm.chat_format or LLAMA_CPP_FALLBACK}' fallback."
            )
        self.models[spec.name] = llm
        return {
            "load_s": round(time.perf_counter() - t0, 4),
            "warnings": warnings,
            "template": "gguf" if not warnings else (llm.chat_format or LLAMA_CPP_FALLBACK),
            "architecture": llm.metadata.get("general.architecture"),
            "lora": str(lora) if lora else None,
        }

    def unload(self, name: str) -> None:
        llm = self.models.pop(name)
        close = getattr(llm, "close", None)
        if close is not None:
            close()

    def generate(
        self,
        name: str,
        messages: list[dict[str, str]],
        settings: GenSettings,
        on_token: TokenCallback,
        should_stop: StopCheck,
        stops: tuple[str, ...] = (),
        prompt: str | None = None,
    ) -> dict[str, Any]:
        """`stops` are extra stop strings; `prompt` is raw text to continue instead of the templated `messages`."""
        if name not in self.models:
            raise FtbenchError(f"No loaded column named '{name}'.", "Load it first.")
        llm = self.models[name]
        stats = StreamStats()
        sampling = dict(
            stream=True,
            temperature=settings.temperature,
            top_p=settings.top_p,
            top_k=settings.top_k if not settings.greedy else 1,
            max_tokens=settings.max_new_tokens,
            repeat_penalty=settings.repetition_penalty,
            seed=settings.seed,
            stop=[s for s in stops if s] or None,
        )
        if prompt is not None:
            stream = llm.create_completion(prompt=prompt, **sampling)
        else:
            messages = with_system(messages, settings.system)
            stream = llm.create_chat_completion(messages=messages, **sampling)
        reason = "length"
        try:
            for chunk in stream:
                if should_stop():
                    reason = "cancelled"
                    break
                choice = chunk["choices"][0]
                piece = choice.get("text") if prompt is not None else choice.get("delta", {}).get("content")
                if piece:
                    stats.token(piece)
                    on_token(piece)
                if choice.get("finish_reason"):
                    reason = "stop" if choice["finish_reason"] == "stop" else "length"
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        return {
            **stats.result(reason),
            "prompt_tokens": prompt_token_count(llm, messages if prompt is None else None, prompt),
        }


def prompt_token_count(llm: Any, messages: list[dict[str, str]] | None, prompt: str | None) -> int:
    """How many tokens the prompt took, as llama-cpp-python builds it: the GGUF's chat template rendered like
    its Jinja2 chat handler does, or the raw prompt with BOS (streaming responses carry no usage counts)."""
    template = llm.metadata.get("tokenizer.chat_template")
    if prompt is None and template:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        vocab = llm._model
        formatted = Jinja2ChatFormatter(
            template=template,
            eos_token=vocab.token_get_text(llm.token_eos()),
            bos_token=vocab.token_get_text(llm.token_bos()),
        )(messages=messages)
        return len(llm.tokenize(formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True))
    if prompt is None:  # no template: llama-cpp-python's fallback format; the contents are most of it
        prompt = "\n".join(m.get("content", "") for m in messages or [])
    return len(llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True))
