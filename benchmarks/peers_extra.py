# Peer figures that benchmarks/peers.py (a copy of the shared one) lacks, timed the same way
# (triton's do_bench medians, CUDA events) so they sit beside tir's in one table:
#   softmax      torch eager and torch.compile softmax over rows of 32768 (8192 rows, bf16 in and
#                out, f32 inside), ms and GB/s counting one read and one write of the tensor;
#   swiglu_mem   the peak memory of silu(a)*b forward+backward with every gradient of an earlier
#                run freed BEFORE the baseline is taken. peers.py's peak() takes its baseline
#                while a.grad and b.grad of the previous timing run are still alive and frees
#                them inside the measured call, so its figure undercounts by those 2 buffers.
#   python3 peers_extra.py [section ...]
import os, sys
import torch, torch.nn.functional as F
from triton.testing import do_bench

dev = "cuda"; bf = torch.bfloat16
torch.manual_seed(0)
ONLY = set(sys.argv[1:])
def rec(k, v): print(f"{k}: {v}", flush=True)
def bench(fn, rep=200): return do_bench(fn, warmup=25, rep=rep, return_mode="median")
def want(name): return not ONLY or name in ONLY

if want("softmax"):
    N, L = 8192, 32768
    x = torch.randn(N, L, dtype=bf, device=dev)
    eager = lambda x: torch.softmax(x, dim=-1)
    comp = torch.compile(eager)
    for k, f in {"eager": eager, "compile": comp}.items():
        t = bench(lambda: f(x))
        rec(f"softmax.{k}.fwd_ms", round(t, 4)); rec(f"softmax.{k}.fwd_GBps", round(2 * N * L * 2 / t / 1e6))

if want("swiglu_mem"):
    BT, I = 16384, 14336
    a = torch.randn(BT, I, dtype=bf, device=dev, requires_grad=True)
    b = torch.randn(BT, I, dtype=bf, device=dev, requires_grad=True)
    g = torch.randn(BT, I, dtype=bf, device=dev)
    eager = lambda a, b: F.silu(a) * b
    comp = torch.compile(eager)
    for k, f in {"eager": eager, "compile": comp}.items():
        def run():
            y = f(a, b); y.backward(g)
        run()  # compile and warm up
        a.grad = None; b.grad = None
        torch.cuda.synchronize(); torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        run(); torch.cuda.synchronize()
        rec(f"swiglu_mem.{k}.peak_GiB", round((torch.cuda.max_memory_allocated() - base) / 2**30, 3))
        rec(f"swiglu_mem.{k}.after_GiB", round((torch.cuda.memory_allocated() - base) / 2**30, 3))
        a.grad = None; b.grad = None
