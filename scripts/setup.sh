#!/usr/bin/env bash
# One-time set-up on a fresh machine: the CPU build of torch first (pinned, so that pip
# never pulls the CUDA wheels), then scattertag itself in editable mode with the extras the
# tests use (service + Tiled) and the lint/type tools.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
python3 -m pip install --quiet --disable-pip-version-check -e ".[test,serve,dev]"
