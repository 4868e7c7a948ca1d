"""Checks that an adapter folder can go onto a given base before peft touches the base.

A failed peft load leaves half-injected LoRA layers in the shared base model, so every column on that base
would pay for one bad adapter; these checks turn the common mistakes (not an adapter, trained on another
base, tensor shapes that do not fit) into one clear error first. Kept apart from hf.py because they read
only JSON and safetensors headers: no torch, transformers or peft at import time.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ftbench.core.errors import FtbenchError


def adapter_config(path: Path) -> dict[str, Any]:
    """The adapter's adapter_config.json, or a clear error when the folder is not a PEFT adapter."""
    cfg = path / "adapter_config.json"
    if not path.is_dir():
        raise FtbenchError(
            f"Adapter {path} does not exist or is not a folder.", "Pass a PEFT adapter folder or a run id."
        )
    if not cfg.is_file():
        raise FtbenchError(
            f"{path} is not a PEFT adapter: it has no adapter_config.json.",
            "Pass the run's adapter/ folder (or the run id); a full model folder goes in as a model, not --adapter.",
        )
    try:
        data = json.loads(cfg.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise FtbenchError(f"{cfg} is not valid JSON.", "Re-save the adapter.") from exc
    if not isinstance(data, dict) or "peft_type" not in data:
        raise FtbenchError(
            f"{cfg} has no peft_type, so it is not a PEFT adapter config.", "Re-save the adapter with peft."
        )
    return data


def base_names_match(adapter_base: str | None, base_path: Path, base_name: str | None) -> bool:
    """True when the adapter's recorded base is this base: same path, same folder name or same model id tail.

    Adapters trained elsewhere record another absolute path or a hub id, so names are compared by their
    last path component, case-insensitively, as well as by full path.
    """
    if not adapter_base:
        return True
    wanted = adapter_base.rstrip("/")
    candidates = {str(base_path), base_path.name}
    if base_name:
        candidates |= {base_name.rstrip("/"), Path(base_name.rstrip("/")).name}
    tail = Path(wanted).name.lower()
    return wanted in candidates or tail in {Path(c).name.lower() for c in candidates}


def adapter_shape_mismatch(model: Any, adapter_path: Path) -> str | None:
    """The first LoRA tensor whose shape does not fit the base's layer, described; None when all fit.

    Checked before loading because a failed load leaves half-injected layers in the base.
    """
    weights = adapter_path / "adapter_model.safetensors"
    if not weights.is_file():
        return None
    from safetensors import safe_open

    raw = model.get_base_model() if hasattr(model, "get_base_model") else model
    modules = dict(raw.named_modules())
    try:
        handle = safe_open(str(weights), "pt")
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise FtbenchError(
            f"Cannot read the adapter weights {weights}: {exc}.", "Re-save the adapter; the file looks damaged."
        ) from exc
    with handle as st:
        for key in st.keys():
            m = re.match(r"(?:base_model\.model\.)?(.*)\.lora_(A|B)\.weight$", key)
            if not m:
                continue
            module = modules.get(m.group(1))
            shape = list(st.get_slice(key).get_shape())
            if module is None:
                return f"it has weights for layer '{m.group(1)}', which the base does not have"
            want = getattr(module, "in_features", None) if m.group(2) == "A" else getattr(module, "out_features", None)
            got = shape[1] if m.group(2) == "A" else shape[0]
            if want is not None and got != want:
                return f"{key} has shape {shape}, but layer '{m.group(1)}' has {'in' if m.group(2) == 'A' else 'out'}_features={want}"
    return None


def base_tensor_shapes(base_dir: Path) -> dict[str, list[int]] | None:
    """Every tensor's shape in a base model folder's safetensors headers (no weights read); None without any."""
    from ftbench.catalog.hf_files import read_safetensors_header

    files = sorted(base_dir.glob("*.safetensors"))
    if not files:
        return None
    shapes: dict[str, list[int]] = {}
    for file in files:
        for name, entry in read_safetensors_header(file).items():
            if isinstance(entry, dict) and "shape" in entry:
                shapes[name] = list(entry["shape"])
    return shapes


def adapter_file_mismatch(adapter_path: Path, base_dir: Path) -> str | None:
    """Like `adapter_shape_mismatch`, from the files alone (export merges in a job; this runs at the prompt):
    the first LoRA tensor that does not fit the base folder's weight of the same layer, described."""
    from ftbench.catalog.hf_files import read_safetensors_header

    weights = adapter_path / "adapter_model.safetensors"
    shapes = base_tensor_shapes(base_dir)
    if not weights.is_file() or shapes is None:
        return None
    for key, entry in read_safetensors_header(weights).items():
        m = re.match(r"(?:base_model\.model\.)?(.*)\.lora_(A|B)\.weight$", key)
        if not m or not isinstance(entry, dict):
            continue
        layer = m.group(1)
        base = shapes.get(f"{layer}.weight") or shapes.get(f"{layer}.base_layer.weight")
        if base is None:
            continue  # a tied lm_head or a wrapper's prefix: not evidence of another base
        got, want, side = (
            (entry["shape"][1], base[-1], "in") if m.group(2) == "A" else (entry["shape"][0], base[0], "out")
        )
        if got != want:
            return f"{key} has shape {entry['shape']}, but the base's '{layer}' has {side}_features={want}"
    return None
