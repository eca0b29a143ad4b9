#!/usr/bin/env bash
# setup.sh: install tir's build dependencies from Debian's packages (idempotent), build it, and run
# the main job: check, print and run every example program on the reference interpreter.
# Usage: scripts/setup.sh [--no-run]
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs="cmake make gcc pkg-config llvm-22-dev check libzstd-dev zlib1g-dev clang libclang-rt-14-dev"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "setup: installing$missing"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"

[ "${1:-}" = "--no-run" ] && exit 0
echo "== main job: every example checks, prints and runs on the interpreter"
bash scripts/run-examples.sh build/tirc
