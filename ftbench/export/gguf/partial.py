"""A GGUF file written under `<name>.partial` and renamed only when complete.

Shared by the model writer, the LoRA adapter writer and the pre-tokenizer probe, so no interrupted write ever
leaves a file that looks finished, and so those modules need not import each other.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def partial_gguf(out: Path, arch: str) -> Iterator[Any]:
    """A GGUFWriter on `<out>.partial`, renamed to `out` only when the block completes and removed on any
    failure, so an interrupted export never leaves a file that looks finished."""
    import gguf

    partial = out.with_name(out.name + ".partial")
    w = gguf.GGUFWriter(partial, arch)
    try:
        yield w
        w.close()
        os.replace(partial, out)
    except BaseException:
        try:
            w.close()
        finally:
            partial.unlink(missing_ok=True)
        raise
