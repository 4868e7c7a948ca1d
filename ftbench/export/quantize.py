"""GGUF quantization: F32/F16/BF16/Q8_0 are written by our converter; K-quants and the other llama.cpp
types go through `llama_cpp.llama_model_quantize` (gguf-py can dequantize K-quants but not make them).

Output is written under `<name>.partial` and renamed at the end, like every export file.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from ftbench.core.errors import FtbenchError
from ftbench.export.gguf.writer import DIRECT_TYPES

# llama_ftype values (llama.h) of the types we offer through llama.cpp; IQ1/IQ2 need an imatrix, not offered.
LLAMA_FTYPES: dict[str, int] = {
    "q4_0": 2,
    "q4_1": 3,
    "q5_0": 8,
    "q5_1": 9,
    "q2_k": 10,
    "q3_k_s": 11,
    "q3_k_m": 12,
    "q3_k_l": 13,
    "q4_k_s": 14,
    "q4_k_m": 15,
    "q5_k_s": 16,
    "q5_k_m": 17,
    "q6_k": 18,
    "iq4_nl": 25,
    "iq4_xs": 30,
}
ALL_TYPES = (*DIRECT_TYPES, *LLAMA_FTYPES)

# Approximate bits per weight, for disk-space preflight (llama.cpp's table for 7-8B models).
BITS_PER_WEIGHT = {
    "f32": 32.0,
    "f16": 16.0,
    "bf16": 16.0,
    "q8_0": 8.5,
    "q6_k": 6.56,
    "q5_k_m": 5.7,
    "q5_k_s": 5.54,
    "q5_0": 5.5,
    "q5_1": 6.0,
    "q4_k_m": 4.89,
    "q4_k_s": 4.58,
    "q4_0": 4.5,
    "q4_1": 5.0,
    "q3_k_l": 4.27,
    "q3_k_m": 3.91,
    "q3_k_s": 3.5,
    "q2_k": 3.35,
    "iq4_nl": 4.5,
    "iq4_xs": 4.25,
}


def normalize_types(spec: str | list[str]) -> list[str]:
    """'Q4_K_M, q8_0' -> ['q4_k_m', 'q8_0']; unknown names are refused with the list of known ones."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for raw in items:
        name = raw.strip().lower().replace("-", "_")
        if not name:
            continue
        if name not in ALL_TYPES:
            raise FtbenchError(
                f"Unknown GGUF type {raw.strip()!r}.", "Use one of: " + ", ".join(t.upper() for t in ALL_TYPES) + "."
            )
        if name not in out:
            out.append(name)
    if not out:
        raise FtbenchError("No GGUF type was given.", "For example --quant q4_k_m,q8_0.")
    return out


def quantize_with_llama_cpp(src: str | Path, dst: str | Path, qtype: str, nthread: int | None = None) -> Path:
    """Quantize an F32/F16/BF16 GGUF to a llama.cpp type (e.g. Q4_K_M) through the llama.cpp C API."""
    qtype = qtype.lower()
    if qtype not in LLAMA_FTYPES:
        raise FtbenchError(
            f"{qtype!r} is not a llama.cpp quantization type.", "Use one of: " + ", ".join(LLAMA_FTYPES) + "."
        )
    try:
        import llama_cpp
    except ImportError as exc:
        raise FtbenchError(
            f"Quantizing to {qtype.upper()} needs llama-cpp-python, which is not installed.",
            "pip install llama-cpp-python, or export only F16/BF16/Q8_0.",
        ) from exc
    from ftbench.export.verify import quiet_llama_logs

    quiet_llama_logs()
    dst = Path(dst)
    partial = dst.with_name(dst.name + ".partial")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = LLAMA_FTYPES[qtype]
    params.nthread = nthread or min(os.cpu_count() or 1, 8)
    try:
        rc = llama_cpp.llama_model_quantize(str(src).encode(), str(partial).encode(), ctypes.byref(params))
        if rc != 0 or not partial.is_file():
            raise FtbenchError(
                f"llama.cpp failed to quantize {src} to {qtype.upper()} (code {rc}).",
                "Check that the source GGUF is F32/F16/BF16 and that the disk is not full.",
            )
        os.replace(partial, dst)
    finally:
        partial.unlink(missing_ok=True)
    return dst
