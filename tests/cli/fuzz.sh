#!/usr/bin/env bash
# fuzz.sh: `tirc fuzz`, the compile-time fuzzer, as a bounded CI run: 300 random programs of seed 1
# through every stage (and, in an LLVM build, tir_compile and ptxas), the fuzz regressions of
# tests/golden/fuzz_*.tir replayed with every check, reproducibility, and the command line.
# (The libFuzzer targets and the long campaigns are scripts/fuzz.sh.)
source "$(dirname "$0")/common.bash"

if "$tirc" fuzz --help 2>&1 | grep -q "not built yet"; then
  bad "tirc has no fuzz verb: compiler/tirc.c must call tir_cmd_fuzz (compiler/fuzz.h)"
  finish
  exit 1
fi

# the bounded run: under two minutes on two cores, with LLVM and ptxas included
expect 0 "tirc fuzz --seed 1 --count 300" "$tirc" fuzz --seed 1 --count 300 --keep "$T/kept" \
  --reduce-time 20 ||
  head -80 <<<"$out"
last=$(tail -1 <<<"$out")
[ "$last" = "300 passed, 0 failed" ] && ok "summary last: $last" || bad "summary last: '$last'"

# regressions the fuzzers found: each must now pass every check
for f in tests/golden/fuzz_*.tir; do
  [ -e "$f" ] || continue
  grep -q '^# EXPECT-ERROR:' "$f" && continue # a diagnostic test: tests/golden/run.sh checks it
  expect 0 "replay $(basename "$f")" "$tirc" fuzz --check "$f" --budget 200 --reduce-time 10 ||
    head -30 <<<"$out"
done

# program i of a seed is always the same program, whatever else the run does
"$tirc" fuzz --seed 7 --only 3 --print --no-codegen >"$T/a" 2>&1
"$tirc" fuzz --seed 7 --count 5 --print --no-codegen >"$T/b" 2>&1
sed -n '/^# ---- program 3 /,/^# ---- program 4 /p' "$T/b" | sed '$d' >"$T/b3"
sed -n '/^# ---- program 3 /,$p' "$T/a" | sed '$d' >"$T/a3"
[ -s "$T/a3" ] && cmp -s "$T/a3" "$T/b3" && ok "--only replays a program of a run" ||
  bad "--only 3 printed another program than the run's program 3"
"$tirc" fuzz --seed 8 --count 5 --print --no-codegen >"$T/c" 2>&1
cmp -s "$T/b" "$T/c" && bad "seeds 7 and 8 generated the same programs" || ok "another seed, other programs"

# a kept program replays through --check
cat >"$T/ok.tir" <<'TIR'
# dims: N=5
# input-seed: 3
func @f(%x: f32[N, 4], %w: f32[4]) -> f32[N, 4] {
  %y = rmsnorm(%x, %w)
  %z = mul(%y, 2.0)
  return %z
}
TIR
expect 0 "--check a valid program" "$tirc" fuzz --check "$T/ok.tir"
has "--check summary" "$out" "1 passed, 0 failed"
printf 'func @f(%%x: f32[4]) -> f32[4] {\n  return %%y\n}\n' >"$T/bad.tir"
expect 1 "--check a program that does not parse" "$tirc" fuzz --check "$T/bad.tir"
has "...says so" "$out" "does not parse"

# usage errors: exit 2
expect 2 "--count not a number" "$tirc" fuzz --count x
expect 2 "--seed negative" "$tirc" fuzz --seed -1
expect 2 "unknown option" "$tirc" fuzz --frob
expect 2 "--dim without a size" "$tirc" fuzz --check "$T/ok.tir" --dim N
expect 0 "--help" "$tirc" fuzz --help
has "--help names the options" "$out" "--keep DIR"
finish
