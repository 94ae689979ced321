#!/usr/bin/env bash
# Create .venv and install the project (torch first, pinned, then requirements-test.txt).
# Idempotent: a stamp of the requirement files skips the install when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=".venv/.installed-$(cat requirements.txt requirements-test.txt | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  # The tested torch pair; install the build for your CUDA first if you need another (INSTALL.md).
  .venv/bin/pip install -q "torch==2.14.1" "torchvision==0.29.1"
  .venv/bin/pip install -q -r requirements-test.txt
  touch "$stamp"
fi
