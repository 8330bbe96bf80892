#!/usr/bin/env bash
# Each benchmark on an earlier commit (a git worktree) and then on the working tree, one after the other, for
# "no worse than before" checks. Run it on a quiet machine.
#   bash benchmarks/before_after.sh REV [NAME ...]    (default NAMEs: step_latency stream_latency slstm_cpu ops_cpu)
set -u
REV="${1:?a commit to compare with, e.g. 4d723d7}"; shift
NAMES=("${@:-step_latency stream_latency slstm_cpu ops_cpu}")
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
OLD="$(mktemp -d)/before"
git -C "$ROOT" worktree add -f "$OLD" "$REV" >/dev/null
cp "$ROOT/benchmarks/step_latency.py" "$OLD/benchmarks/" 2>/dev/null || true  # a benchmark of the public API
declare -A ARGS=([step_latency]="--repeats 2000" [stream_latency]="--steps 100 1000 10000 --batch 1 256"
                 [slstm_cpu]="--repeats 11" [ops_cpu]="--lengths 1024 4096 --repeats 3")
for name in ${NAMES[@]}; do
  for side in before after; do
    dir=$([ $side = before ] && echo "$OLD" || echo "$ROOT")
    echo "===== $name ($side) ${ARGS[$name]:-}"
    (cd "$dir" && PYTHONPATH="$dir" "$PY" -u "benchmarks/$name.py" ${ARGS[$name]:-})
  done
done
git -C "$ROOT" worktree remove --force "$OLD"
