#!/usr/bin/env bash
# check.sh: `tirc check`: exit codes and the file:line:col diagnostic format on good and bad files.
source "$(dirname "$0")/common.bash"

cat >"$T/good.tir" <<'TIR'
# a comment
func @axpy(%a: f32[], %x: f32[N], %y: f32[N]) -> f32[N] {
  %r = add(mul(%a, %x), %y)
  return %r
}
TIR
expect 0 "check a good file" "$tirc" check "$T/good.tir"
[ -z "$out$err" ] && ok "check is silent on success" || bad "check printed on success" "$out$err"
for f in examples/*.tir; do expect 0 "check $f" "$tirc" check "$f"; done
expect 0 "check several files" "$tirc" check "$T/good.tir" examples/mlp.tir

cat >"$T/bad_type.tir" <<'TIR'
func @f(%x: f32[4], %y: f32[5]) -> f32[4] {
  %a = neg(%x)
  %r = add(%a, %y)
  return %r
}
TIR
expect 1 "type error exits 1" "$tirc" check "$T/bad_type.tir"
matches "type error at file:3:col" "$err" "bad_type\.tir:3:[0-9]+: error: "
has "type error shows the source line" "$err" "%r = add(%a, %y)"
matches "type error has a caret line" "$err" '^ +\^$'

cat >"$T/bad_parse.tir" <<'TIR'
func @f(%x: f32[4]) -> f32[4] {
  %r = neg(%x
  return %r
}
TIR
expect 1 "parse error exits 1" "$tirc" check "$T/bad_parse.tir"
matches "parse error at file:line:col" "$err" "bad_parse\.tir:[23]:[0-9]+: error: "

cat >"$T/bad_op.tir" <<'TIR'
func @f(%x: f32[4]) -> f32[4] {
  %r = frobnicate(%x)
  return %r
}
TIR
expect 1 "unknown op exits 1" "$tirc" check "$T/bad_op.tir"
matches "unknown op at file:2:col" "$err" "bad_op\.tir:2:[0-9]+: error: .*frobnicate"

cat >"$T/bad_ret.tir" <<'TIR'
func @f(%x: f32[4]) -> f32[8] {
  %r = neg(%x)
  return %r
}
TIR
expect 1 "result type mismatch exits 1" "$tirc" check "$T/bad_ret.tir"
matches "mismatch has a location" "$err" "bad_ret\.tir:[0-9]+:[0-9]+: error: "

expect 1 "check of the good and a bad file exits 1" "$tirc" check "$T/good.tir" "$T/bad_op.tir"
expect 1 "missing file exits 1" "$tirc" check "$T/nope.tir"
has "missing file is named" "$err" "nope.tir"
expect 2 "no file is a usage error" "$tirc" check
expect 2 "unknown option is a usage error" "$tirc" check --frob "$T/good.tir"
printf 'func @f(%%x: f32[4]) -> f32[4] {\n  %%r = neg(%%x)\x01\x02\xff\n  return %%r\n}\n' >"$T/bytes.tir"
expect 1 "stray bytes give a diagnostic" "$tirc" check "$T/bytes.tir"
matches "stray bytes at file:2:col" "$err" "bytes\.tir:2:[0-9]+: error: "
finish
