"""The training job target (`ftbench.train.worker:run`, kind "train"): preflight, then the task's module.

Preflight fails in about a second with one line, before any model loads: the recipe, the model folder
(exists, has config.json, remote code allowed), the data (readable, non-empty, right format, see the task's
`preflight`), bitsandbytes for qlora, the device count, a writable run folder and enough free disk for
`save_total_limit` checkpoints plus the outputs.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftbench.core.atomic import atomic_write_text
from ftbench.core.errors import FtbenchError
from ftbench.core.layout import JobLayout
from ftbench.core.recipe import Recipe, validate_recipe
from ftbench.train.session import Session

if TYPE_CHECKING:
    from ftbench.core.job_context import JobContext


def run(ctx: JobContext) -> None:
    """Entry point inside the job process."""
    recipe = validate_recipe(ctx.params["recipe"], source=f"{ctx.job_dir}/recipe.yaml")
    ctx.cooperative_stop = True
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    recipe_path = JobLayout(ctx.job_dir).recipe
    if not recipe_path.exists():
        atomic_write_text(recipe_path, recipe.to_yaml())
    from ftbench.core.slurm import slurm_nodes
    from ftbench.train.distributed import process_count

    n = process_count(recipe)
    if n > 1 or slurm_nodes() > 1:
        from ftbench.train.distributed import launch
        from ftbench.train.model import resolve_precision

        preflight(recipe, ctx.job_dir)
        result = launch(recipe, ctx, n, resolve_precision(recipe.training.precision))
    else:
        result = train_in_process(recipe, ctx)
    if ctx.stop_requested:
        ctx.log(f"Stopped at step {result.get('steps')}; resume with `ftbench resume {ctx.id}`.")
    ctx.set_result(**result)


def train_in_process(recipe: Recipe, ctx: JobContext, distributed: bool = False) -> dict[str, Any]:
    """Preflight and the task's training in this process (one rank of several when `distributed`)."""
    from ftbench.train.tasks import task_module

    ctx.progress("preflight", 0, 1)
    module = task_module(recipe.task)
    config = preflight(recipe, ctx.job_dir)
    from ftbench.train.model import resolve_precision

    rank0 = ctx.rank == 0
    session = Session(
        recipe=recipe,
        ctx=ctx,
        run_dir=Path(ctx.job_dir),
        precision=resolve_precision(recipe.training.precision),
        rank0=rank0,
    )
    session.info["model_type"] = config.get("model_type")
    if hasattr(module, "preflight"):
        module.preflight(recipe, session)
    ctx.progress("preflight", 1, 1)
    import torch

    if not distributed:
        torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))
    result = module.train(recipe, ctx, session)
    if rank0 and not distributed:
        from ftbench.train.vram_record import record_vram

        vram = record_vram(recipe, ctx.workspace.root)  # None on the CPU
        if vram:
            result["vram"] = vram
    return result


def preflight(recipe: Recipe, run_dir: Path) -> dict[str, Any]:
    """Checks that need no model weights; returns the model's config.json."""
    from ftbench.train.model import check_bitsandbytes, check_model_path

    config = check_model_path(recipe)
    check_bitsandbytes(recipe)
    check_devices(recipe)
    check_writable(run_dir)
    check_disk(recipe, run_dir)
    return config


def check_devices(recipe: Recipe) -> None:
    """`training.devices` must fit the GPUs here (or FTBENCH_DDP_CPU=1 for CPU processes)."""
    from ftbench.train.distributed import process_count

    process_count(recipe)


def check_writable(run_dir: Path) -> None:
    probe = run_dir / ".write-test"
    try:
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise FtbenchError(
            f"The run folder {run_dir} is not writable: {exc.strerror}.",
            "Check the workspace's permissions and free space.",
        ) from exc


def model_bytes(path: str) -> int:
    p = Path(path)
    if not p.is_dir():
        return 0
    return sum(f.stat().st_size for f in p.iterdir() if f.suffix in (".safetensors", ".bin", ".pt") and f.is_file())


def needed_disk(recipe: Recipe) -> int:
    """Bytes the run may write: each kept checkpoint holds the trainable weights plus ~2x for Adam state."""
    weights = model_bytes(recipe.model.path)
    if recipe.method.name == "full":
        per_ckpt = weights * 3
        final = weights
    else:
        per_ckpt = max(weights // 20, 1 << 20)
        final = per_ckpt // 3
    return per_ckpt * (recipe.training.save_total_limit + 1) + final


def check_disk(recipe: Recipe, run_dir: Path) -> None:
    need = needed_disk(recipe)
    free = shutil.disk_usage(run_dir).free
    if need > free:
        raise FtbenchError(
            f"Not enough free disk in {run_dir}: the checkpoints and outputs need about {need / 2**30:.1f} GiB, {free / 2**30:.1f} GiB is free.",
            "Free some space, lower training.save_total_limit, or use a LoRA method.",
        )
