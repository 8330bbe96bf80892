#!/usr/bin/env bash
# The project's entry points. Each command installs what it needs into a virtual environment first
# (torch 2.13.0 before anything else, so that the CPU build is used where no torch is present).
#   ./run.sh demo            the main job: a short real end-to-end training run that prints a metric
#   ./run.sh test [ARGS]     the test suite (pytest ARGS)
#   ./run.sh bench NAME      a benchmark from benchmarks/ (e.g. ./run.sh bench ops_cpu)
#   ./run.sh xseq ARGS       the xseq command line
#   ./run.sh lint            ruff check (the rules and line length are in pyproject.toml)
#   ./run.sh cuda-check      compile every kernel-only CUDA unit (csrc/cuda/*_kernels.cu) with nvcc -c for
#                            sm_80 and sm_90, and syntax-check the torch bindings (*_binding.cpp) against the
#                            venv's torch headers (no GPU needed; CI runs it)
set -euo pipefail
cd "$(dirname "$0")"
VENV="${XSEQ_VENV:-.venv}"
TORCH_VERSION="${XSEQ_TORCH_VERSION:-2.13.0}"

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
  fi
  # is torch installed? (found without importing it: an import costs seconds on every ./run.sh call)
  if ! "$VENV/bin/python" -c "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is None)" 2>/dev/null; then
    echo "[xseq] installing torch==$TORCH_VERSION" >&2
    "$VENV/bin/python" -m pip install -q "torch==$TORCH_VERSION"
  fi
  local stamp="$VENV/.xseq-installed"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "[xseq] installing xseq and its dependencies" >&2
    "$VENV/bin/python" -m pip install -q -e ".[test]"
    touch "$stamp"
  fi
}

setup_bench() {  # benchmark-only peers (sb3-contrib, popgym) and tensorboard
  setup
  local stamp="$VENV/.xseq-bench-installed"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "[xseq] installing the benchmark extra" >&2
    "$VENV/bin/python" -m pip install -q -e ".[test,bench]"
    touch "$stamp"
  fi
}

cuda_check() {
  local nvcc="${NVCC:-$(command -v nvcc || true)}"
  [ -z "$nvcc" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc=/usr/local/cuda/bin/nvcc
  if [ -z "$nvcc" ]; then echo "[xseq] cuda-check: nvcc not found (set NVCC)" >&2; return 1; fi
  local out; out=$(mktemp -d)
  for f in csrc/cuda/*_kernels.cu; do
    echo "[xseq] nvcc -c $f (sm_80, sm_90)" >&2
    "$nvcc" -std=c++17 -O3 -c "$f" -o "$out/$(basename "$f" .cu).o" \
      -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90
  done
  # the torch bindings: a syntax check against the installed torch's headers (a CPU wheel lacks only the
  # generated c10/cuda/impl/cuda_cmake_macros.h, stubbed here) and the CUDA headers nvcc uses
  setup
  local cuda_inc; cuda_inc=$({ "$nvcc" --dryrun -x cu -c /dev/null -o /dev/null 2>&1 || true; } |
    awk 'match($0, /INCLUDES="-I[^"]*"/) && !f { print substr($0, RSTART + 12, RLENGTH - 13); f = 1 }')
  [ -n "$cuda_inc" ] || cuda_inc="$(dirname "$(readlink -f "$nvcc")")/../include"
  mkdir -p "$out/stub/c10/cuda/impl"
  echo '#pragma once' > "$out/stub/c10/cuda/impl/cuda_cmake_macros.h"
  local inc; inc=$("$VENV/bin/python" -c "import sysconfig, torch.utils.cpp_extension as c
print(' '.join('-I' + p for p in [*c.include_paths(), sysconfig.get_paths()['include']]))")
  for f in csrc/cuda/*_binding.cpp; do
    echo "[xseq] g++ -fsyntax-only $f (torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)'))" >&2
    # shellcheck disable=SC2086
    "${CXX:-g++}" -std=c++20 -fsyntax-only -w -I"$out/stub" $inc -I"$cuda_inc" -DTORCH_EXTENSION_NAME=xseq_check "$f"
  done
  rm -rf "$out"
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  demo)  setup; exec "$VENV/bin/python" -m xseq.cli demo "$@" ;;
  test)  setup; exec "$VENV/bin/python" -m pytest "$@" ;;
  lint)  setup; exec "$VENV/bin/python" -m ruff check . "$@" ;;
  bench) setup_bench; name="${1:?benchmark name, e.g. ops_cpu}"; shift; exec "$VENV/bin/python" "benchmarks/$name.py" "$@" ;;
  xseq)  setup; exec "$VENV/bin/python" -m xseq.cli "$@" ;;
  cuda-check) cuda_check ;;
  *) echo "usage: ./run.sh demo | test [pytest args] | lint | bench NAME [args] | xseq ARGS | cuda-check" >&2; exit 2 ;;
esac
