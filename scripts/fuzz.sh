#!/usr/bin/env bash
# fuzz.sh: the fuzzing campaign (DESIGN §6.6). Builds the fuzz build (clang, ASan + UBSan,
# libFuzzer; CPU only) in build-fuzz, runs each libFuzzer target of tests/fuzz for SECONDS from
# the seed corpus (tests/fuzz/make_corpus.sh; the corpus grown by earlier runs is kept in
# build-fuzz/corpus), then `tirc fuzz` over several seeds with COUNT programs each. Prints a
# summary table and `N passed, M failed` last; exit 1 on any finding. Crashing inputs are left in
# build-fuzz/artifacts, failing programs (original and reduced) in build-fuzz/programs.
#
#   scripts/fuzz.sh [SECONDS] [COUNT]      defaults 60 and 1000; `scripts/fuzz.sh 600` for the
#                                          10-minute runs
# Environment: TIR_FUZZ_BUILD (build dir, default build-fuzz), TIR_FUZZ_SEEDS (default "1 2 3"),
# TIR_FUZZ_TARGETS (default: every tests/fuzz/fuzz_*.c), TIR_FUZZ_TIRC (a tirc to use for
# `tirc fuzz` instead of the fuzz build's, e.g. an LLVM build's, so that ptxas checks the PTX).
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
count=${2:-1000}
build=${TIR_FUZZ_BUILD:-build-fuzz}
seeds=${TIR_FUZZ_SEEDS:-1 2 3}
jobs=${JOBS:-2}
case $secs$count in *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS] [COUNT]" >&2; exit 2 ;; esac

if ! command -v clang >/dev/null; then
  echo "scripts/fuzz.sh: needs clang (libFuzzer); scripts/setup.sh installs it" >&2
  exit 2
fi
echo "== building $build (clang, libFuzzer, ASan + UBSan)"
targets=${TIR_FUZZ_TARGETS:-$(for f in tests/fuzz/fuzz_*.c; do basename "$f" .c; done)}
mkdir -p "$build"
CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DTIR_FUZZERS=ON -DTIR_WITH_LLVM=OFF \
  -DTIR_SANITIZE=ON >"$build/cmake.log" 2>&1 || { cat "$build/cmake.log"; exit 1; }
# shellcheck disable=SC2086
cmake --build "$build" -j"$jobs" --target tirc $targets >"$build/build.log" 2>&1 ||
  { tail -40 "$build/build.log"; exit 1; }

tests/fuzz/make_corpus.sh "$build/seed-corpus" >/dev/null
mkdir -p "$build/artifacts" "$build/programs"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

rows=()
passed=0
failed=0
row() { rows+=("$(printf '%-28s %-8s %s' "$1" "$2" "$3")"); }

for t in $targets; do
  name=${t#fuzz_}
  corpus=$build/corpus/$name
  mkdir -p "$corpus"
  seed=$build/seed-corpus/$name
  [ -d "$seed" ] || seed=
  dict=
  [ "$name" = parse ] && dict=-dict=$build/seed-corpus/tir.dict
  log=$build/$t.log
  echo "== $t for ${secs}s"
  # -timeout: a single input taking longer is a hang; -rss_limit_mb: a leak or a blow-up
  "$build/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/artifacts/$name-" $dict "$corpus" $seed >"$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  if [ $rc = 0 ]; then
    passed=$((passed + 1))
    row "$t" ok "${runs:-?} inputs, ${cov:-cov: ?}, corpus $(ls "$corpus" | wc -l)"
  else
    failed=$((failed + 1))
    row "$t" FAIL "exit $rc after ${runs:-?} inputs: see $log and $build/artifacts"
    grep -m 5 -e 'ERROR' -e 'SUMMARY' -e 'Test unit written' "$log" | sed 's/^/    /'
  fi
done

tirc=${TIR_FUZZ_TIRC:-$build/tirc}
for s in $seeds; do
  echo "== tirc fuzz --seed $s --count $count"
  log=$build/tirc-fuzz-$s.log
  "$tirc" fuzz --seed "$s" --count "$count" --keep "$build/programs" >"$log" 2>&1
  rc=$?
  summary=$(tail -1 "$log")
  if [ $rc = 0 ]; then
    passed=$((passed + 1))
    row "tirc fuzz --seed $s" ok "$summary"
  else
    failed=$((failed + 1))
    row "tirc fuzz --seed $s" FAIL "$summary: see $log and $build/programs"
    grep '^FAIL' "$log" | head -5 | sed 's/^/    /'
  fi
done

echo
echo "== summary (${secs}s per libFuzzer target, $count programs per seed)"
printf '%s\n' "${rows[@]}"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
