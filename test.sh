#!/usr/bin/env bash
# One command: set up what the tests need, lint, run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh
.venv/bin/rag models smollm2-135m-instruct  # tiny LLM for fast structural tests
if [ ! -x /usr/bin/chromium ]; then
  echo "== installing Chromium for the browser tests"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -q && $SUDO apt-get install -y -q chromium fonts-dejavu-core
fi
echo "== lint"
.venv/bin/ruff check .
echo "== tests"
exec .venv/bin/python -m pytest "$@"
