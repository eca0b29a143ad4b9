#!/usr/bin/env bash
# bench.sh: `tirc bench`: its command line (usage errors exit 2, a wrong program 1), and without a
# CUDA driver a clear message and exit 3; with one (the GPU machine), a table with a row per
# kernel, the total and the peak memory, and the same figures as JSON.
source "$(dirname "$0")/common.bash"
needs_codegen

cat >"$T/ce.tir" <<'TIR'
func @ce(%logits: f32[N, C], %t: i32[N]) -> f32[] {
  %l = cross_entropy(%logits, %t)
  return %l
}
TIR

expect 0 "bench --help" "$tirc" bench --help
has "help names --iters" "$out" "--iters K"
has "help names --donate" "$out" "--donate"
has "help names the copy ceiling" "$out" "--copy-gbps"
has "help names the shared matmul options" "$out" "--matmul=tir|cublas|auto"
has "help says it checks first" "$out" "compared with the interpreter"
has "help names --no-check" "$out" "--no-check"
has "tirc --help lists bench as built" "$("$tirc" --help)" "bench      GPU time per kernel"
expect 2 "no input file" "$tirc" bench
has "says there is no input" "$err" "no input file"
expect 2 "--iters 0 is refused" "$tirc" bench "$T/ce.tir" --func ce --iters 0
has "names the bad value" "$err" "bad --iters '0'"
expect 2 "--copy-gbps needs a number" "$tirc" bench "$T/ce.tir" --func ce --copy-gbps fast
expect 2 "--dim wants SYM=size" "$tirc" bench "$T/ce.tir" --func ce --dim N
expect 2 "unknown option" "$tirc" bench "$T/ce.tir" --func ce --fast
expect 2 "bad --matmul" "$tirc" bench "$T/ce.tir" --func ce --matmul=fastest
expect 1 "no such function" "$tirc" bench "$T/ce.tir" --func nope
has "names the function" "$err" "no function @nope"

"$tirc" run "$T/ce.tir" --func ce --dim N=8 --dim C=16 --backend gpu --out "$T/probe" >/dev/null 2>"$T/probe.err"
if grep -q "no CUDA driver" "$T/probe.err"; then
  expect 3 "without a driver bench exits 3" "$tirc" bench "$T/ce.tir" --func ce --dim N=8 --dim C=16
  has "says why" "$err" "no CUDA driver"
  has "points to explain" "$err" "tirc explain"
  [ -z "$out" ] && ok "prints no table" || bad "printed a table without a GPU" "$out"
else
  expect 0 "bench on the GPU" "$tirc" bench "$T/ce.tir" --func ce --dim N=4096 --dim C=32000 \
    --iters 5 --json "$T/b.json"
  matches "a row per kernel with time and GB/s" "$out" "^tir_[a-z_0-9]+ +fused +[0-9.]+ "
  matches "a total row" "$out" "^total +[0-9.]+ "
  has "peak memory from the plan" "$out" "peak device memory"
  has "input sets rotate past the L2" "$out" "in rotation past a 50 MB L2"
  has "json has the kernels" "$(cat "$T/b.json")" '"kernels": [{"name": "tir_'
  has "json has the peak" "$(cat "$T/b.json")" '"peak_bytes": '
  matches "checked at a small binding first" "$out" "^check: @ce at N=8 C=16 against the interpreter: out0 [^ ]+ \(tol [^)]*\) ok$"
  has "json says the check passed" "$(cat "$T/b.json")" '"check": "ok"'
  expect 0 "bench --no-check" "$tirc" bench "$T/ce.tir" --func ce --dim N=64 --dim C=64 --iters 2 --no-check
  [[ "$out" != *"check:"* ]] && ok "--no-check prints no check" || bad "--no-check still checked" "$out"
  expect 0 "bench --donate" "$tirc" bench "$T/ce.tir" --func ce --dim N=4096 --dim C=32000 --iters 3 --donate
  has "says the arguments are donated" "$out" "arguments donated"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
