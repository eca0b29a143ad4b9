#!/usr/bin/env bash
# gpu-test.sh: the GPU tests, run ON THE GPU MACHINE from the repo root with a build/ made on the
# build machine and carried over (nothing is rebuilt here: that machine has no LLVM headers).
# Steps: the device line from nvidia-smi; test_runtime (when its libcheck loads); every GPU test
# program of tests/gpu/ that was built (build/gpu_exec, gpu_fused, gpu_horizontal, gpu_matmul,
# gpu_tile, ...), then the op suite build/gpu_ops (every op x dtype x shape, and every
# example, against the interpreter); build/host_gpu; every example function through
# `tirc run --backend gpu --compare`. Logs go to $OUT (when set) or a temporary folder; a summary
# table is printed last. Exit 0 when every step that ran passed.
#
# The whole run keeps within a time budget (TIR_GPU_BUDGET seconds, default 450, so that one
# device call stays under 8 minutes): each step's timeout is cut to what is left, and a step with
# less than 15 s left is skipped (reported as such, and the run fails: nothing went untested
# silently).
#
# TIR_GPU_PARALLEL=1 starts the test programs (gpu_*, host_gpu) all at once and collects them
# afterwards (the card has room for all of them; correctness, not timing, is measured here), so
# the whole suite fits one device call; the summary is the same.
#
# usage: scripts/gpu-test.sh [--filter TEXT]      (TIR_BUILD=dir to use another build folder)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
build=${TIR_BUILD:-build}
filter=()
[ "${1:-}" = "--filter" ] && [ -n "${2:-}" ] && filter=(--filter "$2")
logs=${OUT:-$(mktemp -d /tmp/tir-gpu-test.XXXXXX)}
mkdir -p "$logs"
export TIR_SOURCE_DIR=$PWD CK_FORK=no

rows=()
failed=0
row() {
  rows+=("$(printf '%-22s %-6s %6ss  %s' "$1" "$2" "$3" "$4")")
  if [ "$2" = FAIL ]; then failed=1; fi
  return 0 # callers write `cond && row ok || row FAIL`
}

echo "== device"
device=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)
echo "$device" | tee "$logs/nvidia-smi.txt"

for exe in tirc gpu_ops host_gpu; do
  [ -x "$build/$exe" ] || { echo "gpu-test: $build/$exe is missing: build on the build machine first" >&2; }
done

budget=${TIR_GPU_BUDGET:-450}
# left: seconds of the budget still unspent
left() { echo $((budget - SECONDS)); }

# run NAME TIMEOUT CMD...: output to $logs/NAME.log, sets rc and secs; the timeout is cut to the
# budget left (rc 124 when that, or the step's own limit, ran out)
run() {
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS l
  l=$(left)
  [ "$l" -lt "$limit" ] && limit=$l
  [ "$limit" -lt 1 ] && limit=1 # timeout 0 would mean no limit at all
  timeout "$limit" "$@" >"$logs/$name.log" 2>&1
  rc=$?
  secs=$((SECONDS - t0))
}

# step NAME TIMEOUT CMD...: run, or in parallel mode the result of the run started up front
parallel=${TIR_GPU_PARALLEL:-0}
step() {
  if [ "$parallel" = 1 ] && [ -f "$logs/$1.rc" ]; then
    read -r rc secs <"$logs/$1.rc"
  else
    run "$@"
  fi
}
if [ "$parallel" = 1 ]; then
  echo "== starting every test program at once (TIR_GPU_PARALLEL=1)"
  for exe in "$build"/gpu_*; do
    [ -x "$exe" ] || continue
    name=$(basename "$exe")
    lim=$(($(left) - 20)) # side by side, each may take the whole budget
    (run "$name" $lim "$exe" --examples examples "${filter[@]}"; echo "$rc $secs" >"$logs/$name.rc") &
  done
  if [ -x "$build/host_gpu" ]; then
    (run host_gpu 120 "$build/host_gpu" examples/rmsnorm.tir; echo "$rc $secs" >"$logs/host_gpu.rc") &
  fi
  wait
fi

# over_budget NAME: true (and a FAIL row) when too little time is left to start step NAME
over_budget() {
  [ "$parallel" = 1 ] && [ -f "$logs/$1.rc" ] && return 1 # it ran already
  if [ "$(left)" -lt 15 ]; then
    row "$1" FAIL 0 "not run: the ${budget}s budget is spent (TIR_GPU_BUDGET)"
    return 0
  fi
  return 1
}

echo "== test_runtime"
if [ -x "$build/test_runtime" ] && ! ldd "$build/test_runtime" 2>/dev/null | grep -q 'not found'; then
  run test_runtime 300 "$build/test_runtime"
  tail -3 "$logs/test_runtime.log"
  [ $rc = 0 ] && row test_runtime ok $secs "$(grep -E '^[0-9]+%' "$logs/test_runtime.log" | tail -1)" ||
    row test_runtime FAIL $secs "exit $rc: $(grep -E '^[0-9]+%' "$logs/test_runtime.log" | tail -1)"
else
  row test_runtime skip 0 "not built, or libcheck is not on this machine"
fi

# every GPU test program but gpu_ops, the long one, which goes last (they all take --examples, as
# ctest passes it to each); exit 77 is a skip (no driver)
for exe in "$build"/gpu_*; do
  name=$(basename "$exe")
  [ "$name" = gpu_ops ] && continue
  [ -x "$exe" ] || continue
  echo "== $name"
  over_budget "$name" && continue
  step "$name" 240 "$exe" --examples examples "${filter[@]}"
  grep -E '^FAIL' "$logs/$name.log" | head -20
  last=$(tail -1 "$logs/$name.log")
  echo "$last"
  case $rc in
    0) row "$name" ok $secs "$last" ;;
    77) row "$name" skip $secs "$last" ;;
    124) row "$name" FAIL $secs "timed out: $last" ;;
    *) row "$name" FAIL $secs "exit $rc: $last" ;;
  esac
done

echo "== gpu_ops"
if [ -x "$build/gpu_ops" ]; then
  if ! over_budget gpu_ops; then
    step gpu_ops 540 "$build/gpu_ops" --examples examples "${filter[@]}"
    grep -E '^(FAIL|SKIP)' "$logs/gpu_ops.log" >"$logs/gpu_ops.failures.txt"
    head -40 "$logs/gpu_ops.failures.txt"
    last=$(tail -1 "$logs/gpu_ops.log")
    echo "$last"
    case $rc in
      0) row gpu_ops ok $secs "$last" ;;
      77) row gpu_ops skip $secs "$last" ;;
      124) row gpu_ops FAIL $secs "timed out; $(grep -c '^PASS' "$logs/gpu_ops.log") passed, $(grep -c '^FAIL' "$logs/gpu_ops.log") failed so far" ;;
      *) row gpu_ops FAIL $secs "exit $rc: $last" ;;
    esac
  fi
else
  row gpu_ops FAIL 0 "$build/gpu_ops missing"
fi

echo "== host_gpu"
if over_budget host_gpu; then
  :
elif [ -x "$build/host_gpu" ]; then
  step host_gpu 120 "$build/host_gpu" examples/rmsnorm.tir
  cat "$logs/host_gpu.log"
  [ $rc = 0 ] && row host_gpu ok $secs "$(tail -1 "$logs/host_gpu.log")" ||
    row host_gpu FAIL $secs "exit $rc: $(tail -1 "$logs/host_gpu.log")"
else
  row host_gpu FAIL 0 "$build/host_gpu missing"
fi

# the signature of @F in FILE (for a value_and_grad definition, the differentiated function's)
signature() {
  local file=$1 f=$2 sig of
  sig=$(awk -v f="$f" '$0 ~ "^func @" f "[ (=]" {on=1} on {print} on && /\{|value_and_grad/ {exit}' "$file")
  of=$(grep -oE 'value_and_grad\(@[A-Za-z0-9_]+' <<<"$sig" | head -1 | sed 's/.*@//')
  [ -n "$of" ] && sig=$(awk -v f="$of" '$0 ~ "^func @" f "[ (=]" {on=1} on {print} on && /\{/ {exit}' "$file")
  printf '%s\n' "$sig"
}

echo "== tirc run --compare"
probe=$logs/probe.tir
printf 'func @t(%%x: f32[N]) -> f32[N] {\n  %%y = exp(%%x)\n  return %%y\n}\n' >"$probe"
if over_budget "tirc run --compare"; then
  :
elif [ -x "$build/tirc" ] && "$build/tirc" run "$probe" --func t --dim N=7 --backend gpu --compare \
     --out "$logs/probe" >"$logs/probe.log" 2>&1; then
  t0=$SECONDS
  ok=0 bad=0
  : >"$logs/compare.log"
  for file in examples/*.tir; do
    for f in $(grep -oE '^func @[A-Za-z0-9_]+' "$file" | sed 's/^func @//'); do
      dims=()
      for s in $(signature "$file" "$f" | grep -oE '\[[^]]*\]' | grep -oE '[A-Za-z_][A-Za-z0-9_]*' | sort -u); do
        dims+=(--dim "$s=4")
      done
      echo "-- $file @$f ${dims[*]}" >>"$logs/compare.log"
      if [ "$(left)" -lt 5 ]; then
        bad=$((bad + 1)); echo "FAIL  $file @$f (budget spent)"; continue
      fi
      if timeout "$(left)" "$build/tirc" run "$file" --func "$f" "${dims[@]}" --seed 1 --backend gpu \
           --compare --out "$logs/compare-out" >>"$logs/compare.log" 2>&1; then
        ok=$((ok + 1)); echo "ok    $file @$f"
      else
        bad=$((bad + 1)); echo "FAIL  $file @$f"
      fi
    done
  done
  [ $bad = 0 ] && row "tirc run --compare" ok $((SECONDS - t0)) "$ok functions within tolerance" ||
    row "tirc run --compare" FAIL $((SECONDS - t0)) "$bad of $((ok + bad)) functions failed (compare.log)"
else
  row "tirc run --compare" skip 0 "tirc has no working --backend gpu --compare yet ($(head -1 "$logs/probe.log" 2>/dev/null))"
fi

echo
echo "== summary: ${device}   (logs: $logs)"
printf '%-22s %-6s %7s  %s\n' step result time detail
for r in "${rows[@]}"; do echo "$r"; done
exit $failed
