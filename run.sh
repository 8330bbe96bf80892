#!/usr/bin/env bash
# The project's entry points. Each command installs what it needs into a virtual environment first
# (torch 2.13.0 before anything else, so that the CPU build is used where no torch is present).
#   ./run.sh demo            the main job: a short real end-to-end training run that prints a metric
#   ./run.sh test [ARGS]     the test suite (pytest ARGS)
#   ./run.sh bench NAME      a benchmark from benchmarks/ (e.g. ./run.sh bench ops_cpu)
#   ./run.sh xseq ARGS       the xseq command line
#   ./run.sh cuda-check      compile every kernel-only CUDA unit (csrc/cuda/*_kernels.cu) with nvcc -c for
#                            sm_80 and sm_90 (no GPU and no torch needed; CI runs it)
set -euo pipefail
cd "$(dirname "$0")"
VENV="${XSEQ_VENV:-.venv}"
TORCH_VERSION="${XSEQ_TORCH_VERSION:-2.13.0}"

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
  fi
  if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
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
  rm -rf "$out"
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  demo)  setup; exec "$VENV/bin/python" -m xseq.cli demo "$@" ;;
  test)  setup; exec "$VENV/bin/python" -m pytest "$@" ;;
  bench) setup_bench; name="${1:?benchmark name, e.g. ops_cpu}"; shift; exec "$VENV/bin/python" "benchmarks/$name.py" "$@" ;;
  xseq)  setup; exec "$VENV/bin/python" -m xseq.cli "$@" ;;
  cuda-check) cuda_check ;;
  *) echo "usage: ./run.sh demo | test [pytest args] | bench NAME [args] | xseq ARGS | cuda-check" >&2; exit 2 ;;
esac
