"""Everything the run monitor shows, folded incrementally from a run's events.

The monitor reads events.jsonl from byte 0 when it opens (so a reopened app shows the whole history) and
then only the new bytes; `RunView.add` folds each event in O(1), keeping the smoothed loss as a running
EMA with the same bias correction as `events.ema`, so a 100k-step run costs no more per update than a
short one. Charts take `downsample`d copies of the series.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ftbench.core.events import downsample
from ftbench.core.gpu import GpuInfo, GpuReport, gpu_from_event

GPU_HISTORY = 120


@dataclass
class RunView:
    """The folded run. Per step it keeps the newest attempt's values: a resumed attempt restarts from its
    checkpoint and logs again the steps the killed attempt had logged past it, so any train (or eval) point at
    or after a newly logged step is superseded, and every curve stays one line, monotone in step.
    """

    alpha: float = 0.1
    loss: list[tuple[float, float]] = field(default_factory=list)
    loss_ema: list[tuple[float, float]] = field(default_factory=list)
    eval_loss: list[tuple[float, float]] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    tokens_per_s: list[float] = field(default_factory=list)
    objective: list[float] = field(default_factory=list)  # the key metric of an orpo/simpo/kto/grpo run
    objective_metric: str = ""  # its name: reward or margin
    last_train: dict[str, Any] = field(default_factory=dict)
    last_eval: dict[str, Any] = field(default_factory=dict)
    gen_metrics: dict[str, float] = field(default_factory=dict)  # the newest recipe `eval:` scores, without gen_
    gen_step: float | None = None
    last_progress: dict[str, Any] = field(default_factory=dict)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    gpu_history: dict[int, list[float]] = field(default_factory=dict)
    gpu_latest: list[GpuInfo] = field(default_factory=list)
    torch_peak_allocated: int | None = None
    attempts: set[int] = field(default_factory=set)
    _ema_state: list[tuple[float, int]] = field(default_factory=list)  # (accumulator, n) after each loss point
    _scalar_steps: dict[str, list[float]] = field(default_factory=dict)

    def add_all(self, events: Iterable[dict[str, Any]]) -> int:
        count = 0
        for event in events:
            self.add(event)
            count += 1
        return count

    def add(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if isinstance(event.get("attempt"), int):
            self.attempts.add(event["attempt"])
        if kind == "train":
            step = event.get("step")
            self.last_train = event
            if _num(step):
                self._supersede_train(float(step))
            loss = event.get("loss")
            if _num(loss) and _num(step):
                acc, n = self._ema_state[-1] if self._ema_state else (0.0, 0)
                acc, n = (1 - self.alpha) * acc + self.alpha * loss, n + 1
                self._ema_state.append((acc, n))
                self.loss.append((float(step), float(loss)))
                self.loss_ema.append((float(step), acc / (1 - (1 - self.alpha) ** n)))
            for key, series in (("lr", self.lr), ("grad_norm", self.grad_norm), ("tokens_per_s", self.tokens_per_s)):
                if _num(event.get(key)) and _num(step):
                    series.append(float(event[key]))
                    self._scalar_steps.setdefault(key, []).append(float(step))
        elif kind == "objective":
            step, value = event.get("step"), event.get("value")
            if _num(step) and _num(value):
                self.objective_metric = str(event.get("metric") or "objective")
                self._trim_series("objective", self.objective, float(step))
                self.objective.append(float(value))
                self._scalar_steps.setdefault("objective", []).append(float(step))
        elif kind == "eval":
            step = event.get("step")
            self.last_eval = event
            if _num(step):
                del self.eval_loss[_count_below(self.eval_loss, step) :]
            if _num(event.get("eval_loss")) and _num(step):
                self.eval_loss.append((float(step), float(event["eval_loss"])))
            gen = {k[4:]: float(v) for k, v in event.items() if k.startswith("gen_") and _num(v)}
            if gen:  # generation scores from the recipe's `eval:` section (evaluate/in_training.py)
                self.gen_metrics, self.gen_step = gen, float(step) if _num(step) else None
        elif kind == "progress":
            self.last_progress = event
        elif kind == "checkpoint":
            self.checkpoints.append(event)
        elif kind == "gpu":
            devices = [gpu_from_event(d) for d in event.get("devices") or [] if isinstance(d, dict)]
            self.gpu_latest = devices
            for dev in devices:
                hist = self.gpu_history.setdefault(dev.index, [])
                if dev.mem_fraction is not None:
                    hist.append(dev.mem_fraction)
                    del hist[:-GPU_HISTORY]
            if _num(event.get("torch_peak_allocated")):
                self.torch_peak_allocated = int(event["torch_peak_allocated"])

    def _supersede_train(self, step: float) -> None:
        """Drop train and eval points at or after `step` (logged by an earlier attempt past its checkpoint)."""
        keep = _count_below(self.loss, step)
        if keep < len(self.loss):
            del self.loss[keep:], self.loss_ema[keep:], self._ema_state[keep:]
        for key, series in (("lr", self.lr), ("grad_norm", self.grad_norm), ("tokens_per_s", self.tokens_per_s)):
            self._trim_series(key, series, step)
        keep = _count_below(self.eval_loss, step)
        del self.eval_loss[keep:]

    def _trim_series(self, key: str, series: list[float], step: float) -> None:
        """Drop the points of a step-keyed scalar series at or after `step`."""
        steps = self._scalar_steps.get(key, [])
        n = len(steps)
        while n and steps[n - 1] >= step:
            n -= 1
        del steps[n:], series[n:]

    def gpu_report(self) -> GpuReport | None:
        if not self.gpu_latest:
            return None
        return GpuReport(True, list(self.gpu_latest))

    def chart_series(
        self, max_points: int, smoothed: bool = True, raw: bool = True
    ) -> list[tuple[str, list[tuple[float, float]]]]:
        out = []
        if raw:
            out.append(("loss", downsample(self.loss, max_points)))
        if smoothed:
            out.append(("loss (ema)", downsample(self.loss_ema, max_points)))
        out.append(("eval_loss", downsample(self.eval_loss, max_points)))
        return out

    def best_eval(self) -> tuple[float, float] | None:
        return min(self.eval_loss, key=lambda p: p[1]) if self.eval_loss else None


# Generation metrics in the order a reader looks for them (label accuracy decides label-style runs).
GEN_ORDER = ("label_accuracy", "exact_match", "token_f1", "rougeL", "rouge1", "rouge2", "bleu", "chrf", "perplexity")


def gen_keys(*metrics: dict[str, float]) -> list[str]:
    """The generation metrics any of `metrics` has, in GEN_ORDER."""
    return [k for k in GEN_ORDER if any(k in m for m in metrics)]


def gen_value(metrics: dict[str, float], key: str) -> str:
    value = metrics.get(key)
    return "-" if value is None else f"{value:.2f}" if key == "perplexity" else f"{value:.1f}"


def gen_metrics_line(metrics: dict[str, float], step: float | None) -> str:
    """The monitor's line for the newest generation eval: 'generation eval @ 40: label_accuracy 87.5 · ...'."""
    where = f" @ {step:g}" if step is not None else ""
    return f"generation eval{where}: " + " · ".join(f"{k} {gen_value(metrics, k)}" for k in gen_keys(metrics))


def _num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _count_below(points: list[tuple[float, float]], step: float) -> int:
    """How many leading points of a step-ordered series come before `step` (scans from the end: O(superseded))."""
    n = len(points)
    while n and points[n - 1][0] >= step:
        n -= 1
    return n
