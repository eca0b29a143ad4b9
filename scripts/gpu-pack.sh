#!/usr/bin/env bash
# gpu-pack.sh: build here (the GPU machine has no LLVM headers) and stage what the GPU machine
# needs in gpubuild/: libtir.so stripped (LLVM inside), tirc, the GPU test programs, the host
# examples and the benchmarks, all finding libtir.so beside them ($ORIGIN rpath). Then, on the GPU
# machine: TIR_BUILD=gpubuild scripts/gpu-test.sh   (the device tool carries gpubuild/)
# TIR_PACK_BUILD=dir builds in dir (default build/); TIR_PACK_OUT=dir stages there (default gpubuild/).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B "${TIR_PACK_BUILD:-build}" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "${TIR_PACK_BUILD:-build}" -j"${TIR_PACK_JOBS:-$(nproc)}"
out=${TIR_PACK_OUT:-gpubuild}
rm -rf "$out"
mkdir -p "$out"
b=${TIR_PACK_BUILD:-build}
for f in $b/libtir.so $b/tirc $b/gpu_* $b/host_* $b/bench_*; do
  [ -f "$f" ] && [ -x "$f" ] || [ "${f##*.}" = so ] || continue
  [ -e "$f" ] || continue
  strip --strip-unneeded -o "$out/$(basename "$f")" "$f"
done
du -sh "$out"
