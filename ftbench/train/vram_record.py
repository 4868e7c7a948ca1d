"""A GPU run's measured memory beside its estimate, kept in the run's result and in the workspace calibration.

Measured at the end of training on the run's device: torch's peak reserved memory (what the allocator held at
its worst: the estimate's parts plus fragmentation) plus the CUDA context, the process's memory as NVML sees it
minus what torch's allocator holds now. The context is what the estimator's overhead used to assume (~0.5 GiB);
core/vram_calibration.py turns the recorded entries into the measured context and the median ratio the Models
screen shows.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ftbench.core.estimate import estimate_for_recipe
from ftbench.core.recipe import Recipe
from ftbench.core.vram_calibration import record_run


def cuda_context_bytes(device: int) -> int | None:
    """This process's GPU memory in NVML minus torch's reserved memory; None when NVML cannot tell (no
    driver access, or a PID namespace that hides our process)."""
    import torch

    try:
        import pynvml

        pynvml.nvmlInit()
        uuid = str(torch.cuda.get_device_properties(device).uuid)
        handle = pynvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else f"GPU-{uuid}")
        for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
            if proc.pid == os.getpid() and proc.usedGpuMemory:
                return max(0, int(proc.usedGpuMemory) - torch.cuda.memory_reserved(device))
    except Exception:  # noqa: BLE001 - a measurement we cannot take is simply not recorded
        return None
    return None


def record_vram(recipe: Recipe, workspace_root: Path) -> dict[str, Any] | None:
    """{estimate, measured_peak, torch_peak_allocated, torch_peak_reserved, cuda_context} for a GPU run, also
    appended to the workspace calibration; None on the CPU."""
    import torch

    if not torch.cuda.is_available():
        return None
    device = torch.cuda.current_device()
    reserved = torch.cuda.max_memory_reserved(device)
    context = cuda_context_bytes(device)
    estimate = estimate_for_recipe(recipe)
    entry = {
        "model": recipe.model.path,
        "method": recipe.method.name,
        "seq_len": recipe.data.max_length,
        "batch": recipe.training.batch_size,
        "estimate": estimate.total if estimate else None,
        "measured_peak": reserved + (context or 0),
        "torch_peak_allocated": torch.cuda.max_memory_allocated(device),
        "torch_peak_reserved": reserved,
        "cuda_context": context,
    }
    record_run(workspace_root, entry)
    return entry
