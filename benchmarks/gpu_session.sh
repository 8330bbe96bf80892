#!/usr/bin/env bash
# Issue 10's checks in one call of the device tool (a lent GPU machine: its own python3 and torch, no
# registry). Carry `.whl` (wheels the machine lacks: tensordict, pyvers; the official xlstm and
# mlstm_kernels for the peer timings; see the device README) and run, from the repository root:
#   bash benchmarks/gpu_session.sh
# Prints the device, runs every `gpu` test, then benchmarks/kernels_gpu.py; full logs go to $OUT.
set -uo pipefail
OUT="${OUT:-/tmp/xseq-gpu}"
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "wheel install failed"; exit 1; }
  export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1 TORCH_EXTENSIONS_DIR=/tmp/torch_extensions
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
./run.sh cuda-check 2>&1 | tail -n 3
# each step bounded, so that one hang cannot spend the session's device time
timeout 240 python3 -m pytest -q -m gpu -p no:cacheprovider tests/ops 2>&1 | tee "$OUT/gpu_tests.log" | tail -n 25
timeout 300 python3 benchmarks/kernels_gpu.py 2>"$OUT/kernels_gpu.err" | tee "$OUT/kernels_gpu.log"
