#!/usr/bin/env bash
# run-examples.sh: the main job. For every examples/*.tir: `tirc check`; a print round trip (the
# printed text re-checks and prints to the same text); and `tirc run` on the reference
# interpreter of each function in the table below, with its symbols bound small enough to be quick.
# One line per step; exits non-zero if any step fails.
# Usage: scripts/run-examples.sh [path/to/tirc]   (default build/tirc)
set -uo pipefail
cd "$(dirname "$0")/.."
tirc=${1:-build/tirc}
case $tirc in /*) ;; *) tirc=$PWD/$tirc ;; esac
if [ ! -x "$tirc" ]; then
  echo "run-examples: no tirc at $tirc (build first: scripts/setup.sh)" >&2
  exit 2
fi

# file            function     --dim bindings
runs="
mlp.tir           mlp          B=4
rmsnorm.tir       rmsnorm      N=3 H=64
rmsnorm.tir       rmsnorm_op   N=3 H=64
train_mlp.tir     loss         B=8
train_mlp.tir     loss_grad    B=8
train_mlp.tir     sgd_step     B=8
llama_block.tir   block        B=1 T=8 D=64 Hq=2 Hk=1 I=96
"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tir_examples.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
step() { # NAME CMD...: runs CMD, one line of result; output kept for the failure report
  local name=$1
  shift
  if "$@" >"$tmp/out" 2>"$tmp/err"; then
    passed=$((passed + 1))
    printf 'ok    %s\n' "$name"
    return 0
  fi
  failed=$((failed + 1))
  printf 'FAIL  %s\n' "$name"
  sed 's/^/      | /' "$tmp/err" | head -20
  return 1
}
roundtrip() { # F: print, check the printed text, print it again, and diff
  local b
  b=$(basename "$1" .tir)
  "$tirc" print "$1" >"$tmp/$b.1.tir" &&
    "$tirc" check "$tmp/$b.1.tir" &&
    "$tirc" print "$tmp/$b.1.tir" >"$tmp/$b.2.tir" &&
    diff -u "$tmp/$b.1.tir" "$tmp/$b.2.tir" >&2
}
run() { # F FUNC DIMS...: run on the interpreter; the summary goes to stdout
  local f=$1 func=$2
  shift 2
  local args=()
  for dim in "$@"; do args+=(--dim "$dim"); done
  rm -rf "$tmp/run"
  "$tirc" run "$f" --func "$func" "${args[@]}" --seed 1 --out "$tmp/run"
}

shopt -s nullglob
files=(examples/*.tir)
[ ${#files[@]} -gt 0 ] || { echo "run-examples: no examples/*.tir" >&2; exit 1; }
for f in "${files[@]}"; do
  b=$(basename "$f")
  step "check   $f" "$tirc" check "$f" || continue
  step "print   $f (round trip)" roundtrip "$f"
  rows=$(awk -v b="$b" '$1 == b' <<<"$runs")
  if [ -z "$rows" ]; then
    printf 'skip  run     %s (no row in the table of scripts/run-examples.sh)\n' "$f"
    continue
  fi
  while read -r _ func dims; do
    # shellcheck disable=SC2086
    if step "run     $f @$func $dims" run "$f" "$func" $dims; then sed 's/  -> .*//; s/^/      /' "$tmp/out"; fi
  done <<<"$rows"
done
# the host programs of examples/*.c, built next to tirc
for src in examples/*.c; do
  exe=$(dirname "$tirc")/$(basename "$src" .c)
  if [ -x "$exe" ]; then step "host    $src" "$exe"; else printf 'skip  host    %s (not built)\n' "$src"; fi
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
