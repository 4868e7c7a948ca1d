"""Generation and teacher-forced reference NLL for GGUF variants through llama.cpp (inside the eval job).

The prompt is rendered with the GGUF's own `tokenizer.chat_template` (the CLI refuses a GGUF without one before
the job starts, unless the template is off), so a quantized model is scored on exactly the text its users send.
Reference NLL reads llama.cpp's logits for every position (`logits_all`), the same numbers export verification
compares against the HF model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ftbench.chat.base import cut_at_stop
from ftbench.chat.llamacpp import captured_stderr, check_gguf, load_reason
from ftbench.chat.protocol import VariantSpec
from ftbench.core.errors import FtbenchError
from ftbench.evaluate.hf_runner import GenConfig, plain_prompt


class GGUFRunner:
    """One GGUF variant (with its optional LoRA GGUF) in memory."""

    def __init__(self, spec: VariantSpec, config: GenConfig, n_ctx: int = 2048) -> None:
        from llama_cpp import Llama

        self.config = config
        path = Path(spec.path)
        check_gguf(path, "GGUF model")
        log: list[str] = []
        try:
            with captured_stderr(log):
                self.llm = Llama(
                    model_path=str(path),
                    lora_path=spec.lora or None,
                    n_ctx=n_ctx,
                    n_gpu_layers=-1,
                    logits_all=True,
                    seed=config.seed,
                    verbose=False,
                )
        except (ValueError, RuntimeError) as exc:
            raise FtbenchError(
                f"llama.cpp cannot load {path}: {load_reason(log)}.", f"llama-cpp-python said: {exc}"
            ) from exc
        self.formatter = None
        if config.chat_template:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            meta = self.llm.metadata
            vocab = self.llm.tokenizer_
            bos = vocab.decode([self.llm.token_bos()]) if self.llm.token_bos() >= 0 else ""
            eos = vocab.decode([self.llm.token_eos()]) if self.llm.token_eos() >= 0 else ""
            self.formatter = Jinja2ChatFormatter(meta["tokenizer.chat_template"], eos_token=eos, bos_token=bos)

    def close(self) -> None:
        close = getattr(self.llm, "close", None)
        if close is not None:
            close()

    def prompt_tokens(self, messages: Sequence[dict[str, str]]) -> list[int]:
        if self.formatter is None:
            return self.llm.tokenize(plain_prompt(messages).encode("utf-8"), add_bos=True, special=False)
        text = self.formatter(messages=list(messages)).prompt
        # The template writes the BOS text itself when it wants one; parse it as a special token, add no other.
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def generate(self, messages: Sequence[dict[str, str]]) -> dict[str, Any]:
        tokens = self.prompt_tokens(messages)
        self.llm.reset()
        out = self.llm.create_completion(
            tokens,
            max_tokens=self.config.max_new_tokens,
            temperature=self.config.temperature,
            top_k=1 if self.config.temperature == 0 else 0,
            top_p=self.config.top_p,
            seed=self.config.seed,
            stop=list(self.config.stop) or None,
        )
        choice = out["choices"][0]
        text, hit = cut_at_stop(choice["text"], self.config.stop) if self.config.stop else (choice["text"], False)
        finish = "stop" if hit or choice.get("finish_reason") == "stop" else "length"
        return {"prediction": text.strip(), "gen_tokens": int(out["usage"]["completion_tokens"]), "finish": finish}

    def reference_nll(self, messages: Sequence[dict[str, str]], reference: str) -> tuple[float, int]:
        prompt = self.prompt_tokens(messages)
        ref = self.llm.tokenize(reference.encode("utf-8"), add_bos=False, special=False)
        if not ref:
            return 0.0, 0
        self.llm.reset()
        self.llm.eval(prompt + ref)
        logits = np.asarray(self.llm.scores[len(prompt) - 1 : len(prompt) + len(ref) - 1], dtype=np.float64)
        peak = logits.max(axis=-1, keepdims=True)
        log_z = np.log(np.exp(logits - peak).sum(axis=-1)) + peak[:, 0]
        picked = logits[np.arange(len(ref)), ref]
        return float((log_z - picked).sum()), len(ref)
