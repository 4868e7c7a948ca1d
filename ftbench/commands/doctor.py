"""`ftbench doctor`: what this box can do — versions, GPUs, CUDA, llama.cpp, disk, workspace health.

The first thing to run on a new GPU box, and what to paste into a bug report. Every probe is isolated: a
library that fails to import is reported as such, never as a crash of the doctor itself.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import platform
import shutil
import sys
from typing import Any

from ftbench import __version__
from ftbench.cli import print_json, subparser
from ftbench.core.workspace import Workspace

PACKAGES = (
    ("torch", "torch"),
    ("transformers", "transformers"),
    ("peft", "peft"),
    ("huggingface-hub", "huggingface_hub"),
    ("datasets", "datasets"),
    ("accelerate", "accelerate"),
    ("bitsandbytes", "bitsandbytes"),
    ("llama-cpp-python", "llama_cpp"),
    ("gguf", "gguf"),
    ("textual", "textual"),
    ("nvidia-ml-py", "pynvml"),
)
MIN_FREE_GB = 5.0


def register(sub: Any) -> None:
    p = subparser(sub, "doctor", "check versions, GPUs, CUDA, llama.cpp, free disk and workspace health")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_doctor)


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for dist, _module in PACKAGES:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


def cuda_info() -> dict[str, Any]:
    try:
        import torch
    except Exception as exc:  # noqa: BLE001
        return {"available": False, "reason": f"torch does not import: {exc}"}
    info: dict[str, Any] = {"available": torch.cuda.is_available(), "torch_cuda": torch.version.cuda}
    if info["available"]:
        info["devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        info["bf16"] = torch.cuda.is_bf16_supported()
    else:
        info["reason"] = "torch is a CPU build" if torch.version.cuda is None else "no CUDA device visible"
    return info


def llama_cpp_info() -> dict[str, Any]:
    try:
        import llama_cpp
    except Exception as exc:  # noqa: BLE001
        return {"available": False, "reason": f"llama_cpp does not import: {exc}"}
    system = llama_cpp.llama_print_system_info()
    return {
        "available": True,
        "version": llama_cpp.__version__,
        "gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()),
        "system_info": system.decode() if isinstance(system, bytes) else str(system),
    }


def gpu_info() -> dict[str, Any]:
    from ftbench.core.gpu import sample_gpus
    from ftbench.core.humanize import human_gib

    report = sample_gpus()
    return {
        "available": report.available,
        "reason": report.reason,
        "driver": report.driver,
        "gpus": [
            {**g.as_event(), "memory": f"{human_gib(g.mem_used)} / {human_gib(g.mem_total)}"} for g in report.gpus
        ],
    }


def workspace_health(ws: Workspace) -> dict[str, Any]:
    from ftbench.commands.jobs import list_jobs

    warnings: list[str] = []
    from ftbench.core.registry import Registry

    registry = Registry(ws, on_warning=warnings.append)
    registry.jobs()
    states: dict[str, int] = {}
    for record in list_jobs(ws):
        states[record.get("state") or "?"] = states.get(record.get("state") or "?", 0) + 1
    from ftbench.core.logind import check_logout

    logout = check_logout()
    if logout:
        warnings.append(f"{logout[0]}; fix: {logout[1]}")
    usage = shutil.disk_usage(ws.root)
    free_gb = usage.free / 1e9
    if free_gb < MIN_FREE_GB:
        warnings.append(f"only {free_gb:.1f} GB free in {ws.root}; checkpoints and exports need more")
    return {
        "root": str(ws.root),
        "config": str(ws.config_path),
        "jobs": states,
        "free_disk_gb": round(free_gb, 1),
        "demo_ready": (ws.root / "datasets" / "demo" / ".complete").exists(),
        "warnings": warnings,
    }


def cmd_doctor(args: argparse.Namespace, ws: Workspace) -> int:
    report = {
        "ftbench": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "gpu": gpu_info(),
        "cuda": cuda_info(),
        "llama_cpp": llama_cpp_info(),
        "workspace": workspace_health(ws),
    }
    missing = [name for name, version in report["packages"].items() if version is None]
    if args.json:
        print_json(report)
        return 1 if missing else 0
    ok, bad = "✓", "✗"
    print(f"ftbench {__version__} on Python {report['python']} ({report['platform']})")
    for name, version in report["packages"].items():
        print(f"  {ok if version else bad} {name:18} {version or 'not installed'}")
    gpu = report["gpu"]
    if gpu["available"]:
        for g in gpu["gpus"]:
            print(f"  {ok} GPU {g['index']}: {g['name']}  {g['memory']}")
    else:
        print(f"  - GPU: none ({gpu['reason']})")
    cuda = report["cuda"]
    print(
        f"  {ok if cuda['available'] else '-'} CUDA: "
        + (", ".join(cuda.get("devices", [])) if cuda["available"] else cuda.get("reason", ""))
    )
    llama = report["llama_cpp"]
    print(
        f"  {ok if llama['available'] else bad} llama.cpp: "
        + (f"{llama['version']} (GPU offload: {llama['gpu_offload']})" if llama["available"] else llama["reason"])
    )
    wsr = report["workspace"]
    print(
        f"  {ok} workspace {wsr['root']}: {sum(wsr['jobs'].values())} jobs{(' ' + str(wsr['jobs'])) if wsr['jobs'] else ''}, {wsr['free_disk_gb']} GB free, demo {'ready' if wsr['demo_ready'] else 'not built (ftbench demo)'}"
    )
    for warning in wsr["warnings"]:
        print(f"  ! {warning}")
    if missing:
        print(f"hint: install the missing packages with `pip install -e .` ({', '.join(missing)})")
        return 1
    return 0
