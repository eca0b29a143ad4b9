#!/usr/bin/env bash
# make_corpus.sh: seed corpora and a dictionary for the libFuzzer targets of tests/fuzz.
#   tests/fuzz/make_corpus.sh OUTDIR
# writes OUTDIR/parse/ (every examples/*.tir and tests/golden/*.tir), OUTDIR/npy/ (small .npy files
# of every dtype numpy and tir share, a few shapes, both header versions, and some broken ones),
# and OUTDIR/tir.dict (keywords, op names, dtypes and punctuation of the .tir language, from
# ir/ops.def), for `fuzz_parse -dict=OUTDIR/tir.dict`. Run from anywhere; needs only bash.
set -eu
out=${1:?usage: tests/fuzz/make_corpus.sh OUTDIR}
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out/parse" "$out/npy"

for f in "$root"/examples/*.tir "$root"/tests/golden/*.tir; do
  case $f in
  # a known hang, tracked by its golden test: seeded, it would stop every run at once
  */fuzz_dim_product_blowup.tir) continue ;;
  esac
  [ -e "$f" ] && cp "$f" "$out/parse/$(basename "$(dirname "$f")")_$(basename "$f")"
done

# npy VERSION FILE DESCR SHAPE HEX: a .npy file written by hand (HEX: the data, little-endian)
npy() {
  local ver=$1 f=$2 descr=$3 shape=$4 hex=$5
  local dict="{'descr': '$descr', 'fortran_order': False, 'shape': $shape, }"
  local pre=10
  [ "$ver" = 2 ] && pre=12
  local total=$((pre + ${#dict} + 1))
  local padded=$(((total + 63) / 64 * 64))
  local hl=$((padded - pre))
  if [ "$ver" = 2 ]; then
    printf '\x93NUMPY\x02\x00' >"$f"
    printf "\\x$(printf %02x $((hl & 255)))\\x$(printf %02x $(((hl >> 8) & 255)))\\x00\\x00" >>"$f"
  else
    printf '\x93NUMPY\x01\x00' >"$f"
    printf "\\x$(printf %02x $((hl & 255)))\\x$(printf %02x $((hl >> 8)))" >>"$f"
  fi
  printf '%s%*s\n' "$dict" $((padded - total)) '' >>"$f"
  [ -n "$hex" ] && printf '%b' "$(sed 's/\(..\)/\\x\1/g' <<<"$hex")" >>"$f"
  return 0
}
n=$out/npy
npy 1 "$n/f4_scalar.npy" '<f4' '()' 0000803f
npy 1 "$n/f4_vec.npy" '<f4' '(4,)' 0000803f00000040000040400000003f
npy 1 "$n/f4_mat.npy" '<f4' '(2, 3)' 0000803f000000400000404000008040000000c00000c07f
npy 1 "$n/f8_vec.npy" '<f8' '(2,)' 000000000000f03f000000000000f07f
npy 1 "$n/f2_vec.npy" '<f2' '(3,)' 003c0040007c
npy 1 "$n/i4_vec.npy" '<i4' '(3,)' 01000000ffffffff07000000
npy 1 "$n/i8_mat.npy" '<i8' '(1, 2)' 0100000000000000feffffffffffffff
npy 1 "$n/i1_vec.npy" '|i1' '(2,)' 7f80
npy 1 "$n/u1_vec.npy" '|u1' '(2,)' 00ff
npy 1 "$n/b1_vec.npy" '|b1' '(3,)' 010001
npy 1 "$n/empty.npy" '<f4' '(0, 5)' ''
npy 1 "$n/rank4.npy" '<f4' '(1, 1, 1, 2)' 0000803f00000040
npy 2 "$n/v2_f4.npy" '<f4' '(2,)' 0000803f00000040
npy 1 "$n/bad_u2.npy" '<u2' '(1,)' 0000
npy 1 "$n/bad_short.npy" '<f4' '(4,)' 0000803f
npy 1 "$n/bad_big_endian.npy" '>f4' '(1,)' 3f800000
printf 'not an npy file' >"$n/bad_magic.npy"
printf '\x93NUMPY\x01\x00\xff\xff' >"$n/bad_header_len.npy"

# the dictionary: what the lexer and the parser know
{
  for w in func return value_and_grad wrt true false inf nan; do echo "\"$w\""; done
  for t in f64 f32 f16 bf16 f8e4m3 f8e5m2 i64 i32 i8 u8 bool; do echo "\"$t\""; done
  sed -n 's/^X([A-Z_]*, *"\([a-z_]*\)".*/"\1"/p' "$root/ir/ops.def"
  grep -o '[a-z_]*:\(ints\|int\|float\|bool\|str\|dtype\|shape\)' "$root/ir/ops.def" | cut -d: -f1 |
    sort -u | sed 's/.*/"&="/'
  for p in '(' ')' '[' ']' '{' '}' ',' '=' ':' '->' '+' '-' '*' '/' '%' '@' '#' '"'; do
    printf '"%s"\n' "$(sed 's/\\/\\\\/; s/"/\\"/' <<<"$p")"
  done
  echo '"%x: f32[N, 4]"'
  echo '"func @f(%x: f32[N]) -> f32[N] {\x0A"'
  echo '"  return %x\x0A}\x0A"'
} >"$out/tir.dict"
echo "corpus in $out: $(ls "$out/parse" | wc -l) .tir, $(ls "$out/npy" | wc -l) .npy, $(wc -l <"$out/tir.dict") dictionary entries"
