#!/usr/bin/env bash
# Issue 10's checks in one call of the device tool (a lent GPU machine: its own python3 and torch, no
# registry). Carry `.whl` (wheels the machine lacks: tensordict, pyvers; the official xlstm and
# mlstm_kernels for the peer timings; see the device README) and run, from the repository root:
#   bash benchmarks/gpu_session.sh
# Builds the extensions (ours and the official sLSTM's, in parallel), runs every `gpu` test (one process per
# file, so that a crashed context cannot hide the other file's results), then benchmarks/kernels_gpu.py in three
# processes (sLSTM and mLSTM step; mLSTM sequences; a profile of our kernels). Every step is bounded by a
# timeout, so that one hang cannot spend the session's device time.
# Full logs go to $OUT.
set -uo pipefail
OUT="${OUT:-/tmp/xseq-gpu}"
mkdir -p "$OUT"
T0=$SECONDS
stamp() { echo "[gpu_session +$((SECONDS - T0)) s] $*"; }
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "wheel install failed"; exit 1; }
  export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1 TORCH_EXTENSIONS_DIR=/tmp/torch_extensions
export MAX_JOBS="${MAX_JOBS:-16}" TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"
# the official build links -lcublas from torch's CUDA folder; let the linker also find the toolkit's copy
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -d "$d" ] && export LIBRARY_PATH="$d:${LIBRARY_PATH:-}"
done
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
nvcc --version | tail -n 1

stamp "building: xseq slstm, xseq mlstm, official sLSTM (d=1024, 512) in parallel"
timeout 300 python3 benchmarks/kernels_gpu.py --build-official 1024 512 >"$OUT/official_build.log" 2>&1 &
official=$!
pids=()
for stem in slstm mlstm; do
  timeout 200 python3 -c "
import time; t = time.perf_counter()
from xseq.ops import cuda_ext; cuda_ext.load('$stem')
print('xseq $stem built in %.0f s' % (time.perf_counter() - t))" >"$OUT/build_$stem.log" 2>&1 &
  pids+=($!)
done
wait "${pids[@]}"
# the device tool returns at most 8 files: the build logs become one
cat "$OUT"/build_slstm.log "$OUT"/build_mlstm.log >"$OUT/builds.log"; rm -f "$OUT"/build_slstm.log "$OUT"/build_mlstm.log
grep -E "built in|Error|error:" "$OUT/builds.log" | tail -n 12
stamp "tests"
for f in test_slstm_cuda test_mlstm_cuda; do
  timeout 150 python3 -m pytest -q -m gpu -p no:cacheprovider -rfE "tests/ops/$f.py" >"$OUT/$f.log" 2>&1
  echo "== $f: exit $?"; tail -n 15 "$OUT/$f.log"
done
stamp "waiting for the official build"
wait "$official"; echo "official build exit $?"; tail -n 2 "$OUT/official_build.log"
cat "$OUT/official_build.log" >>"$OUT/builds.log"; rm -f "$OUT/official_build.log"
stamp "benchmarks"
timeout 150 python3 benchmarks/kernels_gpu.py --sections slstm step 2>"$OUT/kernels_gpu.err" | tee "$OUT/kernels_gpu_slstm.log"
timeout 270 python3 benchmarks/kernels_gpu.py --sections seq 2>>"$OUT/kernels_gpu.err" | tee "$OUT/kernels_gpu_seq.log"
stamp "profile"
timeout 60 python3 benchmarks/kernels_gpu.py --sections profile 2>>"$OUT/kernels_gpu.err" >"$OUT/kernels_gpu_profile.log"
grep -A 18 "^profile" "$OUT/kernels_gpu_profile.log" | cut -c 1-150 | head -n 44
stamp "done"
