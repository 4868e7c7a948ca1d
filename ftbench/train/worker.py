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
from ftbench.core.humanize import human_size
from ftbench.core.layout import JobLayout
from ftbench.core.recipe import Recipe, validate_recipe
from ftbench.core.remote_code import job_trust
from ftbench.train.session import Session

if TYPE_CHECKING:
    from ftbench.core.job_context import JobContext


def run(ctx: JobContext) -> None:
    """Entry point inside the job process."""
    recipe = job_trust(validate_recipe(ctx.params["recipe"], source=f"{ctx.job_dir}/recipe.yaml"))
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
    # Final weights are saved only when every step ran: then a stop that came meanwhile was too late to matter.
    ctx.completed = any(name in result for name in (JobLayout.ADAPTER, JobLayout.MODEL))
    if ctx.stop_requested and not ctx.completed:
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


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
CHECKPOINT_OVERHEAD = 64 << 10  # scheduler.pt, rng_state.pth, training_args.bin, trainer_state.json (measured ~35 KB)


def model_bytes(path: str) -> int:
    p = Path(path)
    if not p.is_dir():
        return 0
    return sum(f.stat().st_size for f in p.iterdir() if f.suffix in WEIGHT_SUFFIXES and f.is_file())


def companion_bytes(path: str) -> int:
    """Tokenizer, config and template files: every checkpoint and the final weights carry a copy."""
    p = Path(path)
    if not p.is_dir():
        return 0
    return sum(f.stat().st_size for f in p.iterdir() if f.is_file() and f.suffix not in WEIGHT_SUFFIXES)


def checkpoint_sizes(recipe: Recipe) -> tuple[int, int]:
    """(one checkpoint, the final weights) in bytes, from the model folder's measured files and the trainable
    parameters: a checkpoint holds the trainable weights in fp32 plus Adam's two fp32 states (12 bytes each),
    the tokenizer files and the Trainer's state; the final weights hold the trainable weights and tokenizer."""
    from ftbench.core.estimate import estimate_for_recipe

    weights, companions = model_bytes(recipe.model.path), companion_bytes(recipe.model.path)
    estimate = estimate_for_recipe(recipe)
    if recipe.method.name == "full":
        params = estimate.params if estimate else weights // 2
        return max(weights, params * 4) + params * 8 + companions + CHECKPOINT_OVERHEAD, weights + companions
    trainable = estimate.trainable_params if estimate else weights // 40
    return trainable * 12 + companions + CHECKPOINT_OVERHEAD, trainable * 4 + companions


def needed_disk(recipe: Recipe) -> int:
    """Bytes the run may write: `save_total_limit` checkpoints (one more while the oldest is rotated out) and
    the final weights."""
    per_checkpoint, final = checkpoint_sizes(recipe)
    return per_checkpoint * (recipe.training.save_total_limit + 1) + final


def check_disk(recipe: Recipe, run_dir: Path) -> None:
    per_checkpoint, _final = checkpoint_sizes(recipe)
    need = needed_disk(recipe)
    free = shutil.disk_usage(run_dir).free
    if need > free:
        raise FtbenchError(
            f"Not enough free disk in {run_dir}: {recipe.training.save_total_limit + 1} checkpoints of about "
            f"{human_size(per_checkpoint)} and the final weights need about {human_size(need)}, "
            f"{human_size(free)} is free.",
            "Free some space, lower training.save_total_limit, or use a LoRA method.",
        )
