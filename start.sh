#!/usr/bin/env bash
# One command: set up everything (venv, dependencies, models), index corpus/, start the UI.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh
echo "== index"
.venv/bin/rag index
echo "== UI on http://${RAG_HOST:-127.0.0.1}:${RAG_PORT:-7860}"
exec .venv/bin/python ui.py "$@"
