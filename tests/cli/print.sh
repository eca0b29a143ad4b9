#!/usr/bin/env bash
# print.sh: `tirc print`: the canonical text re-parses and is a fixed point; --after, --func.
source "$(dirname "$0")/common.bash"

stages=$("$tirc" --help | sed -n 's/^pipeline stages[^:]*: //p')
last=verify
[ -n "$last" ] && ok "--help lists the stages ($stages)" || bad "no stages in --help"
for f in examples/*.tir; do
  b=$(basename "$f" .tir)
  expect 0 "print $f" "$tirc" print "$f" || continue
  cp "$T/.stdout" "$T/$b.1.tir"
  expect 0 "printed $b re-checks" "$tirc" check "$T/$b.1.tir"
  "$tirc" print "$T/$b.1.tir" >"$T/$b.2.tir" 2>"$T/err"
  same "print of printed $b is a fixed point" "$T/$b.1.tir" "$T/$b.2.tir"
  expect 0 "print --after $last $f" "$tirc" print "$f" --after "$last"
  cp "$T/.stdout" "$T/$b.v.tir"
  same "--after verify is the default" "$T/$b.1.tir" "$T/$b.v.tir"
  expect 0 "print --after verify $f" "$tirc" print "$f" --after verify
  cp "$T/.stdout" "$T/$b.verify.tir"
  expect 0 "after verify, $b re-checks" "$tirc" check "$T/$b.verify.tir"
done

expect 0 "print --after parse" "$tirc" print examples/rmsnorm.tir --after parse
has "parse stage keeps the function" "$out" "func @rmsnorm("
expect 0 "print --after all" "$tirc" print examples/rmsnorm.tir --after all
has "--after all heads each stage: parse" "$out" "# ---- after parse"
has "--after all heads each stage: verify" "$out" "# ---- after verify"
n=$(grep -c '^# ---- after ' <<<"$out")
s=$(wc -w <<<"$stages")
[ "$n" = "$s" ] && ok "--after all prints all $s stages" || bad "--after all printed $n of $s stages"

expect 0 "print --func" "$tirc" print examples/rmsnorm.tir --func rmsnorm_op
has "--func prints that function" "$out" "func @rmsnorm_op("
if grep -qF "func @rmsnorm(" <<<"$out"; then bad "--func printed another function" "$out"; else ok "--func prints only it"; fi
expect 0 "print --func=@name" "$tirc" print examples/rmsnorm.tir --func=@rmsnorm
has "--func=@name works" "$out" "func @rmsnorm("
expect 1 "print --func of a missing function" "$tirc" print examples/rmsnorm.tir --func nope
has "missing function lists the functions" "$err" "@rmsnorm_op"
expect 2 "unknown stage is a usage error" "$tirc" print examples/rmsnorm.tir --after frobnicate
has "unknown stage lists the stages" "$err" "verify"
expect 2 "--after without a value" "$tirc" print examples/rmsnorm.tir --after
expect 2 "no file" "$tirc" print
printf 'func @f(%%x: f32[4]) -> f32[4] {\n  %%r = neg(%%y)\n  return %%r\n}\n' >"$T/bad.tir"
expect 1 "print of a bad file exits 1" "$tirc" print "$T/bad.tir"
matches "with a located diagnostic" "$err" "bad\.tir:2:[0-9]+: error: "
finish
