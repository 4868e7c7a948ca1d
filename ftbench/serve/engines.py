"""The models behind the endpoint: chat's backends, loaded once, each guarded so one request runs on it at a time.

`hf` is chat's HFBackend: one base in memory, every PEFT adapter switched per request. `llamacpp` is chat's
LlamaCppBackend: one Llama per GGUF (a LoRA GGUF is applied on its base). `vllm` hands the base and the
adapters (as LoRA modules) to vLLM on a CUDA machine. Requests wait for their backend in arrival order
(an asyncio lock per backend, held by the app), so a long generation never starves the others.
Imported only inside the serve process.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from ftbench.chat.base import StopCheck, StreamStats, TokenCallback
from ftbench.chat.protocol import GenSettings, VariantSpec
from ftbench.core.errors import FtbenchError

ENGINES = ("auto", "hf", "llamacpp", "vllm")
VLLM_MISSING = (
    "The vllm engine needs the `vllm` package, which is not installed here; on a CUDA machine run "
    "`pip install 'ftbench[vllm]'` (the vllm extra, same as `pip install vllm`), or serve with --engine hf."
)


@dataclass
class Route:
    """Where one variant's requests go: a backend and the group whose lock they share."""

    backend: Any
    group: str
    kind: str
    info: dict[str, Any] = field(default_factory=dict)


class Engine:
    """Variant name -> loaded backend. `generate` blocks, and holds its group's thread lock: the app's asyncio
    locks give the order, this one makes sure a generation cancelled by a vanished client has ended before the
    next one starts on the same weights (neither a PeftModel mid-switch nor a Llama is safe to share)."""

    def __init__(self, device: str | None = None, n_ctx: int = 4096) -> None:
        self.device = device
        self.n_ctx = n_ctx
        self.routes: dict[str, Route] = {}
        self._backends: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {}

    def load(self, specs: list[VariantSpec], engine: str = "auto", log: Any = print) -> None:
        """Load every variant; `engine` must fit the MODEL (the first spec); --gguf extras always use llama.cpp."""
        if engine not in ENGINES:
            raise FtbenchError(f"Unknown engine '{engine}'.", "Use one of: " + ", ".join(ENGINES) + ".")
        main_kind = specs[0].kind
        if engine == "hf" and main_kind == "gguf":
            raise FtbenchError(
                f"The hf engine serves Hugging Face folders, and {specs[0].path} is a GGUF file.",
                "Use --engine llamacpp (or leave --engine out) for a GGUF model.",
            )
        if engine == "llamacpp" and main_kind != "gguf":
            raise FtbenchError(
                f"The llamacpp engine serves GGUF files, and {specs[0].path} is a Hugging Face folder.",
                "Export it with `ftbench export`, pass the .gguf, or use --engine hf.",
            )
        if engine == "vllm":
            self._load_vllm(specs, log)
            return
        for spec in specs:
            family = "llamacpp" if spec.kind == "gguf" else "hf"
            backend = self._backend(family)
            info = backend.load(spec)
            for warning in info.get("warnings", []):
                log(f"warning: {spec.name}: {warning}")
            group = "hf" if family == "hf" else f"gguf:{spec.name}"  # adapters share their base; each Llama is its own
            self.routes[spec.name] = Route(backend, group, spec.kind, info)
            self._locks.setdefault(group, threading.Lock())
            log(f"Loaded {spec.name} ({spec.kind}) in {info.get('load_s', 0):.2f} s")

    def _backend(self, family: str) -> Any:
        if family not in self._backends:
            if family == "hf":
                from ftbench.chat.hf import HFBackend

                self._backends[family] = HFBackend(device=self.device)
            else:
                from ftbench.chat.llamacpp import LlamaCppBackend

                self._backends[family] = LlamaCppBackend(n_ctx=self.n_ctx)
        return self._backends[family]

    def _load_vllm(self, specs: list[VariantSpec], log: Any) -> None:
        backend = VllmBackend(specs)
        for spec in specs:
            self.routes[spec.name] = Route(backend, "vllm", spec.kind, {})
        self._locks.setdefault("vllm", threading.Lock())
        log(f"Loaded {len(specs)} variant(s) in vLLM")

    @property
    def names(self) -> list[str]:
        return list(self.routes)

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
        route = self.routes[name]
        with self._locks[route.group]:
            return route.backend.generate(name, messages, settings, on_token, should_stop, stops=stops, prompt=prompt)


class VllmBackend:
    """vLLM with the base loaded once and each adapter as a LoRA module picked per request (CUDA only).

    vLLM's offline `LLM` generates a whole reply per call, so a streamed reply arrives as one piece.
    """

    def __init__(self, specs: list[VariantSpec]) -> None:
        try:
            from vllm import LLM
            from vllm.lora.request import LoRARequest
        except ImportError as exc:
            raise FtbenchError(VLLM_MISSING, "vLLM runs on Linux with an NVIDIA GPU.") from exc
        base = specs[0]
        if base.kind != "hf":
            raise FtbenchError(
                f"The vllm engine serves Hugging Face folders, and {base.path} is not one.", "Use --engine llamacpp."
            )
        adapters = [s for s in specs[1:] if s.kind == "adapter"]
        if len(adapters) != len(specs) - 1:
            raise FtbenchError(
                "The vllm engine serves one base and its PEFT adapters, not extra GGUF files.", "Drop --gguf."
            )
        self.llm = LLM(model=base.path, enable_lora=bool(adapters), max_loras=max(1, len(adapters)), max_lora_rank=64)
        self.lora = {s.name: LoRARequest(s.name, i, s.path) for i, s in enumerate(adapters, start=1)}

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
        from vllm import SamplingParams

        params = SamplingParams(
            temperature=settings.temperature,
            top_p=settings.top_p,
            max_tokens=settings.max_new_tokens,
            seed=settings.seed,
            stop=list(stops) or None,
        )
        stats = StreamStats()
        lora = self.lora.get(name)
        if prompt is not None:
            out = self.llm.generate([prompt], params, lora_request=lora, use_tqdm=False)[0]
        else:
            out = self.llm.chat(messages, params, lora_request=lora, use_tqdm=False)[0]
        choice = out.outputs[0]
        stats.token(choice.text, count=len(choice.token_ids))
        if choice.text:
            on_token(choice.text)
        reason = "length" if choice.finish_reason == "length" else "stop"
        return {
            **stats.result(reason),
            "tokens": len(choice.token_ids),
            "prompt_tokens": len(out.prompt_token_ids or []),
        }
