#!/usr/bin/env bash
# run.sh: `tirc run`: known values through hand-written .npy inputs, seeded inputs that replay
# bit-for-bit through --in, random index inputs kept in range, and every bad input rejected with
# exit 1 and a clear message.
source "$(dirname "$0")/common.bash"

cat >"$T/axpy.tir" <<'TIR'
func @axpy(%a: f32[], %x: f32[N], %y: f32[N]) -> f32[N] {
  %r = add(mul(%a, %x), %y)
  return %r
}
TIR
# a = 2; x = [1, 2, 3, 0.5]; y = [1, 1, 1, 1]  ->  [3, 5, 7, 2]
npy "$T/a.npy" '<f4' '()' 00000040
npy "$T/x.npy" '<f4' '(4,)' 0000803f00000040000040400000003f
npy "$T/y.npy" '<f4' '(4,)' 0000803f0000803f0000803f0000803f
expect 0 "run axpy on .npy inputs" "$tirc" run "$T/axpy.tir" --func axpy --in a="$T/a.npy" \
  --in x="$T/x.npy" --in y="$T/y.npy" --out "$T/o1"
got=$(npydata "$T/o1/out0.npy")
[ "$got" = "000040400000a0400000e04000000040" ] && ok "axpy gives [3, 5, 7, 2]" ||
  bad "axpy gave $got, want [3, 5, 7, 2] = 000040400000a0400000e04000000040"
has "summary names shape and dtype" "$out" "out0: f32[4]"
has "summary has mean, min, max" "$out" "mean=4.25 min=2 max=7"
has "summary names the file" "$out" "$T/o1/out0.npy"
expect 0 "--in accepts %name" "$tirc" run "$T/axpy.tir" --func @axpy --in %a="$T/a.npy" \
  --in x="$T/x.npy" --in y="$T/y.npy" --out "$T/o1b"
same "--in %name gives the same result" "$T/o1/out0.npy" "$T/o1b/out0.npy"

# seeded random inputs: deterministic, seed-dependent, and replayable through --in
expect 0 "run with --seed and --dim" "$tirc" run "$T/axpy.tir" --func axpy --dim N=1000 --seed 5 \
  --out "$T/s5" --save-inputs
has "random floats lie in [-2, 2) after axpy" "$out" "out0: f32[1000]"
expect 0 "run again with the same seed" "$tirc" run "$T/axpy.tir" --func axpy --dim N=1000 --seed 5 --out "$T/s5b"
same "same seed, same result" "$T/s5/out0.npy" "$T/s5b/out0.npy"
expect 0 "run with another seed" "$tirc" run "$T/axpy.tir" --func axpy --dim N=1000 --seed 6 --out "$T/s6"
cmp -s "$T/s5/out0.npy" "$T/s6/out0.npy" && bad "seeds 5 and 6 gave the same result" || ok "another seed, another result"
for p in a x y; do [ -f "$T/s5/in_$p.npy" ] && ok "--save-inputs wrote in_$p.npy" || bad "no in_$p.npy"; done
expect 0 "replay the saved inputs" "$tirc" run "$T/axpy.tir" --func axpy --in a="$T/s5/in_a.npy" \
  --in x="$T/s5/in_x.npy" --in y="$T/s5/in_y.npy" --out "$T/r5"
same "replay is bit-identical" "$T/s5/out0.npy" "$T/r5/out0.npy"
expect 0 "one input binds N, the rest are random" "$tirc" run "$T/axpy.tir" --func axpy --in x="$T/x.npy" --out "$T/p"
has "N bound from x" "$out" "out0: f32[4]"
data=$(npydata "$T/s5/in_x.npy")
[ "$(grep -o '........' <<<"$data" | sort -u | wc -l)" -gt 900 ] && ok "random floats are not constant" ||
  bad "random floats repeat"
outside=0
for h in $(grep -o '........' <<<"$data"); do # |v| < 1: exponent below 127
  hi=$((16#${h:6:2} & 127)) mid=$((16#${h:4:2}))
  if [ $hi -gt 63 ] || { [ $hi = 63 ] && [ $mid -ge 128 ]; }; then outside=$((outside + 1)); fi
done
[ $outside = 0 ] && ok "random floats lie in (-1, 1)" || bad "$outside random floats outside (-1, 1)"
# bf16 parameters take the f32 files tir writes for them, exactly
expect 0 "run rmsnorm (bf16) seeded" "$tirc" run examples/rmsnorm.tir --func rmsnorm --dim N=3 --dim H=64 \
  --out "$T/rn" --save-inputs
has "bf16 result summarized" "$out" "out0: bf16[3, 64]"
expect 0 "replay rmsnorm from the saved f32 files" "$tirc" run examples/rmsnorm.tir --func rmsnorm \
  --in x="$T/rn/in_x.npy" --in w="$T/rn/in_w.npy" --out "$T/rn2"
same "bf16 replay is bit-identical" "$T/rn/out0.npy" "$T/rn2/out0.npy"

# integer inputs: indices stay inside the dim they index, through reshape and calls
cat >"$T/idx.tir" <<'TIR'
func @emb(%table: f32[V, 4], %idx: i32[N]) -> f32[N, 4] {
  %r = take(%table, %idx, axis=0)
  return %r
}
func @emb2(%table: f32[7, 2], %idx: i64[2, 3]) -> f32[6, 2] {
  %r = take(%table, reshape(%idx, shape=[6]), axis=0)
  return %r
}
func @inner(%t: f32[V, 2], %i: i32[M]) -> f32[M, 2] {
  %r = take(%t, %i, axis=0)
  return %r
}
func @outer(%table: f32[5, 2], %ix: i32[K]) -> f32[K, 2] {
  %r = call @inner(%table, %ix)
  return %r
}
func @rev(%idx: i32[N], %table: f32[V, 4]) -> f32[N, 4] {
  %r = take(%table, %idx, axis=0)
  return %r
}
func @ce(%logits: f32[N, 3], %t: i32[N]) -> f32[] {
  %l = cross_entropy(%logits, %t, reduction="mean")
  return %l
}
func @sa(%target: f32[6, 2], %idx: i64[N], %src: f32[N, 2]) -> f32[6, 2] {
  %r = scatter_add(%target, %idx, %src, axis=0)
  return %r
}
func @count(%n: i32[64]) -> i32[64] {
  %r = add(%n, %n)
  return %r
}
TIR
# ints LINE-HEX BYTES: the little-endian ints of a hex string, one per line
ints() { grep -o "$(printf '%*s' $(($2 * 2)) '' | tr ' ' .)" <<<"$1" | while read -r h; do
  v=0; for ((k = ${#h} - 2; k >= 0; k -= 2)); do v=$((v * 256 + 16#${h:k:2})); done; echo "$v"; done; }
inrange() { # NAME FILE SIZE LO HI
  local vals lo hi distinct
  [ -f "$2" ] || { bad "$1: no file $2"; return; }
  vals=$(ints "$(npydata "$2")" "$3")
  lo=$(sort -n <<<"$vals" | head -1); hi=$(sort -n <<<"$vals" | tail -1); distinct=$(sort -u <<<"$vals" | wc -l)
  if [ "$lo" -ge "$4" ] && [ "$hi" -lt "$5" ] && [ "$distinct" -gt 1 ]; then ok "$1 in [$4, $5), $distinct values"
  else bad "$1: values in [$lo, $hi], $distinct distinct; want [$4, $5), several"; fi
}
expect 0 "run take with random indices" "$tirc" run "$T/idx.tir" --func emb --dim V=3 --dim N=64 --out "$T/e" --save-inputs
inrange "take indices" "$T/e/in_idx.npy" 4 0 3
expect 0 "indices through reshape" "$tirc" run "$T/idx.tir" --func emb2 --seed 9 --out "$T/e2" --save-inputs
inrange "reshaped indices" "$T/e2/in_idx.npy" 8 0 7
expect 0 "indices through a call" "$tirc" run "$T/idx.tir" --func outer --dim K=40 --out "$T/e3" --save-inputs
inrange "indices into a callee" "$T/e3/in_ix.npy" 4 0 5
expect 0 "cross_entropy targets" "$tirc" run "$T/idx.tir" --func ce --dim N=64 --out "$T/ce" --save-inputs
inrange "cross_entropy targets" "$T/ce/in_t.npy" 4 0 3
expect 0 "scatter_add indices" "$tirc" run "$T/idx.tir" --func sa --dim N=64 --out "$T/sa" --save-inputs
inrange "scatter_add indices" "$T/sa/in_idx.npy" 8 0 6
expect 0 "other ints" "$tirc" run "$T/idx.tir" --func count --out "$T/c" --save-inputs
inrange "other ints" "$T/c/in_n.npy" 4 0 8
expect 1 "an unbound indexed dim is an error" "$tirc" run "$T/idx.tir" --func rev --dim N=4
has "...that says what to bind" "$err" "%idx: i32[N] indexes a dim of size V: nothing binds V: bind V with --dim V="

# several results
cat >"$T/two.tir" <<'TIR'
func @two(%x: f32[3]) -> (f32[3], f32[]) {
  %n = neg(%x)
  %s = sum(%x)
  return %n, %s
}
TIR
expect 0 "two results" "$tirc" run "$T/two.tir" --out "$T/deep/er/dir"
[ -f "$T/deep/er/dir/out0.npy" ] && [ -f "$T/deep/er/dir/out1.npy" ] && ok "out0 and out1 in a created dir" ||
  bad "missing out0/out1 in $T/deep/er/dir"
[ "$(grep -c '^out[01]: ' <<<"$out")" = 2 ] && ok "one summary line per result" || bad "summary lines" "$out"
has "scalar result" "$out" "out1: f32[]"

# bad inputs: exit 1 with a message that says what is wrong
npy "$T/x64.npy" '<f8' '(4,)' 000000000000f03f000000000000f03f000000000000f03f000000000000f03f
expect 1 "wrong dtype" "$tirc" run "$T/axpy.tir" --func axpy --in x="$T/x64.npy"
has "wrong dtype is explained" "$err" "holds f64 data"
npy "$T/x22.npy" '<f4' '(2, 2)' 0000803f0000803f0000803f0000803f
expect 1 "wrong rank" "$tirc" run "$T/axpy.tir" --func axpy --in x="$T/x22.npy"
has "wrong rank is explained" "$err" "rank"
npy "$T/y3.npy" '<f4' '(3,)' 0000803f0000803f0000803f
expect 1 "shapes that disagree" "$tirc" run "$T/axpy.tir" --func axpy --in x="$T/x.npy" --in y="$T/y3.npy"
has "disagreeing shape names the input" "$err" "--in y="
npy "$T/short.npy" '<f4' '(4,)' 0000803f0000803f0000803f
expect 1 "truncated data" "$tirc" run "$T/axpy.tir" --func axpy --in x="$T/short.npy"
has "truncated is explained" "$err" "truncated data"
has "truncated names the file" "$err" "short.npy"
echo "not an npy file at all" >"$T/text.npy"
expect 1 "bad magic" "$tirc" run "$T/axpy.tir" --func axpy --in x="$T/text.npy"
has "bad magic is explained" "$err" "bad magic"
npy "$T/u2.npy" '<u2' '(4,)' 0000000000000000
expect 1 "<u2 is refused" "$tirc" run "$T/axpy.tir" --func axpy --in x="$T/u2.npy"
has "<u2 mentions bf16" "$err" "bf16"
expect 1 "missing file" "$tirc" run "$T/axpy.tir" --func axpy --in x="$T/nope.npy"
has "missing file is named" "$err" "nope.npy"
expect 1 "unknown parameter" "$tirc" run "$T/axpy.tir" --func axpy --in z="$T/x.npy"
has "unknown parameter lists them" "$err" "%a %x %y"
expect 1 "an input given twice" "$tirc" run "$T/axpy.tir" --func axpy --in x="$T/x.npy" --in x="$T/x.npy"
expect 1 "unbound symbol" "$tirc" run "$T/axpy.tir" --func axpy
has "unbound symbol says how to bind it" "$err" "bind N with --dim N="
expect 1 "--dim against an input" "$tirc" run "$T/axpy.tir" --func axpy --in x="$T/x.npy" --dim N=5
has "conflict is explained" "$err" "already bound: N=4"
expect 1 "unknown function" "$tirc" run "$T/axpy.tir" --func nope --dim N=2
has "unknown function lists them" "$err" "@axpy"
expect 1 "a bad program" "$tirc" run "$T/nope.tir" --func f

# usage errors: exit 2
expect 2 "--in without =" "$tirc" run "$T/axpy.tir" --func axpy --in x
expect 2 "--dim not a number" "$tirc" run "$T/axpy.tir" --func axpy --dim N=abc
expect 2 "--dim negative" "$tirc" run "$T/axpy.tir" --func axpy --dim N=-3
expect 2 "--dim bad name" "$tirc" run "$T/axpy.tir" --func axpy --dim 3=4
expect 2 "--seed not a number" "$tirc" run "$T/axpy.tir" --func axpy --seed x
expect 2 "unknown backend" "$tirc" run "$T/axpy.tir" --func axpy --dim N=2 --backend tpu
expect 2 "--after is for the interpreter" "$tirc" run "$T/axpy.tir" --func axpy --dim N=2 --backend gpu --after parse

# the GPU paths: on a GPU machine they must give axpy's known values; elsewhere exit 1, explained
gpu_run() { # NAME ARGS...
  local name=$1 rc
  shift
  rm -rf "$T/g"
  "$tirc" run "$T/axpy.tir" --func axpy --in a="$T/a.npy" --in x="$T/x.npy" --in y="$T/y.npy" --out "$T/g" "$@" \
    >"$T/.stdout" 2>"$T/.stderr"
  rc=$?
  if [ $rc = 0 ] && [ "$(npydata "$T/g/out0.npy")" = "000040400000a0400000e04000000040" ]; then
    ok "$name gives [3, 5, 7, 2]"
  elif [ $rc = 1 ] && [ -s "$T/.stderr" ] && [ ! -e "$T/g/out0.npy" ]; then
    ok "$name: not possible here, explained: $(head -1 "$T/.stderr")"
  else
    bad "$name (exit $rc)" "$(cat "$T/.stderr" "$T/.stdout")"
  fi
}
gpu_run "--backend gpu" --backend gpu
gpu_run "--compare" --compare
expect 2 "which function" "$tirc" run "$T/idx.tir" --dim N=2
has "which function lists them" "$err" "@emb"
expect 2 "unknown option" "$tirc" run "$T/axpy.tir" --frob
expect 2 "no file" "$tirc" run --func axpy
expect 2 "unknown stage" "$tirc" run "$T/axpy.tir" --func axpy --after nope

# --in binds symbols whatever the parameters' order: f32[N*N] comes before f32[N]
cat >"$T/nn.tir" <<'TIR'
func @f(%a: f32[N*N], %b: f32[N]) -> f32[] {
  %s = add(sum(%a), sum(%b))
  return %s
}
TIR
expect 0 "random inputs for N*N before N" "$tirc" run "$T/nn.tir" --func f --dim N=3 --out "$T/nn1" --save-inputs
expect 0 "--in binds N*N before N" "$tirc" run "$T/nn.tir" --func f --in a="$T/nn1/in_a.npy" \
  --in b="$T/nn1/in_b.npy" --out "$T/nn2"
cmp -s "$T/nn1/out0.npy" "$T/nn2/out0.npy" && ok "replayed N*N-first run gives the same result" ||
  bad "replayed N*N-first run differs"
finish
