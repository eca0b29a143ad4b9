#!/usr/bin/env bash
# run.sh: the golden tests. Each tests/golden/*.tir carries its expectation in comments at the top:
#   # RUN: check                      tirc check must succeed (exit 0)
#   # RUN: check
#   # EXPECT-ERROR: :3:14: error: ... tirc check must exit 1, and the first line it writes to stderr
#                                     must contain the text after "EXPECT-ERROR: "
#   # RUN: print [--after STAGE]
#   # EXPECT:
#   # | func @f(...) ...              tirc print must write exactly these lines (without "# | ");
#                                     printing that output again must give it back unchanged
# A sanitizer report or a crash fails the test whatever the exit code.
# Usage: tests/golden/run.sh path/to/tirc   (from the repo root; prints "N passed, M failed" last)
set -u
tirc=${1:?usage: tests/golden/run.sh path/to/tirc}
dir=$(dirname "$0")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0

run_tirc() { # verb [options] file: stdout -> $tmp/out, stderr -> $tmp/err, exit code -> $rc
  if command -v timeout >/dev/null; then
    timeout 120 "$tirc" "$@" >"$tmp/out" 2>"$tmp/err"
  else
    "$tirc" "$@" >"$tmp/out" 2>"$tmp/err"
  fi
  rc=$?
}

sanitizer_report() { grep -q -e 'Sanitizer' -e 'runtime error:' "$tmp/err"; }

bad() { # file reason
  fail=$((fail + 1))
  echo "FAIL $1: $2"
}

for f in "$dir"/*.tir; do
  [ -e "$f" ] || continue
  run=$(sed -n 's/^# RUN: *//p' "$f" | head -n 1 | tr -d '\r')
  case "$run" in
  check)
    expect=$(sed -n 's/^# EXPECT-ERROR: //p' "$f" | head -n 1 | tr -d '\r')
    run_tirc check "$f"
    if sanitizer_report; then
      bad "$f" "sanitizer report"; sed 's/^/    /' "$tmp/err" | head -n 20; continue
    fi
    if [ -z "$expect" ]; then
      if [ "$rc" -ne 0 ]; then bad "$f" "expected success, exit $rc"; sed 's/^/    /' "$tmp/err"; continue; fi
    else
      first=$(head -n 1 "$tmp/err")
      if [ "$rc" -ne 1 ]; then bad "$f" "expected exit 1, got $rc: $first"; continue; fi
      case "$first" in
      *"$expect"*) ;;
      *) bad "$f" "diagnostic mismatch"; echo "    expected: $expect"; echo "    got:      $first"; continue ;;
      esac
    fi
    ;;
  print*)
    # `# RUN: print --after STAGE` passes its options on; the round trip below re-prints plainly
    args=${run#print}
    sed -n -e 's/^# | //p' -e 's/^# |$//p' "$f" >"$tmp/want"
    # shellcheck disable=SC2086
    run_tirc print $args "$f"
    if sanitizer_report || [ "$rc" -ne 0 ]; then
      bad "$f" "tirc print failed (exit $rc)"; sed 's/^/    /' "$tmp/err" | head -n 20; continue
    fi
    if ! diff -u "$tmp/want" "$tmp/out" >"$tmp/diff"; then
      bad "$f" "printout differs"; sed 's/^/    /' "$tmp/diff"; continue
    fi
    cp "$tmp/out" "$tmp/again.tir"
    run_tirc print "$tmp/again.tir"
    if [ "$rc" -ne 0 ] || ! diff -u "$tmp/again.tir" "$tmp/out" >"$tmp/diff"; then
      bad "$f" "printing the printout again changes it"; sed 's/^/    /' "$tmp/diff" "$tmp/err"; continue
    fi
    ;;
  *)
    bad "$f" "no '# RUN: check' or '# RUN: print' line"; continue ;;
  esac
  pass=$((pass + 1))
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
