"""Lines libraries print that tell the user nothing: hidden where people read, kept in the raw log.txt.

bitsandbytes warns about a missing CPU `gemm_4bit_forward` kernel on every command that imports it on a CPU
with AVX512-BF16, and transformers draws a tqdm bar "Converting and de-quantizing GGUF tensors..." once per
GGUF load, which a job log turns into hundreds of carriage-return lines. The CLI's stderr (`filter_stderr`),
`ftbench logs`/`show` and the TUI's log panes (`shown_lines`) all ask this one module, so a pattern added here
disappears everywhere at once; the job's log.txt is written by the process itself and keeps every byte.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from typing import Any, TextIO

NOISE_PATTERNS = (
    re.compile(r"gemm_4bit_forward"),  # bitsandbytes: "Failed to load CPU gemm_4bit_forward from kernels-community"
    re.compile(r"Converting and de-quantizing GGUF tensors"),  # transformers' GGUF loader's tqdm bar
)


def is_noise(text: str) -> bool:
    return any(pattern.search(text) for pattern in NOISE_PATTERNS)


def shown_lines(lines: Iterable[str]) -> list[str]:
    """The lines a person should see: noise dropped, and of a carriage-return progress line only its last state."""
    shown = []
    for line in lines:
        if is_noise(line):
            continue
        last = line.rstrip("\r").rsplit("\r", 1)[-1]
        shown.append(last)
    return shown


def shown_text(text: str) -> str:
    """`shown_lines` for a chunk of a log that keeps its line endings (what `ftbench logs` streams)."""
    return "".join(line for line in text.splitlines(keepends=True) if not is_noise(line))


class _NoiseFilteringStream:
    """Wraps a text stream; a `write` whose text is noise is dropped whole.

    Logging handlers, `warnings` and tqdm each write one record or one bar state per call, so deciding per call
    needs no buffering, and a prompt without a newline still appears at once.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        if is_noise(text):
            return len(text)
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def filter_stderr() -> None:
    """Hide the noise from this process's stderr (the CLI calls it once; a second call does nothing)."""
    if not isinstance(sys.stderr, _NoiseFilteringStream):
        sys.stderr = _NoiseFilteringStream(sys.stderr)  # type: ignore[assignment]
