"""Merge a PEFT adapter into its base: the step before converting a fine-tune to a standalone GGUF.

The merged model keeps the base's precision (16-bit, or fp32 for an fp32 base), is written as sharded
safetensors with the fine-tune's tokenizer and chat template, and a QLoRA adapter is merged into the
unquantized base (merging into 4-bit weights would bake quantization error in twice).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftbench.chat.adapter_checks import adapter_config, adapter_file_mismatch
from ftbench.core.errors import FtbenchError
from ftbench.export.gguf.hf import load_hf_model

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "chat_template.jinja",
    "chat_template.json",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
)


@dataclass
class AdapterInfo:
    """What adapter_config.json says, plus the base folder it resolves to."""

    path: Path
    config: dict[str, Any]
    base_dir: Path

    @property
    def use_dora(self) -> bool:
        return bool(self.config.get("use_dora"))

    @property
    def peft_type(self) -> str:
        return str(self.config.get("peft_type", "LORA")).upper()


def read_adapter(
    adapter_dir: str | Path, base_dir: str | Path | None = None, search_roots: list[Path] | None = None
) -> AdapterInfo:
    """The adapter's config and its base model folder (explicit, or from base_model_name_or_path,
    which may be absolute, relative to a search root such as the workspace, or a model name there)."""
    path = Path(adapter_dir)
    cfg_path = path / "adapter_config.json"
    cfg = adapter_config(path)  # a missing or corrupt config is one sentence naming the file
    base = Path(base_dir) if base_dir else Path(str(cfg.get("base_model_name_or_path") or ""))
    if not base_dir and not (base / "config.json").is_file():
        for root in search_roots or []:
            for candidate in (root / base, root / base.name):
                if (candidate / "config.json").is_file():
                    base = candidate
                    break
            if (base / "config.json").is_file():
                break
    if not (base / "config.json").is_file():
        raise FtbenchError(
            f"The adapter's base model {str(base)!r} (base_model_name_or_path in {cfg_path}) is not a local model folder.",
            "Pass the base folder explicitly with --base DIR.",
        )
    problem = adapter_file_mismatch(path, base)
    if problem:
        recorded = cfg.get("base_model_name_or_path") or "an unrecorded base"
        raise FtbenchError(
            f"Adapter {path} was trained on {recorded}, not on the base {base}: {problem}.",
            "Pass the base it was trained on with --base DIR (without --base, the recorded base is used).",
        )
    return AdapterInfo(path, cfg, base)


def merge_memory_bytes(base_dir: Path) -> int:
    """Peak RAM a merge needs: the base weights at their stored precision, plus about one shard of headroom."""
    model = load_hf_model(base_dir)
    size = model.nbytes()
    return int(size * 1.25)


def _base_dtype(base_dir: Path) -> str:
    cfg = json.loads((base_dir / "config.json").read_text(encoding="utf-8"))
    dtype = str(cfg.get("dtype") or cfg.get("torch_dtype") or "float32")
    stored = {t.dtype for t in load_hf_model(base_dir).tensors.values()}
    if stored == {"F32"} or (dtype == "float32" and "BF16" not in stored and "F16" not in stored):
        return "float32"
    return "bfloat16" if dtype == "bfloat16" or "BF16" in stored else "float16"


def merge_adapter(info: AdapterInfo, out_dir: str | Path, max_shard_size: str = "2GB") -> Path:
    """Write base+adapter merged to `out_dir` (via a hidden `.NAME.partial` folder renamed at the end, so no
    listing ever shows half a model)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if info.peft_type not in ("LORA",):
        raise FtbenchError(
            f"{info.path} is a {info.peft_type} adapter; only LoRA/QLoRA/DoRA adapters can be merged.",
            "Prompt-tuning adapters need the PEFT runtime; chat with them in ftbench instead of exporting.",
        )
    out = Path(out_dir)
    partial = out.with_name(f".{out.name.lstrip('.')}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    dtype = getattr(torch, _base_dtype(info.base_dir))
    base = AutoModelForCausalLM.from_pretrained(info.base_dir, dtype=dtype, trust_remote_code=False)
    model = PeftModel.from_pretrained(base, info.path)
    merged = model.merge_and_unload()
    merged.save_pretrained(partial, max_shard_size=max_shard_size, safe_serialization=True)
    tok_src = (
        info.path if any((info.path / f).is_file() for f in ("tokenizer.json", "tokenizer.model")) else info.base_dir
    )
    AutoTokenizer.from_pretrained(tok_src).save_pretrained(partial)
    for name in ("chat_template.jinja", "README.md"):
        src = tok_src / name
        if src.is_file() and not (partial / name).exists():
            shutil.copy2(src, partial / name)
    if out.exists():
        shutil.rmtree(out)
    os.replace(partial, out)
    return out
