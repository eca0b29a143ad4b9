#!/usr/bin/env bash
# kernel_counts.sh: every function of benchmarks/*.tir compiles (`tirc ptx`, no GPU needed) to the
# number of kernels its `# KERNELS @func N` line states: a change that splits a fused layer into
# more launches (or merges some) shows here before anyone times it. Reshape aliases are not
# kernels (nothing is launched); a matmul's "who runs it" note is not one either. Every function
# must have its line, so a new benchmark cannot go uncounted.
source "$(dirname "$0")/common.bash"
needs_codegen

for f in benchmarks/*.tir; do
  funcs=$(sed -n 's/^func @\([A-Za-z0-9_]*\).*/\1/p' "$f")
  for fn in $funcs; do
    want=$(sed -n "s/^# KERNELS @$fn \([0-9][0-9]*\) *\$/\1/p" "$f" | head -n 1)
    if [ -z "$want" ]; then
      bad "$f: @$fn has no '# KERNELS @$fn N' line"
      continue
    fi
    expect 0 "ptx $f @$fn" "$tirc" ptx "$f" --func "$fn" -o "$T/ptx_$fn" || continue
    # the report: a header, one line per step, '#' notes; an alias step says "alias"
    got=$(grep -v -e '^kernel ' -e '^#' -e '^ *$' <<<"$out" | grep -vc ' alias ')
    if [ "$got" = "$want" ]; then
      ok "@$fn: $got kernels"
    else
      bad "@$fn: $got kernels, '# KERNELS' says $want" "$out"
    fi
  done
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
