"""Moving the Hugging Face cache inside a test: the environment (for job processes) and the live constants.

huggingface_hub reads HF_HOME and HF_HUB_CACHE once, when `huggingface_hub.constants` is first imported;
ftbench reads them from there (catalog/hf_cache.py). A test that points the cache somewhere else sets both:
the environment, which processes it starts inherit, and the constants this process already holds.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def use_hf_home(monkeypatch: pytest.MonkeyPatch, home: Path, hub_cache: Path | None = None) -> None:
    from huggingface_hub import constants

    hub = hub_cache or home / "hub"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", os.path.join(home, "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", os.path.join(home, "stored_tokens"))
