"""Trainer callbacks that connect a transformers Trainer to the job: events, stop/checkpoint control, GPU samples.

Cheap by construction (the budget is >= 0.98x the tokens/s of the same Trainer without them): the events
callback only acts on the Trainer's own logging/eval/save hooks; the per-step hook is two attribute reads
and, at most every `poll_s`, one `unlink` on the control file; GPU sampling runs on a daemon thread every
~2 s and only when CUDA is present.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

if TYPE_CHECKING:
    from ftbench.core.job_context import JobContext


class EventsCallback(TrainerCallback):
    """`train` events at each logging step, `eval` events after evaluation, `checkpoint` events on save, and
    `training` progress (step of max_steps, ETA) for the Jobs list.

    `state.max_steps` is already the whole run's step count at `on_train_begin` (the Trainer converts epochs to
    steps up front), so progress has a total from the first event. The ETA is this attempt's measured rate
    (steps done since it began over the time it took) times the steps left, so a resumed run's restored steps
    do not make it look faster than it is.
    """

    def __init__(self, emit: Any, token_counter: Any = None, rank0: bool = True, progress: Any = None) -> None:
        self.emit = emit
        self.progress = progress or (
            lambda phase, done, total, **extra: emit("progress", phase=phase, done=done, total=total, **extra)
        )
        self.counter = token_counter
        self.rank0 = rank0
        self._t0 = time.monotonic()
        self._last_t = self._t0
        self._last_tokens = 0
        self._start_step = 0

    def _tokens(self) -> int:
        """Real tokens so far, all ranks together (each rank's collator sees its own share)."""
        return int(getattr(self.counter, "tokens", 0) or 0) * _world_size()

    def _eta(self, state: Any) -> float | None:
        steps_done = state.global_step - self._start_step
        if steps_done <= 0:
            return None
        remaining = max(0, state.max_steps - state.global_step)
        return round((time.monotonic() - self._t0) / steps_done * remaining, 1)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._t0 = self._last_t = time.monotonic()
        self._last_tokens = self._tokens()
        self._start_step = state.global_step
        if self.rank0:
            self.progress("training", state.global_step, state.max_steps)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not self.rank0 or not logs:
            return
        if "loss" in logs:
            now = time.monotonic()
            tokens = self._tokens()
            dt = max(now - self._last_t, 1e-9)
            eta = self._eta(state)
            self.emit(
                "train",
                step=state.global_step,
                max_steps=state.max_steps,
                epoch=round(state.epoch or 0.0, 4),
                loss=logs.get("loss"),
                lr=logs.get("learning_rate"),
                grad_norm=logs.get("grad_norm"),
                tokens=tokens,
                tokens_per_s=round((tokens - self._last_tokens) / dt, 1),
                eta_s=eta,
                **{k: v for k, v in logs.items() if k.startswith(("rewards/", "logps/"))},
            )
            self.progress("training", state.global_step, state.max_steps, eta_s=eta)
            self._last_t, self._last_tokens = now, tokens
        elif "eval_loss" in logs:
            metrics = {
                k.removeprefix("eval_"): v
                for k, v in logs.items()
                if k.startswith("eval_") and isinstance(v, (int, float))
            }
            loss = metrics.pop("loss")
            perplexity = metrics.pop("perplexity", None)
            if perplexity is None:
                import math

                perplexity = math.exp(min(loss, 50.0))
            self.emit(
                "eval",
                step=state.global_step,
                epoch=round(state.epoch or 0.0, 4),
                eval_loss=loss,
                perplexity=perplexity,
                **metrics,
            )

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.rank0:
            from pathlib import Path

            from ftbench.core.checkpoint_trust import mark_checkpoint

            checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if checkpoint.is_dir():  # signed so that resuming it later needs no --trust-checkpoint
                mark_checkpoint(Path(args.output_dir).parent, checkpoint)
            self.emit("checkpoint", step=state.global_step, path=f"checkpoints/checkpoint-{state.global_step}")


class ControlCallback(TrainerCallback):
    """Stop (save a checkpoint, then end) and checkpoint-now requests, polled between steps."""

    def __init__(self, ctx: JobContext, poll_s: float = 0.5) -> None:
        self.ctx = ctx
        self.poll_s = poll_s
        self._next_poll = 0.0
        self.stopped = False

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        world = _world_size()
        if world > 1:  # every rank must take the same decision at the same step, or collectives hang
            stop, checkpoint = _all_max(args, bool(self.ctx.stop_requested), self.ctx.control_requested("checkpoint"))
        else:
            stop, checkpoint = bool(self.ctx.stop_requested), False
            now = time.monotonic()
            if not stop and now >= self._next_poll:
                self._next_poll = now + self.poll_s
                checkpoint = self.ctx.control_requested("checkpoint")
        if stop:
            self.stopped = True
            control.should_save = True
            control.should_training_stop = True
        elif checkpoint:
            self.ctx.log(f"Checkpoint requested; saving at step {state.global_step}.")
            control.should_save = True


def _world_size() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _all_max(args: Any, *flags: bool) -> list[bool]:
    import torch
    import torch.distributed as dist

    device = args.device if dist.get_backend() == "nccl" else "cpu"
    tensor = torch.tensor([float(f) for f in flags], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return [bool(v) for v in tensor.tolist()]


class GpuSampler:
    """A daemon thread that emits a `gpu` event every `interval_s` (NVML devices + torch peak allocated)."""

    def __init__(self, emit: Any, interval_s: float = 2.0) -> None:
        self.emit = emit
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        import torch

        if not torch.cuda.is_available():
            return False
        self._thread = threading.Thread(target=self._run, name="gpu-sampler", daemon=True)
        self._thread.start()
        return True

    def sample_once(self) -> None:
        import torch

        try:
            from ftbench.core.gpu import sample_gpus

            report = sample_gpus()
            devices = [g.as_event() for g in report.gpus] if report.available else []
        except Exception:  # noqa: BLE001 - monitoring must never take training down
            devices = []
        peak = [torch.cuda.max_memory_allocated(i) for i in range(torch.cuda.device_count())]
        self.emit("gpu", devices=devices, torch_peak_allocated=sum(peak))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample_once()

    def stop(self) -> None:
        self._stop.set()
