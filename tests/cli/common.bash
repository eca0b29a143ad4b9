# common.bash: helpers sourced by tests/cli/*.sh (not a test itself: ctest globs only *.sh).
# Each script runs as `bash tests/cli/X.sh /path/to/tirc` from the repo root, counts checks, and
# ends with `N passed, M failed` and a non-zero exit on any failure.
set -u
tirc=${1:?usage: bash tests/cli/X.sh path/to/tirc}
case $tirc in /*) ;; *) tirc=$PWD/$tirc ;; esac
T=$(mktemp -d "${TMPDIR:-/tmp}/tir_cli.XXXXXX")
trap 'rm -rf "$T"' EXIT
passed=0
failed=0
out=
err=

ok() { passed=$((passed + 1)); echo "ok    $1"; }
bad() {
  failed=$((failed + 1))
  echo "FAIL  $1"
  if [ -n "${2:-}" ]; then sed 's/^/      | /' <<<"$2"; fi
}

# expect RC NAME CMD...: runs CMD; $out and $err get its stdout and stderr; false on a wrong RC
expect() {
  local want=$1 name=$2 rc
  shift 2
  "$@" >"$T/.stdout" 2>"$T/.stderr"
  rc=$?
  out=$(cat "$T/.stdout")
  err=$(cat "$T/.stderr")
  if [ "$rc" = "$want" ]; then
    ok "$name"
  else
    bad "$name (exit $rc, want $want)" "$err"
    return 1
  fi
}

# has NAME TEXT NEEDLE: TEXT contains NEEDLE (a fixed string)
has() { if grep -qF -- "$3" <<<"$2"; then ok "$1"; else bad "$1: no '$3' in:" "$2"; fi; }
# matches NAME TEXT REGEX (extended)
matches() { if grep -qE -- "$3" <<<"$2"; then ok "$1"; else bad "$1: no /$3/ in:" "$2"; fi; }
# same NAME FILE FILE: byte-identical
same() { if cmp -s "$2" "$3"; then ok "$1"; else bad "$1: $2 and $3 differ"; fi; }

# npy FILE DESCR SHAPE HEX: a v1.0 .npy file written by hand (no numpy needed); HEX is the data
# as little-endian bytes, e.g. "0000803f" for the f32 1.0
npy() {
  local f=$1 descr=$2 shape=$3 hex=$4
  local dict="{'descr': '$descr', 'fortran_order': False, 'shape': $shape, }"
  local total=$((10 + ${#dict} + 1))
  local padded=$(((total + 63) / 64 * 64))
  local hl=$((padded - 10))
  printf '\x93NUMPY\x01\x00' >"$f"
  printf "\\x$(printf %02x $((hl & 255)))\\x$(printf %02x $((hl >> 8)))" >>"$f"
  printf '%s%*s\n' "$dict" $((padded - total)) '' >>"$f"
  printf '%b' "$(sed 's/\(..\)/\\x\1/g' <<<"$hex")" >>"$f"
}

# npydata FILE: the data bytes of a .npy v1 file, as one hex string
npydata() {
  local hl
  [ -f "$1" ] || { echo "(no file $1)"; return 1; }
  hl=$(od -An -tu2 -j8 -N2 "$1" | tr -d ' ')
  tail -c +$((10 + hl + 1)) "$1" | od -An -v -tx1 | tr -d ' \n'
}

# needs_codegen: for scripts that compile kernels. Ends the script with exit 77 (what ctest counts
# as skipped: SKIP_RETURN_CODE) when $tirc was built without LLVM (TIR_WITH_LLVM=OFF)
needs_codegen() {
  printf 'func @f(%%x: f32[4]) -> f32[4] {\n  %%y = exp(%%x)\n  return %%y\n}\n' >"$T/.codegen.tir"
  if "$tirc" ptx "$T/.codegen.tir" -o "$T/.codegen" 2>&1 >/dev/null | grep -q "built without LLVM"; then
    echo "skipped: $tirc has no codegen (built with TIR_WITH_LLVM=OFF)"
    exit 77
  fi
}

finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" = 0 ]
}
