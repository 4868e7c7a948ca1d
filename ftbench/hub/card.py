"""The model card `ftbench push` uploads as README.md: metadata the Hub links on, then what was trained how.

Front matter: `base_model` (a Hub repo id, so the Hub lists the upload under its base's adapters,
fine-tunes or quantizations), `library_name` (peft for an adapter, transformers for full weights, gguf for
GGUF files), `tags`, and `datasets` when the training data is a Hub dataset. The body: base model, dataset
name and size, the recipe as trained, training metrics (metrics.json), eval results (the newest eval job
that scored this run) and, for GGUF files, the export's result card (core/export_card.py) with its
verification numbers. Everything is read from the job folders; nothing is loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ftbench.core.export_card import render_card

LIBRARIES = {"adapter": "peft", "merged": "transformers", "gguf": "gguf"}


@dataclass
class CardFacts:
    """What the card says; each field may be missing (a bare model folder has no recipe or metrics)."""

    what: str  # adapter | merged | gguf
    source: str  # what the user pushed (run id, export id, folder)
    base_model: str | None = None  # a Hub repo id, for the metadata
    base_name: str | None = None  # the base as the recipe names it (may be a local folder)
    recipe: dict[str, Any] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    dataset_id: str | None = None  # a Hub dataset id, for the metadata
    export: dict[str, Any] | None = None  # an export job's `result`
    evals: dict[str, Any] | None = None  # an eval job's metrics.json


def front_matter(facts: CardFacts) -> dict[str, Any]:
    recipe = facts.recipe or {}
    method = (recipe.get("method") or {}).get("name") if isinstance(recipe.get("method"), dict) else None
    tags = ["ftbench", *(t for t in (recipe.get("task"), method) if t)]
    tags += {"adapter": ["peft", "lora"] if method in ("lora", "qlora") else ["peft"], "gguf": ["gguf"]}.get(
        facts.what, []
    )
    meta: dict[str, Any] = {}
    if facts.base_model:
        meta["base_model"] = facts.base_model
    meta["library_name"] = LIBRARIES[facts.what]
    meta["tags"] = list(dict.fromkeys(tags))
    if facts.dataset_id:
        meta["datasets"] = [facts.dataset_id]
    return meta


def render_model_card(facts: CardFacts) -> str:
    meta = yaml.safe_dump(front_matter(facts), sort_keys=False, allow_unicode=True).strip()
    recipe = facts.recipe or {}
    title = recipe.get("name") or Path(facts.source).name or facts.source
    lines = ["---", meta, "---", "", f"# {title}", "", _summary(facts), ""]
    lines += _facts_list(facts)
    if facts.recipe:
        lines += ["", "## Recipe", "", "```yaml", yaml.safe_dump(facts.recipe, sort_keys=False).strip(), "```"]
    metrics = {k: v for k, v in facts.metrics.items() if not isinstance(v, (dict, list))}
    if metrics:
        lines += ["", "## Training metrics", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in metrics.items()]
    if facts.evals:
        lines += ["", "## Eval results", ""] + _eval_table(facts.evals)
    if facts.export:
        lines += ["", "## GGUF export", "", "```", render_card(facts.export), "```"]
    return "\n".join(lines) + "\n"


def _summary(facts: CardFacts) -> str:
    kind = {"adapter": "A PEFT adapter", "merged": "A fine-tuned model", "gguf": "GGUF files"}[facts.what]
    base = f" of `{facts.base_name or facts.base_model}`" if (facts.base_name or facts.base_model) else ""
    how = {
        "adapter": "Load it on top of the base model (peft `PeftModel.from_pretrained`).",
        "merged": "Load it with transformers `AutoModelForCausalLM.from_pretrained`.",
        "gguf": "Run them with llama.cpp, Ollama or LM Studio.",
    }[facts.what]
    return f"{kind}{base}, fine-tuned with ftbench. {how}"


def _facts_list(facts: CardFacts) -> list[str]:
    recipe = facts.recipe or {}
    data = recipe.get("data") if isinstance(recipe.get("data"), dict) else {}
    info = facts.metrics.get("info") if isinstance(facts.metrics.get("info"), dict) else {}
    out = []
    if facts.base_name or facts.base_model:
        out.append(f"- Base model: `{facts.base_model or facts.base_name}`")
    if data.get("train"):
        rows = info.get("train_rows")
        size = f" ({rows} rows" + (f", format {info['data_format']}" if info.get("data_format") else "") + ")"
        out.append(f"- Dataset: `{data['train']}`" + (size if rows is not None else ""))
    if recipe.get("task"):
        out.append(f"- Task: {recipe['task']}")
    return out


def _eval_table(summary: dict[str, Any]) -> list[str]:
    variants = summary.get("variants") or []
    keys = sorted({k for v in variants for k, x in (v.get("metrics") or {}).items() if isinstance(x, (int, float))})
    if not keys:
        return ["(no numeric metrics)"]
    rows = ["| variant | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for v in variants:
        m = v.get("metrics") or {}
        cells = [f"{m[k]:.4g}" if isinstance(m.get(k), (int, float)) else "-" for k in keys]
        rows.append(f"| {v.get('name')} | " + " | ".join(cells) + " |")
    data = summary.get("data") or summary.get("data_label")
    return ([f"On `{data}`:", ""] if data else []) + rows


def read_json(path: Any) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None
