#!/usr/bin/env bash
# test.sh: the whole CPU test suite: the normal build's ctest (unit, golden, CLI, ptxas on every
# generated kernel), the same suite built with AddressSanitizer + UndefinedBehaviorSanitizer, and
# bounded fuzzing (libFuzzer on the parser and .npy reader, `tirc fuzz` on random programs).
# Needs scripts/setup.sh to have run once. TIR_SKIP_SANITIZE=1 / TIR_SKIP_FUZZ=1 skip parts.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")

if [ "${TIR_SKIP_SANITIZE:-0}" != 1 ]; then
  echo "== sanitizer build (ASan + UBSan)"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTIR_SANITIZE=ON >/dev/null
  cmake --build build-asan -j"$jobs"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j"$jobs")
fi

if [ "${TIR_SKIP_FUZZ:-0}" != 1 ]; then
  # bounded fuzzing: each libFuzzer target (parser, .npy reader) for 60 s from the seed corpus,
  # then `tirc fuzz` over 1000 random programs on each of two seeds, all under ASan + UBSan
  echo "== fuzzing (bounded)"
  TIR_FUZZ_SEEDS="11 12" bash scripts/fuzz.sh 60 1000
fi
