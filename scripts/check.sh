#!/usr/bin/env bash
# The project's whole check, as README's second set-up command and CI (.ci/run) run it: the style checks
# first because they take seconds (ruff lint, and ruff format so the configured line length holds), then the
# whole test suite. pytest's own exit code is the script's: a failure, or a suite that collected nothing
# (exit 5), fails. Extra arguments go to pytest (`scripts/check.sh -m "not slow"`).
set -euo pipefail
cd "$(dirname "$0")/.."
ruff check ftbench tests bench scripts
ruff format --check ftbench tests bench scripts
exec python -m pytest "$@"
