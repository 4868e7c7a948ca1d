"""Shared fixtures: isolated workspaces, the built demo workspace, tiny models; offline everywhere."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))

# No hub at test time, no stray user config, no tokenizer thread pools fighting over 2 cores.
for key, value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "TRANSFORMERS_VERBOSITY": "error",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}.items():
    os.environ[key] = value
os.environ.pop("FTBENCH_HOME", None)


@pytest.fixture(scope="session", autouse=True)
def _isolated_hf_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep tests away from the user's Hugging Face cache and token (scans, downloads, uploads)."""
    from huggingface_hub import constants

    home = tmp_path_factory.mktemp("hf_home")
    os.environ["HF_HOME"] = str(home)
    os.environ.pop("HF_HUB_CACHE", None)
    os.environ.pop("HF_TOKEN", None)
    # huggingface_hub read these when it was first imported, possibly before this fixture ran
    constants.HF_HOME, constants.HF_HUB_CACHE = str(home), str(home / "hub")
    constants.HF_TOKEN_PATH = str(home / "token")
    constants.HF_STORED_TOKENS_PATH = str(home / "stored_tokens")


@pytest.fixture
def workspace(tmp_path: Path):
    from ftbench.core.workspace import Workspace

    return Workspace.open(tmp_path / "ws")


@pytest.fixture(scope="session")
def demo_workspace(tmp_path_factory: pytest.TempPathFactory):
    """The offline demo workspace, built once per session (reused across local runs; read-only for tests).

    Set FTBENCH_TEST_CACHE=0 to always build it afresh (CI does, on a fresh clone the cache is empty anyway).
    """
    from ftbench.core.workspace import Workspace
    from ftbench.demo.build import build_demo

    if os.environ.get("FTBENCH_TEST_CACHE", "1") == "0":
        root = tmp_path_factory.mktemp("demo") / "ws"
    else:
        root = REPO / ".ftbench-test-cache" / "demo"
    ws = Workspace.open(root)
    build_demo(ws.root)
    return ws


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tinymodels import make_tiny_causal_lm

    return make_tiny_causal_lm(tmp_path_factory.mktemp("tiny") / "llama")


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tinymodels import make_tiny_bert

    return make_tiny_bert(tmp_path_factory.mktemp("tiny") / "bert")


def host_gpu_report():
    """What NVML (the driver) sees on this machine; tests that show GPU state expect exactly this."""
    from ftbench.core.gpu import sample_gpus

    return sample_gpus()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`gpu` tests need CUDA through torch, `nvml` tests only the NVIDIA driver: a GPU box with a CPU build of
    torch still runs the NVML ones, and each skip says which of the two is missing."""
    if any("gpu" in item.keywords for item in items):
        try:
            import torch

            cuda_missing = (
                None
                if torch.cuda.is_available()
                else f"needs CUDA through torch (torch {torch.__version__} sees no CUDA device)"
            )
        except Exception as exc:  # noqa: BLE001
            cuda_missing = f"needs CUDA through torch (torch does not import: {exc})"
        if cuda_missing:
            for item in items:
                if "gpu" in item.keywords:
                    item.add_marker(pytest.mark.skip(reason=cuda_missing))
    if any("nvml" in item.keywords for item in items):
        report = host_gpu_report()
        if not report.available:
            for item in items:
                if "nvml" in item.keywords:
                    item.add_marker(pytest.mark.skip(reason=f"needs an NVIDIA driver: {report.summary}"))
    if shutil.which("tmux") is None:
        for item in items:
            if "e2e" in item.keywords:
                item.add_marker(pytest.mark.skip(reason="tmux is not installed"))


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A private one-node Slurm cluster (munged, slurmctld, slurmd) for this session; `SLURM_CONF` points at it.

    Skips with the reason when Slurm is not installed or cannot start here (not root, no munge, ...).
    """
    from slurmcluster import SlurmCluster, missing_reason

    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        cluster.stop()
        pytest.skip(f"a private Slurm cluster could not start here: {exc}")
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)
    try:
        yield cluster
    finally:
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous
        cluster.stop()
