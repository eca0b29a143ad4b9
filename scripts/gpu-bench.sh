#!/usr/bin/env bash
# gpu-bench.sh: the GPU numbers of the benchmark programs, in one table beside PyTorch's. Run ON
# THE GPU MACHINE from the repo root with a staged build (scripts/gpu-pack.sh here, then
# TIR_BUILD=gpubuild there). For every layer below: `tirc bench` (median of its timed runs, input
# sets rotated past L2) gives tir's time and kernel count; the layer's minimal traffic (every
# argument read once, every result written once, from the function's signature at the benchmark
# shape) gives GB/s and the share of the copy ceiling; then benchmarks/peers.py (torch eager,
# torch.compile, Liger when installed), benchmarks/peers_extra.py (softmax; SwiGLU memory measured
# with the previous run's gradients freed) and benchmarks/peers_adamw.py (when present) time the same
# layers in the same call. The table: layer, tir ms, kernels, GB/s, % of copy, torch.compile ms,
# eager ms, Liger ms, and ratio = best peer / tir (> 1: tir is faster). Logs (tirc bench's tables
# and JSON, the peers' output) go to $OUT when set, else a temporary folder.
#
# The whole run keeps within TIR_BENCH_BUDGET seconds (default 500, so one device call stays
# under the 10-minute limit): each step's timeout is cut to what is left, the peers run first
# (at most 240 + 120 s), and a step with less than 20 s left is skipped (the table says so).
#
# usage: scripts/gpu-bench.sh [--only TEXT] [--no-peers]   (TIR_BUILD=dir: the build folder;
#        TIR_BENCH_ITERS=K timed runs per layer, default 20; TIR_COPY_GBPS: the copy ceiling,
#        default 3000, the H100's measured device-to-device copy)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
build=${TIR_BUILD:-build}
logs=${OUT:-$(mktemp -d /tmp/tir-gpu-bench.XXXXXX)}
mkdir -p "$logs"
only='' peers=1
while [ $# -gt 0 ]; do
  case $1 in
    --only) only=${2:-}; shift 2 ;;
    --no-peers) peers=0; shift ;;
    *) echo "usage: scripts/gpu-bench.sh [--only TEXT] [--no-peers]" >&2; exit 2 ;;
  esac
done
iters=${TIR_BENCH_ITERS:-20}
budget=${TIR_BENCH_BUDGET:-500}
# cap LIMIT: LIMIT cut to the budget left (0 when less than 20 s is left)
cap() {
  local l=$((budget - SECONDS))
  [ "$l" -lt 20 ] && { echo 0; return; }
  [ "$l" -lt "$1" ] && echo "$l" || echo "$1"
}
copy=${TIR_COPY_GBPS:-3000}
export TIR_SOURCE_DIR=$PWD

# layer|file|function|bindings|peer section.metric|tirc bench flags (peers' keys are
# section.impl.metric; metric *: every *_ms figure of the section, as peers_adamw.py's names are
# its own). Cross-entropy and AdamW run with --donate: their arguments may be overwritten, as
# Liger's cross-entropy (gradient in place of the logits) and PyTorch's AdamW (in place) do.
layers=(
  "rmsnorm fwd|rmsnorm.tir|rmsnorm|N=16384|rmsnorm.fwd_ms"
  "rmsnorm fwd+bwd|rmsnorm.tir|rmsnorm_fwdbwd|N=16384|rmsnorm.fwdbwd_ms"
  "swiglu fwd|swiglu.tir|swiglu|N=16384|swiglu.fwd_ms"
  "swiglu fwd+bwd|swiglu.tir|swiglu_fwdbwd|N=16384|swiglu.fwdbwd_ms"
  "rope fwd q+k|rope.tir|rope|B=8,T=2048|rope.fwd_ms"
  "cross-entropy fwd+bwd|cross_entropy.tir|cross_entropy_fwdbwd|N=8192|ce.fwdbwd_ms|--donate"
  "softmax|softmax.tir|softmax|N=8192|softmax.fwd_ms"
  "adamw step|adamw.tir|adamw_step||adamw.step_ms|--donate"
)

if [ ! -x "$build/tirc" ]; then
  echo "gpu-bench: $build/tirc is missing (scripts/gpu-pack.sh on the build machine, TIR_BUILD=gpubuild)" >&2
  exit 1
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1 | tee "$logs/device.txt"

# the peers first (torch.compile's compilation takes a while), tir in the budget left
: >"$logs/peers.txt"
if [ $peers = 1 ]; then
  if [ -f benchmarks/peers.py ] && [ "$(cap 240)" != 0 ]; then
    echo "== python3 benchmarks/peers.py rmsnorm swiglu rope ce"
    timeout "$(cap 240)" python3 benchmarks/peers.py rmsnorm swiglu rope ce >"$logs/peers.log" 2>&1
    echo "   exit $?: $(grep -c ': ' "$logs/peers.log") figures"
    cat "$logs/peers.log" >>"$logs/peers.txt"
  fi
  if [ -f benchmarks/peers_extra.py ] && [ "$(cap 90)" != 0 ]; then
    echo "== python3 benchmarks/peers_extra.py softmax swiglu_mem"
    timeout "$(cap 90)" python3 benchmarks/peers_extra.py softmax swiglu_mem >"$logs/peers_extra.log" 2>&1
    echo "   exit $?: $(grep -c ': ' "$logs/peers_extra.log") figures"
    cat "$logs/peers_extra.log" >>"$logs/peers.txt"
  fi
  if [ -f benchmarks/peers_adamw.py ] && [ "$(cap 120)" != 0 ]; then
    echo "== python3 benchmarks/peers_adamw.py"
    timeout "$(cap 120)" python3 benchmarks/peers_adamw.py >"$logs/peers_adamw.log" 2>&1
    echo "   exit $?: $(grep -c ': ' "$logs/peers_adamw.log") figures"
    cat "$logs/peers_adamw.log" >>"$logs/peers.txt"
  fi
fi

: >"$logs/tir.tsv"
for L in "${layers[@]}"; do
  IFS='|' read -r name file func binds peer flags <<<"$L"
  [ -n "$only" ] && [[ "$name $func" != *"$only"* ]] && continue
  [ -f "benchmarks/$file" ] || { echo "-- $name: benchmarks/$file missing"; continue; }
  dims=()
  IFS=',' read -ra bs <<<"$binds"
  for b in "${bs[@]}"; do [ -n "$b" ] && dims+=(--dim "$b"); done
  echo "== $name: tirc bench benchmarks/$file --func $func ${dims[*]}"
  t0=$SECONDS
  lim=$(cap 150)
  if [ "$lim" = 0 ]; then
    echo "   skipped: the ${budget}s budget is spent"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$file" "$func" "$binds" "$peer" "budget" >>"$logs/tir.tsv"
    continue
  fi
  # shellcheck disable=SC2086 # flags: words
  timeout "$lim" "$build/tirc" bench "benchmarks/$file" --func "$func" "${dims[@]}" $flags --iters "$iters" \
    --copy-gbps "$copy" --json "$logs/$func.json" >"$logs/$func.log" 2>&1
  rc=$?
  tail -4 "$logs/$func.log"
  [ $rc = 0 ] || echo "   (exit $rc after $((SECONDS - t0))s: see $logs/$func.log)"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$file" "$func" "$binds" "$peer" "$rc" >>"$logs/tir.tsv"
done

# matmul epilogues: the fused kernel against the matmul kernel + a separate elementwise kernel
# (TIR_TILE_EPILOGUE=0), tir's kernel both times, T=8192 (Llama-3-8B's MLP and output projection)
: >"$logs/epilogue.tsv"
for func in up_silu down_residual; do
  [ -z "$only" ] || [[ "epilogue $func" == *"$only"* ]] || continue
  for ep in 1 0; do
    lim=$(cap 60)
    [ "$lim" = 0 ] && continue
    TIR_TILE_EPILOGUE=$ep timeout "$lim" "$build/tirc" bench benchmarks/matmul_epilogue.tir --func $func \
      --dim T=8192 --matmul=tir --iters "$iters" --json "$logs/epi_${func}_$ep.json" >"$logs/epi_${func}_$ep.log" 2>&1 &&
      printf '%s\t%s\n' "$func" "$ep" >>"$logs/epilogue.tsv"
  done
done

python3 - "$logs" "$copy" <<'EOF'
import json, os, re, sys
logs, copy = sys.argv[1], float(sys.argv[2])
SIZES = {"f64": 8, "f32": 4, "f16": 2, "bf16": 2, "i64": 8, "i32": 4, "i16": 2, "i8": 1, "u8": 1,
         "bool": 1, "f8e4m3": 1, "f8e5m2": 1}

def signature(path, func):
    """(argument types, result types) of func as (dtype, dims text) pairs"""
    text = open(path).read()
    m = re.search(r"^func @" + re.escape(func) + r"\((.*?)\)\s*->\s*(.*?)\{", text, re.S | re.M)
    if not m: return None
    ty = r"([a-z0-9]+)\[([^\]]*)\]"
    return re.findall(ty, m.group(1)), re.findall(ty, m.group(2))

def nbytes(types, binds):
    total = 0
    for dt, dims in types:
        n = 1
        for d in filter(None, (x.strip() for x in dims.split(","))):
            n *= int(eval(re.sub(r"[A-Za-z_]\w*", lambda s: str(binds[s.group(0)]), d), {}))
        total += n * SIZES.get(dt, 4)
    return total

peers = {}  # section.metric -> {impl: ms}
pmem = {}   # section -> torch.compile's (AdamW: fused's) peak GiB above the inputs
if os.path.exists(f"{logs}/peers.txt"):
    for line in open(f"{logs}/peers.txt"):
        m = re.match(r"^([a-z0-9_]+)\.([A-Za-z0-9_]+)\.([a-z0-9_]+_ms):\s*([0-9.eE+-]+)\s*$", line.strip())
        if m: peers.setdefault(f"{m.group(1)}.{m.group(3)}", {})[m.group(2)] = float(m.group(4))
        m = re.match(r"^([a-z0-9_]+)\.(compile|fused)\.peak_GiB:\s*([0-9.eE+-]+)\s*$", line.strip())
        if m: pmem[m.group(1)] = float(m.group(3))

# peers.py's swiglu peak undercounts (its baseline still holds the previous run's gradients):
# peers_extra.py's swiglu_mem measures it with them freed first
if "swiglu_mem" in pmem: pmem["swiglu"] = pmem["swiglu_mem"]

def cell(v, fmt="%.4f"): return fmt % v if v is not None else "-"

hdr = ("layer", "check", "tir ms", "kernels", "GB/s", "% copy", "compile ms", "eager ms", "Liger ms", "ratio",
       "tir GiB", "compile GiB")
rows, notes = [], []
for line in open(f"{logs}/tir.tsv"):
    name, file, func, binds, peer, rc = line.rstrip("\n").split("\t")
    b = dict(kv.split("=") for kv in binds.split(",") if kv)
    b = {k: int(v) for k, v in b.items()}
    ms = kernels = gbs = pct = mem = None
    chk = "-"
    try:
        j = json.load(open(f"{logs}/{func}.json"))
        ms, kernels = j["total_us"] / 1e3, len(j["kernels"])
        chk = j.get("check", "-")
        # memory beyond the arguments (the peers measure peak allocation above their inputs)
        if "arena_bytes" in j: mem = (j["arena_bytes"] + j["result_bytes"]) / 2**30
        sig = signature(f"benchmarks/{file}", func)
        if sig and ms > 0:
            gbs = (nbytes(sig[0], b) + nbytes(sig[1], b)) / (ms * 1e-3) / 1e9
            pct = 100 * gbs / copy
    except Exception as e:
        notes.append(f"{name}: no tir figure ({e.__class__.__name__}: {e}; exit {rc}, see {func}.log)")
    p = peers.get(peer, {})
    if peer.endswith(".*"):
        p = {}
        for k, v in peers.items():
            if k.startswith(peer[:-1]): p.update(v)
    best = min(p.values()) if p else None
    others = {k: v for k, v in p.items() if k not in ("compile", "eager", "liger")}
    if others: notes.append(f"{name}: other peers " + ", ".join(f"{k} {v:.4f} ms" for k, v in others.items()))
    ratio = best / ms if best and ms else None
    rows.append((name, chk, cell(ms), str(kernels) if kernels is not None else "-", cell(gbs, "%.0f"),
                 cell(pct, "%.1f%%"), cell(p.get("compile")), cell(p.get("eager")), cell(p.get("liger")),
                 cell(ratio, "%.2fx"), cell(mem, "%.2f"), cell(pmem.get(peer.split(".")[0]), "%.2f")))

w = [max(len(str(r[i])) for r in rows + [hdr]) for i in range(len(hdr))]
out = []
out.append("  ".join(h.ljust(w[i]) if i == 0 else h.rjust(w[i]) for i, h in enumerate(hdr)))
for r in rows: out.append("  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r)))
out.append(f"check: tirc bench's own check of the same kernels against the interpreter at a small binding. "
           f"GB/s: the layer's minimal traffic (arguments read once, results written once) over tir's time; "
           f"% of a {copy:.0f} GB/s copy. ratio: the fastest peer's time / tir's (> 1: tir is faster). "
           f"GiB: device memory beyond the arguments (tir: arena + results not written over a donated "
           f"argument, from the memory plan; torch: peak allocation above the inputs, fwd+bwd).")
out += notes
ep = {}
if os.path.exists(f"{logs}/epilogue.tsv"):
    for line in open(f"{logs}/epilogue.tsv"):
        func, e = line.split()
        j = json.load(open(f"{logs}/epi_{func}_{e}.json"))
        ep.setdefault(func, {})[e] = (j["total_us"] / 1e3, len(j["kernels"]), j["total_flops"])
if ep:
    out.append("")
    out.append("matmul epilogue (T=8192, --matmul=tir): fused in the matmul kernel vs matmul + elementwise kernel")
    for func, v in ep.items():
        f1, f0 = v.get("1"), v.get("0")
        cells = [func]
        for x in (f1, f0):
            cells.append("-" if not x else "%.4f ms (%d kernel%s, %.0f TFLOP/s)" % (x[0], x[1], "" if x[1] == 1 else "s", x[2] / x[0] / 1e9))
        if f1 and f0: cells.append("speed-up %.2fx" % (f0[0] / f1[0]))
        out.append("  " + "  |  ".join(cells))
text = "\n".join(out)
print("\n== summary  (logs: %s)\n%s" % (logs, text))
open(f"{logs}/table.txt", "w").write(text + "\n")
EOF
