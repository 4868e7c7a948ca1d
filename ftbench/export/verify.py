"""Verification of a GGUF against its Hugging Face source: same token ids, close logits, it generates.

A converter bug (wrong permutation, missing +1, wrong pre-tokenizer) usually still loads and produces
text, so we compare numbers: token ids on a nasty fixed text, logits on identical ids (NMSE and top-1),
and for lossy types the KL divergence. A failed check fails the export.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ftbench.core.errors import FtbenchError

# Whitespace runs, tabs, digits of many lengths, accents, CJK/Hangul, emoji (incl. ZWJ) and chat specials.
VERIFY_TEXT = (
    "<|im_start|>user\nHello  world!\tTabs\t\tand   spaces 7 42 123 2026-11-22 3.14159 1234567\n"
    "café naïve Ünïcödé 안녕하세요 日本語 🙂🤖🚀 👩‍💻 ok<|im_end|>\n<|im_start|>assistant\n"
    "Sure — it's   done.\n\n  indented<|im_end|>"
)

# Gate per GGUF type: (max NMSE, min top-1 agreement). None = smoke test only (loads, generates, KL reported).
THRESHOLDS: dict[str, tuple[float, float] | None] = {
    "f32": (1e-5, 1.0),
    "f16": (1e-4, 0.99),
    "bf16": (1e-4, 0.99),
    "q8_0": (1e-2, 0.0),
}


@dataclass
class CheckResult:
    """One GGUF's verification numbers (what verify.json and the result card show)."""

    file: str
    type: str
    passed: bool
    tokens_match: bool | None = None
    n_tokens: int = 0
    nmse: float | None = None
    top1: float | None = None
    max_abs: float | None = None
    kl: float | None = None
    generated: str | None = None
    threshold: float | None = None
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def nmse(ref: np.ndarray, test: np.ndarray) -> float:
    """Mean squared error normalised by the reference variance (llama.cpp's check-nmse measure)."""
    ref = ref.astype(np.float64)
    test = test.astype(np.float64)
    return float(np.mean((ref - test) ** 2) / max(np.var(ref), 1e-30))


def top1_agreement(ref: np.ndarray, test: np.ndarray) -> float:
    """Share of positions where the GGUF's top token is also HF's top token.

    A flip between two HF logits closer than the numeric error at that position (at most 1% of the logit
    standard deviation; ties under 0.1% always count) is a near-tie, not a disagreement: random tiny
    models and softcapped heads produce them, and a real conversion bug shows up in the NMSE anyway.
    """
    sigma = float(ref.std())
    pick = test.argmax(-1)
    gap = ref.max(-1) - ref[np.arange(len(ref)), pick]
    err = np.abs(ref - test).max(-1)
    tol = np.maximum(1e-3 * sigma, np.minimum(2 * err, 1e-2 * sigma))
    return float(np.mean(gap <= tol))


def mean_kl(ref: np.ndarray, test: np.ndarray) -> float:
    """Mean over positions of KL(softmax(ref) || softmax(test))."""

    def log_softmax(x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float64)
        x = x - x.max(axis=-1, keepdims=True)
        return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))

    lp, lq = log_softmax(ref), log_softmax(test)
    return float(np.mean(np.sum(np.exp(lp) * (lp - lq), axis=-1)))


def _llama_cpp():
    try:
        import llama_cpp
    except ImportError as exc:
        raise FtbenchError(
            "Verifying a GGUF needs llama-cpp-python, which is not installed.",
            "pip install llama-cpp-python (it compiles llama.cpp; allow ~10 minutes).",
        ) from exc
    return llama_cpp


def quiet_llama_logs() -> None:
    """llama.cpp logs every tensor to stderr; keep job logs readable."""
    llama_cpp = _llama_cpp()
    import ctypes

    @llama_cpp.llama_log_callback
    def _silent(level: int, text: bytes, user: ctypes.c_void_p) -> None:
        return None

    llama_cpp.llama_log_set(_silent, ctypes.c_void_p(0))
    quiet_llama_logs._keep = _silent  # type: ignore[attr-defined]  # the callback must outlive this call


class HFReference:
    """The HF model's ids and logits on the verification text, computed once for several GGUF files."""

    def __init__(self, hf_dir: str | Path, text: str = VERIFY_TEXT, adapter_dir: str | Path | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.hf_dir = Path(hf_dir)
        self.text = text
        self.tokenizer = AutoTokenizer.from_pretrained(
            adapter_dir if adapter_dir and (Path(adapter_dir) / "tokenizer_config.json").is_file() else self.hf_dir
        )
        self.ids: list[int] = list(self.tokenizer(text, add_special_tokens=True)["input_ids"])
        model = AutoModelForCausalLM.from_pretrained(self.hf_dir, dtype=torch.float32)
        if adapter_dir:  # the reference for an adapter GGUF is base + adapter merged in fp32
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
        model.eval()
        with torch.no_grad():
            out = model(torch.tensor([self.ids]))
        self.logits = out.logits[0].float().numpy()
        del model


def load_gguf(path: str | Path, n_ctx: int = 256, lora_path: str | Path | None = None, vocab_only: bool = False):
    llama_cpp = _llama_cpp()
    quiet_llama_logs()
    kwargs: dict[str, Any] = dict(
        n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx, logits_all=True, n_threads=2, verbose=False, seed=0
    )
    if lora_path:
        kwargs["lora_path"] = str(lora_path)
    if vocab_only:
        kwargs["vocab_only"] = True
    try:
        return llama_cpp.Llama(model_path=str(path), **kwargs)
    except (ValueError, RuntimeError) as exc:
        raise FtbenchError(
            f"llama.cpp could not load {path}: {exc}.", "The GGUF is invalid for this llama.cpp build; re-export it."
        ) from exc


def check_gguf(path: str | Path, ref: HFReference, gguf_type: str, lora_path: str | Path | None = None) -> CheckResult:
    """Tokens, logits and a short generation for one GGUF against the HF reference."""
    t0 = time.perf_counter()
    gguf_type = gguf_type.lower()
    gate = THRESHOLDS.get(gguf_type)
    res = CheckResult(
        file=str(path), type=gguf_type, passed=False, n_tokens=len(ref.ids), threshold=gate[0] if gate else None
    )
    llm = load_gguf(path, n_ctx=max(64, len(ref.ids) + 32), lora_path=lora_path)
    try:
        ids = llm.tokenize(ref.text.encode("utf-8"), add_bos=True, special=True)
        res.tokens_match = list(ids) == ref.ids
        if not res.tokens_match:
            first = next(
                (i for i, (a, b) in enumerate(zip(ids, ref.ids, strict=False)) if a != b), min(len(ids), len(ref.ids))
            )
            res.problems.append(
                f"token ids differ from HF at position {first} (llama.cpp {len(ids)} ids, HF {len(ref.ids)})"
            )
        llm.reset()
        llm.eval(ref.ids)
        got = np.array(llm.scores[: len(ref.ids)], dtype=np.float32)
        n = min(got.shape[1], ref.logits.shape[1])
        want = ref.logits[:, :n]
        got = got[:, :n]
        res.nmse = nmse(want, got)
        res.top1 = top1_agreement(want, got)
        res.max_abs = float(np.max(np.abs(want - got)))
        res.kl = mean_kl(want, got)
        if gate:
            if not res.nmse < gate[0]:
                res.problems.append(f"logit NMSE {res.nmse:.3g} is not below {gate[0]:g} for {gguf_type}")
            if res.top1 < gate[1]:
                res.problems.append(f"top-1 agreement {res.top1:.1%} is below {gate[1]:.0%} for {gguf_type}")
        llm.reset()
        prompt = ref.ids[: min(len(ref.ids), 8)]
        out_ids = []
        for tok in llm.generate(prompt, temp=0.0, top_k=1, reset=True):
            out_ids.append(tok)
            if len(out_ids) >= 8:
                break
        res.generated = llm.detokenize(out_ids).decode("utf-8", errors="replace")
        if not out_ids:
            res.problems.append("generated no tokens")
    finally:
        llm.close()
    res.passed = not res.problems
    res.seconds = round(time.perf_counter() - t0, 3)
    return res
