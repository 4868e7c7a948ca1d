"""NVML sampling that never raises: the TUI's GPU pane and the training worker's `gpu` events.

A box without an NVIDIA driver, without `pynvml`, or with a GPU that refuses one query must still show a
working app. So every query is wrapped nvitop-style: any NVML error gives `None` ("n/a") for that one
number, and a failure to initialise NVML gives a report with `available=False` and a short reason the pane
prints instead of the numbers. `pynvml` is imported lazily; it is light, but nothing here runs at import.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

REASON_NOT_INSTALLED = "pynvml not installed"
REASON_NO_DRIVER = "no NVIDIA driver"
REASON_NO_GPU = "no GPU"


@dataclass(frozen=True)
class GpuInfo:
    """One device at one moment; any field NVML could not read is None."""

    index: int
    name: str
    mem_used: int | None = None  # bytes
    mem_total: int | None = None  # bytes
    util: float | None = None  # percent
    temp: float | None = None  # degrees C
    power: float | None = None  # watts
    power_limit: float | None = None  # watts

    @property
    def mem_fraction(self) -> float | None:
        if self.mem_used is None or not self.mem_total:
            return None
        return self.mem_used / self.mem_total

    def as_event(self) -> dict[str, Any]:
        """The per-device shape of a `gpu` event in events.jsonl."""
        return asdict(self)


@dataclass(frozen=True)
class GpuReport:
    """Every device, or why there are none."""

    available: bool
    gpus: list[GpuInfo] = field(default_factory=list)
    reason: str = ""
    driver: str | None = None

    @property
    def summary(self) -> str:
        if not self.available:
            return f"no NVIDIA GPU ({self.reason})" if self.reason else "no NVIDIA GPU"
        return f"{len(self.gpus)} GPU" + ("s" if len(self.gpus) != 1 else "")


NOT_SAMPLED = "GPU: sampling…"  # before the first sample lands (the app samples about a second after start)


def headline(report: GpuReport | None) -> str:
    """The one wording of "what GPU is there" that every pane and screen uses, so no two screens disagree."""
    if report is None:
        return NOT_SAMPLED
    return f"GPU: {report.summary}"


def _na(fn: Callable[[], T]) -> T | None:
    """Run one NVML query; any error (unsupported, lost GPU, ...) is n/a rather than an exception."""
    try:
        return fn()
    except Exception:  # noqa: BLE001 - NVMLError has many subclasses; all mean "not available"
        return None


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class GpuSampler:
    """Initialises NVML once (it costs tens of ms) and samples all devices on demand, thread-safely."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nvml: Any = None
        self._failure: str | None = None

    def _init(self) -> Any:
        if self._nvml is not None or self._failure is not None:
            return self._nvml
        try:
            import pynvml
        except ImportError:
            self._failure = REASON_NOT_INSTALLED
            return None
        try:
            pynvml.nvmlInit()
        except Exception as exc:  # noqa: BLE001 - library missing, driver not loaded, no permission ...
            self._failure = _init_reason(pynvml, exc)
            return None
        self._nvml = pynvml
        return pynvml

    def sample(self) -> GpuReport:
        with self._lock:
            try:
                nvml = self._init()
                if nvml is None:
                    return GpuReport(False, reason=self._failure or REASON_NO_DRIVER)
                count = _na(nvml.nvmlDeviceGetCount) or 0
                if count <= 0:
                    return GpuReport(False, reason=REASON_NO_GPU)
                driver = _na(lambda: _text(nvml.nvmlSystemGetDriverVersion()))
                return GpuReport(True, [_device(nvml, i) for i in range(count)], driver=driver)
            except Exception as exc:  # noqa: BLE001 - the pane must never take the app down
                return GpuReport(False, reason=f"NVML error: {exc}")

    def close(self) -> None:
        with self._lock:
            if self._nvml is not None:
                _na(self._nvml.nvmlShutdown)
            self._nvml, self._failure = None, None


def _init_reason(nvml: Any, exc: Exception) -> str:
    names = {type(exc).__name__}
    for attr, reason in (
        ("NVMLError_LibraryNotFound", REASON_NO_DRIVER),
        ("NVMLError_DriverNotLoaded", REASON_NO_DRIVER),
        ("NVMLError_NoPermission", "no permission to query the NVIDIA driver"),
    ):
        cls = getattr(nvml, attr, None)
        if (isinstance(cls, type) and isinstance(exc, cls)) or attr in names:
            return reason
    return f"{REASON_NO_DRIVER} ({exc})"


def _device(nvml: Any, index: int) -> GpuInfo:
    handle = _na(lambda: nvml.nvmlDeviceGetHandleByIndex(index))
    if handle is None:
        return GpuInfo(index=index, name="n/a")
    mem = _na(lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
    util = _na(lambda: nvml.nvmlDeviceGetUtilizationRates(handle))
    temp_sensor = getattr(nvml, "NVML_TEMPERATURE_GPU", 0)
    power_mw = _na(lambda: nvml.nvmlDeviceGetPowerUsage(handle))
    limit_mw = _na(lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle))
    return GpuInfo(
        index=index,
        name=_na(lambda: _text(nvml.nvmlDeviceGetName(handle))) or "n/a",
        mem_used=_na(lambda: int(mem.used)) if mem is not None else None,
        mem_total=_na(lambda: int(mem.total)) if mem is not None else None,
        util=_na(lambda: float(util.gpu)) if util is not None else None,
        temp=_na(lambda: float(nvml.nvmlDeviceGetTemperature(handle, temp_sensor))),
        power=power_mw / 1000.0 if isinstance(power_mw, (int, float)) else None,
        power_limit=limit_mw / 1000.0 if isinstance(limit_mw, (int, float)) else None,
    )


_default = GpuSampler()


def sample_gpus() -> GpuReport:
    """All GPUs now, or `available=False` with a reason; never raises."""
    return _default.sample()


def reset_sampler() -> None:
    """Forget NVML state (tests, or after a driver reload)."""
    _default.close()


def compute_capability(index: int) -> tuple[int, int] | None:
    """CUDA compute capability of GPU `index` (8.0 and up do bf16), or None when NVML cannot say."""
    nvml = _default._init()
    if nvml is None:
        return None
    found = _na(lambda: nvml.nvmlDeviceGetCudaComputeCapability(nvml.nvmlDeviceGetHandleByIndex(index)))
    return (int(found[0]), int(found[1])) if found else None


def gpu_from_event(device: dict[str, Any]) -> GpuInfo:
    """A device dict from a `gpu` event back into a GpuInfo (unknown keys ignored, missing are n/a)."""
    known = {k: device.get(k) for k in GpuInfo.__dataclass_fields__ if k in device}
    known.setdefault("index", 0)
    known.setdefault("name", "n/a")
    return GpuInfo(**known)
