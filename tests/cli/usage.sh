#!/usr/bin/env bash
# usage.sh: tirc's help and usage errors: --help for every verb, unknown verbs, unbuilt verbs.
source "$(dirname "$0")/common.bash"

expect 0 "tirc --help" "$tirc" --help
has "--help lists check" "$out" "check"
verbs=$(sed -n '/^verbs:/,/^$/p' <<<"$out" | awk 'NF && !/^verbs:/ {print $1}')
for v in check print run ptx gradcheck bench fuzz; do
  grep -qx "$v" <<<"$verbs" && ok "--help lists $v" || bad "--help does not list $v" "$out"
done
for v in $verbs; do
  expect 0 "tirc $v --help" "$tirc" "$v" --help
  has "tirc $v --help shows usage" "$out" "usage: tirc $v"
  expect 0 "tirc help $v" "$tirc" help "$v"
done
expect 2 "no arguments" "$tirc"
has "no arguments shows the verbs" "$err" "verbs:"
expect 2 "unknown verb" "$tirc" frobnicate x.tir
has "unknown verb is named" "$err" "unknown verb 'frobnicate'"
expect 2 "help of an unknown verb" "$tirc" help frobnicate
for v in ptx gradcheck bench fuzz; do
  if "$tirc" "$v" --help | grep -q "not built yet"; then
    expect 2 "unbuilt verb $v exits 2" "$tirc" "$v" examples/mlp.tir
    has "unbuilt $v says so" "$err" "not built yet"
  else
    ok "$v is built"
  fi
done
finish
