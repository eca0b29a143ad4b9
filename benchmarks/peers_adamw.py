# peers_adamw.py: the PyTorch peers of benchmarks/adamw.tir: one AdamW step over the same 147 f32
# tensors (scripts/gen_adamw.py's Llama-like 1.5 B parameter set) with torch.optim.AdamW in its
# fused (one multi-tensor CUDA kernel per launch group), foreach (multi_tensor_apply over
# torch._foreach_* ops) and for-loop (one tensor at a time) implementations. Median ms of a step
# with triton's do_bench; 28 bytes a parameter (f32 p, g, m, v read; p, m, v written).
# Moments start random (not PyTorch's zeros) at step 10, as adamw.tir's constants say.
# Params and grads are made once and shared; each optimizer's state is freed before the next is
# made, so at most one set of moments is on the GPU (24 GB in all on an 80 GB H100).
#   python3 benchmarks/peers_adamw.py [fused foreach forloop]
# Prints one 'name: value' line per figure and writes peers_adamw.json under $OUT (or here).
import os, sys, json, math
import torch
from triton.testing import do_bench
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from gen_adamw import tensors, LR, BETA1, BETA2, EPS, WD, STEP

R = {}
def rec(k, v): R[k] = v; print(f"{k}: {v}", flush=True)

ONLY = set(sys.argv[1:]) or {"fused", "foreach", "forloop"}
dev = "cuda"
torch.manual_seed(0)
print(torch.__version__, torch.cuda.get_device_name(), flush=True)

shapes = [d for _, d in tensors()]
nparam = sum(math.prod(d) for d in shapes)
rec("adamw.tensors", len(shapes))
rec("adamw.params", nparam)
rec("adamw.bytes", 28 * nparam)

params = []
for d in shapes:
    p = torch.nn.Parameter(torch.empty(d, device=dev, dtype=torch.float32).uniform_(-1, 1))
    p.grad = torch.empty_like(p).uniform_(-1, 1)
    params.append(p)

for impl in ("fused", "foreach", "forloop"):
    if impl not in ONLY: continue
    kw = {"fused": dict(fused=True), "foreach": dict(foreach=True), "forloop": dict(foreach=False, fused=False)}[impl]
    try:
        opt = torch.optim.AdamW(params, lr=LR, betas=(BETA1, BETA2), eps=EPS, weight_decay=WD, **kw)
        opt.step()  # makes the state (zero moments, step 1)
        with torch.no_grad():
            for p in params:
                st = opt.state[p]
                st["exp_avg"].uniform_(-1, 1)
                st["exp_avg_sq"].uniform_(0.01, 1.01)
                st["step"].fill_(STEP - 1)
        torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()  # p, g, m, v: the step's inputs
        t = do_bench(opt.step, warmup=25, rep=200, return_mode="median")
        rec(f"adamw.{impl}.ms", round(t, 3))
        rec(f"adamw.{impl}.step_ms", round(t, 3))  # the name scripts/gpu-bench.sh's table reads
        rec(f"adamw.{impl}.GBps", round(28 * nparam / (t * 1e6), 1))
        # as peers.py's peak(): the peak allocation above the inputs (do_bench's L2-flush buffer included)
        rec(f"adamw.{impl}.peak_GiB", round((torch.cuda.max_memory_allocated() - base) / 2**30, 3))
    except Exception as e:
        rec(f"adamw.{impl}.error", repr(e)[:300])
    finally:
        opt = None
        torch.cuda.synchronize(); torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()

out = os.environ.get("OUT") or os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(out, "peers_adamw.json"), "w") as f:
    json.dump(R, f, indent=1)
