#!/usr/bin/env bash
# Idempotent set-up: virtualenv, dependencies, models. Safe to run again at any time.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
CACHE=${RAG_HOME_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/newsrag}
LLAMA_VERSION=0.3.36
# No -march=native: llama.cpp's native build crashes on CPUs with AMX (first decode).
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
WHEELS="$CACHE/wheels"

if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  "$PYTHON" -m venv .venv
fi
PY=.venv/bin/python
pipq() { "$PY" -m pip install --disable-pip-version-check -q "$@"; }

if ! "$PY" -c "import torch" 2>/dev/null; then
  echo "== installing PyTorch (CPU)"
  pipq "torch==2.13.0"
fi

if ! "$PY" -c "import llama_cpp" 2>/dev/null; then
  mkdir -p "$WHEELS"
  wheel=$(ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl 2>/dev/null | head -n 1 || true)
  if [ -z "$wheel" ]; then
    echo "== building llama-cpp-python $LLAMA_VERSION (once, about 7 minutes on 2 cores)"
    CMAKE_ARGS="$LLAMA_CMAKE_ARGS" "$PY" -m pip wheel --disable-pip-version-check -q --no-deps \
      "llama-cpp-python==$LLAMA_VERSION" -w "$WHEELS"
    wheel=$(ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl | head -n 1)
  fi
  pipq "$wheel"
fi

stamp=.venv/.newsrag-deps
want=$(sha256sum pyproject.toml | cut -c1-64)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "== installing dependencies"
  pipq -e ".[test]"
  echo "$want" > "$stamp"
fi

echo "== models"
.venv/bin/rag models
