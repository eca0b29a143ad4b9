#!/usr/bin/env bash
# explain.sh: `tirc explain` on a small program (softmax then a matmul), golden-style: the fusion
# account, the kernels with their schedules and the matmul's executor, and the memory plan,
# whose slots and peak are worked out by hand below. Works without a GPU.
source "$(dirname "$0")/common.bash"
needs_codegen

cat >"$T/p.tir" <<'TIR'
func @probs(%x: f32[N, 64], %w: f32[64, 64]) -> f32[N, 64] {
  %s = softmax(%x, axis=-1)
  %y = matmul(%s, %w)
  return %y
}
TIR

expect 0 "explain --help" "$tirc" explain --help
has "help names --dim" "$out" "--dim SYM=SIZE"
expect 0 "explain with N bound" "$tirc" explain "$T/p.tir" --dim N=4
# fusion: softmax is one row kernel, the matmul stays outside, and the boundary says why
has "fusion section" "$out" "== fusion: which ops share a kernel, and why each boundary"
has "softmax is one kernel" "$out" "kernel softmax_0: reduction of [N, 64] over axes [1]"
has "its ops" "$out" "ops: max (2:8), sub (2:8), exp (2:8), sum (2:8), div (2:8)"
has "the boundary and its reason" "$out" "div (2:8) -> matmul (3:8): matmul: not fusible (tensor-core kernel)"
# kernels: in launch order, with the region's schedule, and the matmul's executor and tiling
has "kernels section" "$out" "== kernels of @probs (sm_90a), in launch order"
matches "the row kernel with its schedule" "$out" "tir_softmax_0_0 +fused +block [0-9]+x1x1  schedule: kind=\"row\""
matches "the matmul's tiling" "$out" "tir tiling: "
# memory (N=4, f32): x 1024 B, w 16384 B, s 1024 B, y 1024 B. A host run copies x and w into the
# arena (slots 0, 1); the softmax kernel reads each x only in the thread that writes that element
# of s (codegen/fused.c's inplace_ok), so s is written over x, dead after softmax; y needs a slot
# of its own (s is still read while y is made). Arena 1024 + 16384 + 1024 = 18432 B = 18.00 KiB; a
# buffer per value would be 19456 B. On device tensors: arguments 17408 B stay the caller's, s in
# a 1024 B arena, y allocated for the caller: 19.00 KiB; with x donated, s is written over it.
has "plan header" "$out" "== memory plan (N=4)"
matches "x copied into slot 0" "$out" "^  0 +arena \(%x copied in\) +0 +1024  "
matches "w copied into slot 1" "$out" "^  1 +arena \(%w copied in\) +1024 +16384  "
matches "s written over x" "$out" "tir_softmax_0_0 +result 0 \(1024 B\) -> slot 0 in place of operand 0"
matches "y gets slot 2" "$out" "tir_matmul[a-z_]*_1 +result 0 \(1024 B\) -> slot 2"
has "host peak" "$out" "host run (arguments copied into the arena): peak 18.00 KiB = arena 18.00 KiB + results 0 B + arguments 0 B; 1 in place, 0 reused (a buffer per value: 19.00 KiB; live at once at most: 18.00 KiB)"
has "device peak" "$out" "device run (arguments in the caller's buffers): peak 19.00 KiB = arena 1.00 KiB + results 1.00 KiB + arguments 17.00 KiB"
expect 0 "explain --donate" "$tirc" explain "$T/p.tir" --dim N=4 --donate
has "donated device run" "$out" "device run, arguments donated: peak 18.00 KiB = arena 0 B + results 1.00 KiB + arguments 17.00 KiB; 1 in place"
# without a binding: everything but the sizes
expect 0 "explain without --dim" "$tirc" explain "$T/p.tir"
has "says which symbol is unbound" "$out" "no sizes: cannot size f32[N, 64]: a symbol is unbound (bind it with --dim)"
# in place: exp's result is %x's size and %x dies there. argmax has no fused lowering today, so
# its region runs op by op and the plain exp kernel may write over its operand; where a kernel
# says so, the plan must use it (and a host run saves %x's slot)
cat >"$T/ip.tir" <<'TIR'
func @t(%x: f32[N, 8]) -> (i64[N], f32[N, 8]) {
  %e = exp(%x)
  %i = argmax(neg(%e), axes=[-1])
  return %i, %e
}
TIR
expect 0 "explain a program with an in-place kernel" "$tirc" explain "$T/ip.tir" --dim N=7 --donate
if grep -qE "^  tir_exp_[0-9]+ " <<<"$out" && grep -qF "may write in place of operand 0" <<<"$out"; then
  matches "exp is written over %x" "$out" "tir_exp_[0-9]+ +result 0 \(224 B\) -> slot 0 in place of operand 0"
  has "counted in the host run" "$out" "1 in place"
  has "and over the donated argument" "$out" "device run, arguments donated: peak 536 B = arena 256 B + results 56 B + arguments 224 B; 1 in place"
else
  ok "exp is fused: no plain in-place kernel to check"
fi
# every function of the examples explains (sizes unbound: everything but the memory plan)
for f in examples/*.tir; do
  for fn in $(sed -n 's/^func @\([A-Za-z0-9_]*\).*/\1/p' "$f"); do
    expect 0 "explain $f @$fn" "$tirc" explain "$f" --func "$fn"
    has "explain $f @$fn has kernels" "$out" "== kernels of @$fn"
  done
done
# errors
expect 1 "no such function" "$tirc" explain "$T/p.tir" --func nope
has "names it" "$err" "no function @nope"
expect 2 "bad --dim" "$tirc" explain "$T/p.tir" --dim N=x
expect 2 "no input file" "$tirc" explain
expect 1 "a file that does not parse" "$tirc" explain /dev/null/none.tir

# a horizontal kernel pairs each result with the one operand it may be written over
# (tir_kernel.inplace_of): explain prints the pairs, not the operand mask
cat >"$T/hz.tir" <<'TIR'
func @two(%a: f32[64], %ga: f32[64], %b: f32[32, 8], %gb: f32[32, 8]) -> (f32[64], f32[32, 8]) {
  %na = sub(%a, %ga)
  %nb = sub(%b, %gb)
  return %na, %nb
}
TIR
expect 0 "explain a horizontal kernel" "$tirc" explain "$T/hz.tir" --func two
matches "its pairs, result<-operand" "$out" "^      may write in place \(result<-operand\): 0<-0 1<-2$"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
