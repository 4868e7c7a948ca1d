"""The catalog's metadata cache and walk: hits, misses, stale and corrupt files, symlinked blobs, skipped folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hfenv import use_hf_home
from test_catalog_datasets import make_hub_repo, write_jsonl
from test_catalog_models import LLAMA_CONFIG, make_gguf, make_model

from ftbench.catalog.cache import MetadataCache, cache_path
from ftbench.catalog.datasets import DatasetCatalog, discover_datasets
from ftbench.catalog.model_listing import ModelCatalog, discover_models
from ftbench.catalog.walk import fingerprint


def filled(workspace) -> None:
    make_model(workspace.models_dir / "tiny", {"x": np.zeros((4, 4), np.float32)})
    make_gguf(workspace.models_dir / "tiny-f16.gguf")
    write_jsonl(workspace.datasets_dir / "a.jsonl", [{"text": "a", "label": 0}, {"text": "b", "label": 1}])


def counts(catalog) -> tuple[int, int]:
    """(entries read from disk, entries taken from the cache) for one full listing."""
    entries = list(catalog.listing())
    cached = sum(e.complete for e in entries)
    for e in entries:
        if not e.complete:
            catalog.details(e)
    catalog.save()
    return len(entries) - cached, cached


def test_second_listing_reads_nothing_and_gives_the_same_answer(workspace) -> None:
    filled(workspace)
    cold = discover_models(workspace, hf_cache=False)
    assert counts(ModelCatalog(workspace, hf_cache=False)) == (0, 2)
    assert [m.to_dict() for m in discover_models(workspace, hf_cache=False)] == [m.to_dict() for m in cold]
    cold_ds = discover_datasets(workspace, hf_cache=False)
    assert counts(DatasetCatalog(workspace, hf_cache=False)) == (0, 1)
    assert discover_datasets(workspace, hf_cache=False) == cold_ds
    assert cache_path(workspace.root, "models").is_file() and cache_path(workspace.root, "datasets").is_file()


def test_a_changed_file_is_read_again(workspace) -> None:
    filled(workspace)
    discover_models(workspace, hf_cache=False)
    discover_datasets(workspace, hf_cache=False)
    config = json.loads((workspace.models_dir / "tiny" / "config.json").read_text())
    (workspace.models_dir / "tiny" / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 8192}))
    assert counts(ModelCatalog(workspace, hf_cache=False)) == (1, 1)
    assert {m.name: m.context_length for m in discover_models(workspace, hf_cache=False)}["tiny"] == 8192
    write_jsonl(workspace.datasets_dir / "a.jsonl", [{"text": "a", "label": 0}] * 5)
    assert [d.rows for d in discover_datasets(workspace, hf_cache=False)] == [5]


@pytest.mark.parametrize(
    "content", ["{not json", '{"version": 1, "entries": []}', '{"version": 999, "entries": {}}', ""]
)
def test_a_corrupt_or_foreign_cache_is_rebuilt_silently(workspace, content: str) -> None:
    filled(workspace)
    expected = [m.to_dict() for m in discover_models(workspace, hf_cache=False)]
    path = cache_path(workspace.root, "models")
    path.write_text(content)
    assert counts(ModelCatalog(workspace, hf_cache=False)) == (2, 0)
    assert json.loads(path.read_text())["version"] == 1  # rewritten whole
    assert [m.to_dict() for m in discover_models(workspace, hf_cache=False)] == expected
    assert counts(ModelCatalog(workspace, hf_cache=False)) == (0, 2)


def test_an_entry_written_by_other_code_is_a_miss(tmp_path: Path, workspace) -> None:
    filled(workspace)
    discover_models(workspace, hf_cache=False)
    path = cache_path(workspace.root, "models")
    doc = json.loads(path.read_text())
    for entry in doc["entries"].values():
        entry["info"]["unknown_field"] = 1
    path.write_text(json.dumps(doc))
    assert counts(ModelCatalog(workspace, hf_cache=False)) == (2, 0)


def test_save_merges_with_another_process_and_drops_vanished_paths(tmp_path: Path) -> None:
    kept, gone = tmp_path / "kept.gguf", tmp_path / "gone.gguf"
    kept.write_bytes(b"x")
    first = MetadataCache(tmp_path / "c.json", 1)
    first.put("kept", "fp1", {"path": str(kept)})
    first.put("gone", "fp2", {"path": str(gone)})
    first.save()
    second = MetadataCache(tmp_path / "c.json", 1)
    second.put("new", "fp3", {"path": str(kept)})
    second.save()
    stored = json.loads((tmp_path / "c.json").read_text())["entries"]
    assert set(stored) == {"kept", "new"}
    assert MetadataCache(tmp_path / "c.json", 1).get("kept", "fp1") == {"path": str(kept)}
    assert MetadataCache(tmp_path / "c.json", 1).get("kept", "other fingerprint") is None


def test_hf_cache_listed_through_its_layout_with_blobs_counted_once(workspace, tmp_path: Path, monkeypatch) -> None:
    weights = b"\x00" * 4096
    snapshot = make_hub_repo(
        tmp_path / "hf" / "hub",
        "model",
        "org/dup",
        {"config.json": json.dumps(LLAMA_CONFIG).encode(), "model.safetensors": b"", "weights.bin": weights},
    )
    # a second name for the same blob (as when two files of a repo have identical content)
    os.symlink(os.readlink(snapshot / "weights.bin"), snapshot / "copy.bin")
    use_hf_home(monkeypatch, tmp_path / "hf")
    (found,) = [m for m in discover_models(workspace, hf_cache=True) if m.source == "hf-cache"]
    blob_bytes = len(json.dumps(LLAMA_CONFIG)) + len(weights)
    assert (found.name, found.size_bytes) == ("org/dup", blob_bytes)
    assert fingerprint([snapshot / "weights.bin", snapshot / "copy.bin"]).size == len(weights)


def test_hub_cache_path_follows_huggingface_hub(tmp_path: Path) -> None:
    """HF_HUB_CACHE, HF_HOME, HUGGINGFACE_HUB_CACHE and XDG_CACHE_HOME move the folder the catalog lists, as
    they move huggingface_hub's own cache, in a fresh interpreter (where the constants are first read)."""
    cases = [
        ({"HF_HOME": str(tmp_path / "home")}, tmp_path / "home" / "hub"),
        ({"HF_HOME": str(tmp_path / "home"), "HF_HUB_CACHE": str(tmp_path / "hub")}, tmp_path / "hub"),
        ({"HUGGINGFACE_HUB_CACHE": str(tmp_path / "legacy")}, tmp_path / "legacy"),
        ({"XDG_CACHE_HOME": str(tmp_path / "xdg")}, tmp_path / "xdg" / "huggingface" / "hub"),
    ]
    code = (
        "import huggingface_hub.constants as c; from ftbench.catalog.hf_cache import hf_hub_cache; "
        "print(hf_hub_cache()); print(c.HF_HUB_CACHE)"
    )
    for env, expected in cases:
        clean = {k: v for k, v in os.environ.items() if k not in ("HF_HOME", "HF_HUB_CACHE", "XDG_CACHE_HOME")}
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**clean, **env}
        ).stdout.split()
        assert out == [str(expected), str(expected)], env


def test_an_unreadable_folder_is_skipped_with_a_note(workspace, monkeypatch) -> None:
    """A folder that cannot be listed (permissions, a dead mount) is named in a note; the rest is listed.

    Tests run as root here, where chmod 000 does not deny reading, so scandir is made to fail as the OS
    does for that one folder."""
    filled(workspace)
    locked = workspace.models_dir / "locked"
    make_model(locked / "inner", {"x": np.zeros((2, 2), np.float32)})
    real_scandir = os.scandir

    def scandir(path):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    notes: list[str] = []
    found = discover_models(workspace, hf_cache=False, notes=notes)
    assert [m.name for m in found] == ["tiny-f16.gguf", "tiny"]
    assert notes == [f"skipped {locked}: Permission denied"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 folder anyway")
def test_a_chmod_000_folder_is_skipped_with_a_note(workspace) -> None:
    filled(workspace)
    locked = workspace.datasets_dir / "locked"
    write_jsonl(locked / "x.jsonl", [{"text": "x"}])
    locked.chmod(0)
    try:
        notes: list[str] = []
        assert [d.name for d in discover_datasets(workspace, hf_cache=False, notes=notes)] == ["a.jsonl"]
        assert notes == [f"skipped {locked}: Permission denied"]
    finally:
        locked.chmod(0o755)


def test_no_walk_below_a_model_folder(workspace, monkeypatch) -> None:
    """Hundreds of shards are one folder listing; checkpoints below a model folder are never listed."""
    folder = workspace.models_dir / "sharded"
    folder.mkdir(parents=True)
    weight_map = {}
    for i in range(300):
        name = f"model-{i:05d}-of-00300.safetensors"
        from safetensors.numpy import save_file

        save_file({f"t{i}": np.zeros((2,), np.float32)}, str(folder / name))
        weight_map[f"t{i}"] = name
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    (folder / "config.json").write_text(json.dumps(LLAMA_CONFIG))
    deep = folder / "checkpoint-1" / "sub"
    deep.mkdir(parents=True)
    listed: list[Path] = []
    real_scandir = os.scandir

    def scandir(path):
        listed.append(Path(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    (info,) = discover_models(workspace, hf_cache=False)
    assert (info.name, info.params) == ("sharded", 600)
    assert not any(p.is_relative_to(folder / "checkpoint-1") for p in listed)
