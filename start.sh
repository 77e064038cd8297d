#!/usr/bin/env bash
# One command: set up everything (venv, dependencies, models), index corpus/, start the UI.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh
echo "== index"
.venv/bin/rag index
echo "== UI on http://${RAG_HOST:-127.0.0.1}:${RAG_PORT:-7860}"
# Two malloc arenas instead of one per worker thread: under load the server's memory
# grows ~60 % slower (bench/load.py), at no measurable cost in latency.
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
exec .venv/bin/python ui.py "$@"
