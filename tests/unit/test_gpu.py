"""GPU sampling with pynvml replaced by fakes: missing library, no driver, fake devices, failing queries."""

from __future__ import annotations

import sys
import types
from types import SimpleNamespace

import pytest

from ftbench.core import gpu
from ftbench.core.gpu import GpuSampler, gpu_from_event
from ftbench.core.humanize import human_gib

GIB = 1024**3


class NVMLError(Exception):
    pass


class NVMLError_LibraryNotFound(NVMLError):  # noqa: N801 - pynvml's own name
    pass


class NVMLError_NotSupported(NVMLError):  # noqa: N801
    pass


def fake_nvml(devices: list[dict], init_error: Exception | None = None) -> types.ModuleType:
    """A pynvml stand-in serving `devices`; a value that is an exception is raised by that query."""
    mod = types.ModuleType("pynvml")
    mod.NVMLError = NVMLError
    mod.NVMLError_LibraryNotFound = NVMLError_LibraryNotFound
    mod.NVML_TEMPERATURE_GPU = 0
    calls = {"init": 0}

    def query(key):
        def fn(handle, *args):
            value = devices[handle][key]
            if isinstance(value, Exception):
                raise value
            return value

        return fn

    def init():
        calls["init"] += 1
        if init_error:
            raise init_error

    mod.calls = calls
    mod.nvmlInit = init
    mod.nvmlShutdown = lambda: None
    mod.nvmlDeviceGetCount = lambda: len(devices)
    mod.nvmlSystemGetDriverVersion = lambda: b"575.51"
    mod.nvmlDeviceGetHandleByIndex = lambda i: i
    mod.nvmlDeviceGetName = query("name")
    mod.nvmlDeviceGetMemoryInfo = query("mem")
    mod.nvmlDeviceGetUtilizationRates = query("util")
    mod.nvmlDeviceGetTemperature = query("temp")
    mod.nvmlDeviceGetPowerUsage = query("power")
    mod.nvmlDeviceGetEnforcedPowerLimit = query("limit")
    return mod


def h100(**over):
    dev = {
        "name": "NVIDIA H100 80GB HBM3",
        "mem": SimpleNamespace(used=40 * GIB, total=80 * GIB, free=40 * GIB),
        "util": SimpleNamespace(gpu=87, memory=40),
        "temp": 61,
        "power": 412_500,
        "limit": 700_000,
    }
    dev.update(over)
    return dev


@pytest.fixture
def use_nvml(monkeypatch):
    def install(mod):
        monkeypatch.setitem(sys.modules, "pynvml", mod)
        return GpuSampler()

    return install


def test_pynvml_missing_gives_reason(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` raise ImportError
    report = GpuSampler().sample()
    assert not report.available
    assert report.reason == "pynvml not installed"
    assert report.summary == "no NVIDIA GPU (pynvml not installed)"


def test_library_not_found_is_no_driver(use_nvml):
    sampler = use_nvml(fake_nvml([], init_error=NVMLError_LibraryNotFound("libnvidia-ml.so.1 not found")))
    report = sampler.sample()
    assert (report.available, report.reason, report.gpus) == (False, "no NVIDIA driver", [])
    # init is tried once, not on every 2-second sample
    sampler.sample()
    assert sys.modules["pynvml"].calls["init"] == 1


def test_unknown_init_error_still_a_report(use_nvml):
    report = use_nvml(fake_nvml([], init_error=RuntimeError("boom"))).sample()
    assert not report.available
    assert report.reason.startswith("no NVIDIA driver") and "boom" in report.reason


def test_zero_devices_is_no_gpu(use_nvml):
    report = use_nvml(fake_nvml([])).sample()
    assert (report.available, report.reason) == (False, "no GPU")


def test_fake_devices_numbers(use_nvml):
    report = use_nvml(fake_nvml([h100(), h100(name=b"NVIDIA A10G", temp=40)])).sample()
    assert report.available and report.driver == "575.51"
    first, second = report.gpus
    assert first.index == 0 and first.name == "NVIDIA H100 80GB HBM3"
    assert (first.mem_used, first.mem_total, first.mem_fraction) == (40 * GIB, 80 * GIB, 0.5)
    assert (first.util, first.temp, first.power, first.power_limit) == (87.0, 61.0, 412.5, 700.0)
    assert second.name == "NVIDIA A10G" and second.temp == 40.0 and second.index == 1
    assert report.summary == "2 GPUs"


def test_failing_query_is_na_not_exception(use_nvml):
    dev = h100(power=NVMLError_NotSupported("power"), temp=NVMLError("gpu lost"), util=NVMLError("x"))
    info = use_nvml(fake_nvml([dev])).sample().gpus[0]
    assert info.power is None and info.temp is None and info.util is None
    assert info.mem_used == 40 * GIB  # the rest still reads


def test_count_failure_mid_run(use_nvml, monkeypatch):
    mod = fake_nvml([h100()])
    sampler = use_nvml(mod)
    assert sampler.sample().available

    def broken():
        raise NVMLError("GPU is lost")

    monkeypatch.setattr(mod, "nvmlDeviceGetCount", broken)
    report = sampler.sample()
    assert not report.available and report.reason == "no GPU"


def test_event_round_trip_and_module_api(use_nvml, monkeypatch):
    monkeypatch.setattr(gpu, "_default", use_nvml(fake_nvml([h100()])))
    info = gpu.sample_gpus().gpus[0]
    event = info.as_event()
    assert set(event) >= {"index", "name", "mem_used", "mem_total", "util", "temp", "power"}
    assert gpu_from_event(event) == info
    assert gpu_from_event({"index": 3, "mem_used": 5}).name == "n/a"


def test_human_gib():
    assert human_gib(None) == "n/a"
    assert human_gib(40 * GIB) == "40.0 GiB"
    assert human_gib(300 * 1024**2) == "300 MiB"


@pytest.mark.nvml
def test_real_nvml_on_a_gpu_box():
    """On a machine with an NVIDIA GPU: real numbers, within physical bounds."""
    report = GpuSampler().sample()
    assert report.available, report.reason
    for info in report.gpus:
        assert "NVIDIA" in info.name.upper() or info.name != "n/a"
        assert info.mem_total and 0 < info.mem_total < 2 * 1024**4
        assert info.mem_used is not None and 0 <= info.mem_used <= info.mem_total
        assert info.util is None or 0 <= info.util <= 100
        assert info.temp is None or 0 < info.temp < 120
        assert info.power is None or 0 < info.power <= (info.power_limit or 2000) * 1.5
