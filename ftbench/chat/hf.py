"""transformers + PEFT backend: one copy of each base model, any number of LoRA adapters on top of it.

The first adapter wraps the base in a PeftModel; later adapters are added with `load_adapter`, and a
column switches with `set_adapter` (or `disable_adapter()` for the base itself), so N adapter columns cost
one base plus N small adapters and a switch takes milliseconds instead of a reload. Imported only inside
the chat server process (torch, transformers and peft are heavy).
"""

from __future__ import annotations

import re
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from ftbench.chat.adapter_checks import adapter_config, adapter_shape_mismatch, base_names_match
from ftbench.chat.base import StopCheck, StreamStats, TokenCallback, cut_at_stop, with_system
from ftbench.chat.protocol import GenSettings, VariantSpec
from ftbench.core.errors import FtbenchError

# Tokens that end an assistant turn in common templates; only those the vocabulary has are used.
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "<|endoftext|>", "<|eot|>", "</s>")
FALLBACK_TEMPLATE = "plain"
PLAIN_STOPS = ("\nUser:", "\nSystem:")
CAUSAL_TASKS = (None, "CAUSAL_LM")


def end_of_turn_ids(tokenizer: Any, model: Any) -> list[int]:
    """The ids generation stops on: EOS from tokenizer and generation config plus known end-of-turn tokens."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(gen_eos, int):
        ids.add(gen_eos)
    elif isinstance(gen_eos, (list, tuple)):
        ids.update(int(i) for i in gen_eos)
    vocab = tokenizer.get_vocab()
    ids.update(vocab[t] for t in END_OF_TURN if t in vocab)
    return sorted(ids)


def render_plain(messages: list[dict[str, str]]) -> str:
    """The named fallback for models without a chat template: 'System:/User:/Assistant:' lines."""
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n".join(lines) + "\nAssistant:"


def is_oom(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "cannot allocate memory" in text)


_STALE = "\0stale"  # an adapter name no one can have: forces the next switch to apply its state


@dataclass
class LoadedBase:
    """One base model in memory, and the adapters loaded onto it."""

    path: Path
    model: Any
    tokenizer: Any
    stop_ids: list[int]
    template: str  # "model" (the tokenizer's own) or FALLBACK_TEMPLATE
    device: str
    adapters: set[str] = field(default_factory=set)
    users: set[str] = field(default_factory=set)
    active: str | None = None  # the adapter in use, or None for the bare base
    tuner_layers: list[Any] | None = None  # LoRA layers to flip on a switch; None = rebuild before the next one

    def adapters_changed(self) -> None:
        """After peft loaded or deleted an adapter: re-scan layers and re-apply the active variant next time."""
        self.tuner_layers = None
        self.active = _STALE  # type: ignore[assignment]

    @property
    def is_peft(self) -> bool:
        from peft import PeftModel

        return isinstance(self.model, PeftModel)

    def render(self, messages: list[dict[str, str]]) -> str:
        if self.template == FALLBACK_TEMPLATE:
            return render_plain(messages)
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def pick_device(requested: str | None) -> str:
    if requested and requested != "auto":
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


FALLBACK: list[Any] = []


def lora_layers(model: Any) -> list[Any]:
    """Every LoRA layer of a PeftModel, or FALLBACK when it holds other tuner layers (use peft's API then)."""
    from peft.tuners.lora import LoraLayer
    from peft.tuners.tuners_utils import BaseTunerLayer

    layers = []
    for module in model.modules():
        if "ModulesToSave" in type(module).__name__ or "AuxiliaryTraining" in type(module).__name__:
            return FALLBACK
        if isinstance(module, BaseTunerLayer):
            if not isinstance(module, LoraLayer):
                return FALLBACK
            layers.append(module)
    return layers


def param_bytes(model: Any) -> int:
    """Bytes held by a model's parameters (what adapter memory growth is measured against)."""
    return sum(p.numel() * p.element_size() for p in model.parameters())


class _TextStreamer(BaseStreamer):
    """Receives token ids from `generate`, decodes incrementally, emits new text, honours stop strings."""

    def __init__(self, tokenizer: Any, stats: StreamStats, on_token: TokenCallback, stops: tuple[str, ...]) -> None:
        self.tokenizer = tokenizer
        self.stats = stats
        self.on_token = on_token
        self.stops = stops
        self.ids: list[int] = []
        self.emitted = ""
        self.prompt_seen = False
        self.hit_stop = False

    def put(self, value: Any) -> None:
        if not self.prompt_seen:  # the first call carries the prompt
            self.prompt_seen = True
            return
        if self.hit_stop:
            return
        self.ids.extend(int(i) for i in value.reshape(-1).tolist())
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):  # a multi-byte character split across tokens: wait for the rest
            self.stats.token("")  # still a token: it counts for time to first token and speed
            return
        text, self.hit_stop = cut_at_stop(text, self.stops) if self.stops else (text, False)
        piece = text[len(self.emitted) :] if text.startswith(self.emitted) else ""
        self.emitted = text if text.startswith(self.emitted) else self.emitted
        self.stats.token(piece)
        if piece:
            self.on_token(piece)

    def end(self) -> None:
        """generate() calls this at the end; every piece was already sent as it was decoded."""


class _Stop(StoppingCriteria):
    def __init__(self, should_stop: StopCheck, streamer: _TextStreamer) -> None:
        self.should_stop = should_stop
        self.streamer = streamer

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        stop = self.should_stop() or self.streamer.hit_stop
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


class HFBackend:
    """Variants backed by transformers models; adapter variants share their base's weights."""

    def __init__(self, device: str | None = None, quantize: str | None = None, trust_remote_code: bool = False) -> None:
        self.device = device
        self.quantize = quantize
        self.trust_remote_code = trust_remote_code
        self.bases: dict[str, LoadedBase] = {}
        self.variants: dict[str, tuple[str, str | None]] = {}
        self._base_opts: dict[str, dict[str, Any]] = {}

    # -- loading -------------------------------------------------------------------------------------------

    def load(self, spec: VariantSpec) -> dict[str, Any]:
        t0 = time.perf_counter()
        opts = spec.options
        if spec.name in self.variants:
            raise FtbenchError(
                f"A column named '{spec.name}' is already loaded.", "Pick another name or remove that column first."
            )
        base_path = Path(spec.base if spec.kind == "adapter" else spec.path).expanduser().resolve()
        adapter_cfg = adapter_config(Path(spec.path).expanduser().resolve()) if spec.kind == "adapter" else None
        reused = str(base_path) in self.bases
        base = self._base(base_path, opts)
        warnings: list[str] = []
        if base.template == FALLBACK_TEMPLATE and not reused:
            warnings.append(
                f"{base_path.name} has no chat template; using the '{FALLBACK_TEMPLATE}' fallback (System:/User:/Assistant: lines)."
            )
        info: dict[str, Any] = {
            "base": str(base_path),
            "base_reused": reused,
            "device": base.device,
            "template": base.template,
        }
        if adapter_cfg is not None:
            try:
                info.update(self._add_adapter(base, spec, adapter_cfg))
            except BaseException:
                if not base.users:  # the base was loaded only for this adapter: do not keep it around
                    del self.bases[str(base_path)]
                raise
            self.variants[spec.name] = (str(base_path), info["adapter_name"])
        else:
            self.variants[spec.name] = (str(base_path), None)
        base.users.add(spec.name)
        info["load_s"] = round(time.perf_counter() - t0, 4)
        info["warnings"] = warnings
        info["param_bytes"] = param_bytes(base.model)
        return info

    def _base(self, path: Path, opts: dict[str, Any]) -> LoadedBase:
        key = str(path)
        if key in self.bases:
            return self.bases[key]
        base = self._load_model(path, opts)
        self._base_opts[key] = dict(opts)
        self.bases[key] = base
        return base

    def _load_model(self, path: Path, opts: dict[str, Any]) -> LoadedBase:
        if not (path / "config.json").is_file():
            if (path / "adapter_config.json").is_file():
                raise FtbenchError(
                    f"{path} is a PEFT adapter, not a model.", "Pass it with --adapter on top of its base model."
                )
            raise FtbenchError(
                f"{path} is not a Hugging Face model folder (no config.json).",
                "Pass a model folder, a .gguf file or a run id.",
            )
        device = pick_device(opts.get("device") or self.device)
        quantize = opts.get("quantize", self.quantize)
        # Only the server's own flag (the live --trust-remote-code) decides; a column's options can come from a file.
        kwargs: dict[str, Any] = {"trust_remote_code": self.trust_remote_code}
        if quantize in ("4bit", "8bit"):
            if not device.startswith("cuda"):
                raise FtbenchError(
                    f"{quantize} loading of {path.name} needs a CUDA GPU (bitsandbytes), and this server runs on {device}.",
                    "Drop --load-in on a CPU-only machine.",
                )
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = (
                BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)
                if quantize == "4bit"
                else BitsAndBytesConfig(load_in_8bit=True)
            )
            kwargs["device_map"] = {"": device}
        else:
            kwargs["dtype"] = (
                (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
                if device.startswith("cuda")
                else torch.float32
            )
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=kwargs["trust_remote_code"])
            model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
            if "device_map" not in kwargs:
                model.to(device)
        except Exception as exc:  # noqa: BLE001 - OOM and unloadable models become one clear sentence
            if is_oom(exc):
                if device.startswith("cuda"):
                    torch.cuda.empty_cache()
                raise FtbenchError(
                    f"Out of memory while loading {path.name} on {device}; the other columns keep working.",
                    "Close other columns, load it 4-bit (--load-in 4bit on a GPU), or pick a smaller model.",
                ) from exc
            raise FtbenchError(
                f"Cannot load the model {path}: {type(exc).__name__}: {exc}.",
                "Check that the folder is a complete causal-LM checkpoint.",
            ) from exc
        model.eval()
        template = "model" if getattr(tokenizer, "chat_template", None) else FALLBACK_TEMPLATE
        return LoadedBase(
            path=path,
            model=model,
            tokenizer=tokenizer,
            stop_ids=end_of_turn_ids(tokenizer, model),
            template=template,
            device=device,
        )

    def _add_adapter(self, base: LoadedBase, spec: VariantSpec, cfg: dict[str, Any]) -> dict[str, Any]:
        path = Path(spec.path).expanduser().resolve()
        recorded = cfg.get("base_model_name_or_path")
        base_name = getattr(base.model, "name_or_path", None)
        if not spec.options.get("allow_base_mismatch") and not base_names_match(recorded, base.path, base_name):
            raise FtbenchError(
                f"Adapter {path} was trained on base '{recorded}', but this chat's base is '{base.path}'.",
                f"Open chat with '{recorded}' as the model, or pass --allow-base-mismatch if they are the same weights.",
            )
        if cfg.get("task_type") not in CAUSAL_TASKS:
            raise FtbenchError(
                f"Adapter {path} is a {cfg.get('task_type')} adapter, not a causal-LM one, so it cannot chat.",
                "Use `ftbench predict` for classification, NER and QA adapters.",
            )
        mismatch = adapter_shape_mismatch(base.model, path)
        if mismatch:
            raise FtbenchError(
                f"Adapter {path} does not fit base '{base.path}' (it was trained on '{recorded}'): tensor shapes differ; {mismatch}.",
                f"Open chat with '{recorded}' as the model.",
            )
        name = re.sub(r"\W", "_", spec.name)
        before = param_bytes(base.model)
        t0 = time.perf_counter()
        try:
            if not base.is_peft:
                from peft import PeftModel

                base.model = PeftModel.from_pretrained(base.model, str(path), adapter_name=name, is_trainable=False)
            else:
                base.model.load_adapter(str(path), adapter_name=name, is_trainable=False)
        except Exception as exc:  # noqa: BLE001
            self._repair(base, name)
            base.adapters_changed()
            if is_oom(exc):
                raise FtbenchError(
                    f"Out of memory while loading adapter {path.name}; the other columns keep working.",
                    "Close other columns first.",
                ) from exc
            if "size mismatch" in str(exc) or "shape" in str(exc).lower():
                raise FtbenchError(
                    f"Adapter {path} does not fit base '{base.path}' (it was trained on '{recorded}'): tensor shapes differ.",
                    f"Open chat with '{recorded}' as the model.",
                ) from exc
            raise FtbenchError(
                f"Cannot load adapter {path}: {type(exc).__name__}: {exc}.", "Check the adapter folder."
            ) from exc
        base.model.eval()
        base.adapters.add(name)
        base.adapters_changed()
        return {
            "adapter_name": name,
            "adapter_load_s": round(time.perf_counter() - t0, 4),
            "adapter_param_bytes": param_bytes(base.model) - before,
        }

    def _repair(self, base: LoadedBase, adapter: str) -> None:
        """Undo a failed adapter load: drop the partial adapter, or reload a base that peft half-modified."""
        if base.is_peft:
            if adapter in base.model.peft_config:
                try:
                    base.model.delete_adapter(adapter)
                except Exception:  # noqa: BLE001 - nothing more to undo
                    pass
            return
        if hasattr(base.model, "peft_config") or any("lora" in n for n, _ in base.model.named_modules()):
            fresh = self._load_model(base.path, self._base_opts.get(str(base.path), {}))
            base.model = fresh.model

    def unload(self, name: str) -> None:
        key, adapter = self.variants.pop(name)
        base = self.bases[key]
        base.users.discard(name)
        if adapter is not None and adapter in base.adapters:
            if len(base.adapters) > 1:
                base.model.base_model.enable_adapter_layers()
                base.model.set_adapter(next(a for a in base.adapters if a != adapter))
                base.model.delete_adapter(adapter)
                base.adapters.discard(adapter)
                base.adapters_changed()
            # The last adapter stays attached (peft cannot delete it) but is unused; it is small.
        if not base.users:
            del self.bases[key]
            if base.device.startswith("cuda"):
                torch.cuda.empty_cache()

    # -- generation ----------------------------------------------------------------------------------------

    def switch(self, name: str) -> Any:
        """Make `name` the active variant of its base (the adapter on, or all adapters off for the base).

        peft's set_adapter / disable_adapter walk every module and toggle requires_grad, which costs tens of
        ms on a 30-layer model; for inference only two attributes of each LoRA layer matter, so those are
        flipped directly on a cached list of layers. Models with other tuner types use peft's own calls.
        """
        key, adapter = self.variants[name]
        base = self.bases[key]
        if not base.is_peft or base.active == adapter:
            return nullcontext()
        if base.tuner_layers is None:
            base.tuner_layers = lora_layers(base.model)
        if base.tuner_layers is not None and base.tuner_layers is not FALLBACK:
            for layer in base.tuner_layers:
                layer._disable_adapters = adapter is None
                if adapter is not None:
                    layer._active_adapter = [adapter]
            if adapter is not None:
                base.model.base_model.active_adapter = adapter
        elif adapter is None:
            base.model.base_model.disable_adapter_layers()
        else:
            base.model.base_model.enable_adapter_layers()
            base.model.set_adapter(adapter)
        base.active = adapter
        return nullcontext()

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
        if name not in self.variants:
            raise FtbenchError(f"No loaded column named '{name}'.", "Load it first.")
        key, _ = self.variants[name]
        base = self.bases[key]
        stats = StreamStats()
        raw = prompt is not None
        text = prompt if raw else base.render(with_system(messages, settings.system))
        enc = base.tokenizer(text, return_tensors="pt", add_special_tokens=raw or base.template == FALLBACK_TEMPLATE)
        enc = {k: v.to(base.model.device) for k, v in enc.items()}
        stops = (PLAIN_STOPS if base.template == FALLBACK_TEMPLATE and not raw else ()) + tuple(s for s in stops if s)
        streamer = _TextStreamer(base.tokenizer, stats, on_token, stops)
        kwargs: dict[str, Any] = {
            "max_new_tokens": settings.max_new_tokens,
            "repetition_penalty": settings.repetition_penalty,
            "eos_token_id": base.stop_ids or None,
            "pad_token_id": base.tokenizer.pad_token_id
            if base.tokenizer.pad_token_id is not None
            else (base.stop_ids or [0])[0],
            "do_sample": not settings.greedy,
        }
        if settings.greedy:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(temperature=settings.temperature, top_p=settings.top_p, top_k=settings.top_k)  # top_k 0 = off
        torch.manual_seed(settings.seed)
        with self.switch(name), torch.inference_mode():
            out = base.model.generate(
                **enc,
                streamer=streamer,
                stopping_criteria=StoppingCriteriaList([_Stop(should_stop, streamer)]),
                **kwargs,
            )
        new_ids = out[0, enc["input_ids"].shape[1] :].tolist()
        if should_stop():
            reason = "cancelled"
        elif streamer.hit_stop or (new_ids and new_ids[-1] in base.stop_ids):
            reason = "stop"
        else:
            reason = "length"
        stats.tokens = len(new_ids)
        return {**stats.result(reason), "prompt_tokens": int(enc["input_ids"].shape[1])}
