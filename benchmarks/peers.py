# Copied from the steering repo (shared/bench/peers.py) so it travels with the repo to the GPU machine.
# Peer timings on the GPU machine: PyTorch eager and torch.compile (Inductor), and Liger Kernel
# when a copy of its package is importable. Run it in the same run on the GPU machine as the tir benchmark
# of the same shapes, so that the two are compared side by side:
#   python3 peers.py [section ...]      sections: ceil rmsnorm ce flce swiglu rope sdpa llama1b_train llama1b_fwd
# Prints one 'name: value' line per figure and writes peers.json under $OUT (or here).
import os, sys, json, time, math, traceback
import torch, torch.nn.functional as F
import triton
from triton.testing import do_bench
sys.path.insert(0, os.path.dirname(__file__))
torch.manual_seed(0)
dev = "cuda"; bf = torch.bfloat16
R = {}
def rec(k, v): R[k] = v; print(f"{k}: {v}", flush=True)
def bench(fn, rep=200): return do_bench(fn, warmup=25, rep=rep, return_mode="median")
def peak(fn):
    torch.cuda.synchronize(); torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated(); fn(); torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**30
ONLY = set(sys.argv[1:])
def section(name):
    def deco(f):
        if ONLY and name not in ONLY: return
        try: f()
        except Exception as e: rec(name + ".error", repr(e)[:300]); traceback.print_exc()
    return deco
print(torch.__version__, triton.__version__, torch.cuda.get_device_name(), flush=True)

@section("ceil")
def _():
    x = torch.empty(2**30, dtype=torch.uint8, device=dev).random_(); y = torch.empty_like(x)
    t = bench(lambda: y.copy_(x)); rec("ceil.copy_GBps", round(2 * 2**30 / t / 1e6, 1))
    for n in (4096, 8192):
        a = torch.randn(n, n, dtype=bf, device=dev); b = torch.randn(n, n, dtype=bf, device=dev)
        t = bench(lambda: a @ b); rec(f"ceil.gemm{n}_TFLOPs", round(2 * n**3 / t / 1e9, 1))
    M, N, K = 8192, 14336, 4096
    a = torch.randn(M, K, dtype=bf, device=dev); w = torch.randn(N, K, dtype=bf, device=dev)
    t = bench(lambda: F.linear(a, w)); rec("ceil.gemm_llama_mlp_TFLOPs", round(2 * M * N * K / t / 1e9, 1))

try:
    from liger_kernel.ops.rms_norm import LigerRMSNormFunction
    from liger_kernel.ops.cross_entropy import LigerCrossEntropyFunction
    from liger_kernel.ops.fused_linear_cross_entropy import LigerFusedLinearCrossEntropyFunction
    from liger_kernel.ops.swiglu import LigerSiLUMulFunction
    from liger_kernel.ops.rope import LigerRopeFunction
    HAVE_LIGER = True
except Exception as e:
    rec("liger.import_error", repr(e)[:300]); HAVE_LIGER = False

def fwd_bwd(fn, inputs, gout=None):
    def run():
        for t in inputs: t.grad = None
        out = fn()
        if out.dim() == 0: out.backward()
        else: out.backward(gout)
    return run

@section("rmsnorm")
def _():
    BT, H = 16384, 4096
    x = torch.randn(BT, H, dtype=bf, device=dev, requires_grad=True); w = torch.randn(H, dtype=bf, device=dev, requires_grad=True)
    g = torch.randn(BT, H, dtype=bf, device=dev)
    def eager(x, w):
        xf = x.float(); return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-6)).to(bf) * w
    comp = torch.compile(eager)
    impls = {"eager": lambda: eager(x, w), "compile": lambda: comp(x, w)}
    if HAVE_LIGER: impls["liger"] = lambda: LigerRMSNormFunction.apply(x, w, 1e-6, 0.0, "llama", False)
    minbytes_f = 2 * BT * H * 2; minbytes_fb = (3 * BT * H) * 2 + 2 * BT * H * 2  # fwd: x,y ; fwd+bwd ~ x,y,g,x,dx
    for k, f in impls.items():
        tf = bench(lambda: f()); tb = bench(fwd_bwd(f, [x, w], g))
        rec(f"rmsnorm.{k}.fwd_ms", round(tf, 4)); rec(f"rmsnorm.{k}.fwdbwd_ms", round(tb, 4))
        rec(f"rmsnorm.{k}.fwd_GBps", round(minbytes_f / tf / 1e6))
        rec(f"rmsnorm.{k}.peak_GiB", round(peak(fwd_bwd(f, [x, w], g)), 3))

@section("ce")
def _():
    BT, V = 8192, 128256
    logits = torch.randn(BT, V, dtype=bf, device=dev, requires_grad=True); tgt = torch.randint(0, V, (BT,), device=dev)
    eager = lambda l, t: F.cross_entropy(l.float(), t)
    comp = torch.compile(eager)
    impls = {"eager": lambda: eager(logits, tgt), "compile": lambda: comp(logits, tgt)}
    if HAVE_LIGER: impls["liger"] = lambda: LigerCrossEntropyFunction.apply(logits, tgt, None, -100, 0.0, 0.0, "mean", None, False)[0]
    for k, f in impls.items():
        try:
            tb = bench(fwd_bwd(f, [logits]), rep=100)
            rec(f"ce.{k}.fwdbwd_ms", round(tb, 3)); rec(f"ce.{k}.peak_GiB", round(peak(fwd_bwd(f, [logits])), 3))
        except Exception as e: rec(f"ce.{k}.error", repr(e)[:200])

@section("flce")
def _():
    BT, H, V = 8192, 4096, 128256
    x = torch.randn(BT, H, dtype=bf, device=dev, requires_grad=True); W = (torch.randn(V, H, dtype=bf, device=dev) * 0.02).requires_grad_()
    tgt = torch.randint(0, V, (BT,), device=dev)
    eager = lambda x, W, t: F.cross_entropy(F.linear(x, W).float(), t)
    comp = torch.compile(eager)
    impls = {"eager": lambda: eager(x, W, tgt), "compile": lambda: comp(x, W, tgt)}
    if HAVE_LIGER: impls["liger"] = lambda: LigerFusedLinearCrossEntropyFunction.apply(x, W, tgt)[0]
    flops = 3 * 2 * BT * H * V
    for k, f in impls.items():
        try:
            tb = bench(fwd_bwd(f, [x, W]), rep=100)
            rec(f"flce.{k}.fwdbwd_ms", round(tb, 3)); rec(f"flce.{k}.TFLOPs", round(flops / tb / 1e9, 1))
            rec(f"flce.{k}.peak_GiB", round(peak(fwd_bwd(f, [x, W])), 3))
        except Exception as e: rec(f"flce.{k}.error", repr(e)[:200])

@section("swiglu")
def _():
    BT, I = 16384, 14336
    a = torch.randn(BT, I, dtype=bf, device=dev, requires_grad=True); b = torch.randn(BT, I, dtype=bf, device=dev, requires_grad=True)
    g = torch.randn(BT, I, dtype=bf, device=dev)
    eager = lambda a, b: F.silu(a) * b
    comp = torch.compile(eager)
    impls = {"eager": lambda: eager(a, b), "compile": lambda: comp(a, b)}
    if HAVE_LIGER: impls["liger"] = lambda: LigerSiLUMulFunction.apply(a, b)
    for k, f in impls.items():
        tf = bench(lambda: f()); tb = bench(fwd_bwd(f, [a, b], g))
        rec(f"swiglu.{k}.fwd_ms", round(tf, 4)); rec(f"swiglu.{k}.fwdbwd_ms", round(tb, 4))
        rec(f"swiglu.{k}.fwd_GBps", round(3 * BT * I * 2 / tf / 1e6))
        rec(f"swiglu.{k}.peak_GiB", round(peak(fwd_bwd(f, [a, b], g)), 3))

@section("rope")
def _():
    B, Hq, Hk, T, D = 8, 32, 8, 2048, 128
    q = torch.randn(B, Hq, T, D, dtype=bf, device=dev, requires_grad=True); k = torch.randn(B, Hk, T, D, dtype=bf, device=dev, requires_grad=True)
    inv = 1.0 / (500000 ** (torch.arange(0, D, 2, device=dev).float() / D)); fr = torch.outer(torch.arange(T, device=dev).float(), inv)
    emb = torch.cat([fr, fr], -1); cos = emb.cos().to(bf)[None]; sin = emb.sin().to(bf)[None]
    def rot(x): x1, x2 = x.chunk(2, -1); return torch.cat([-x2, x1], -1)
    def eager(q, k): return q * cos[:, None] + rot(q) * sin[:, None], k * cos[:, None] + rot(k) * sin[:, None]
    comp = torch.compile(eager)
    def mk(f):
        def run():
            q.grad = None; k.grad = None
            qo, ko = f(); (qo.float().sum() + ko.float().sum()).backward()
        return run
    impls = {"eager": lambda: eager(q, k), "compile": lambda: comp(q, k)}
    if HAVE_LIGER: impls["liger"] = lambda: LigerRopeFunction.apply(q, k, cos, sin)
    for kk, f in impls.items():
        try:
            tf = bench(lambda: f()); rec(f"rope.{kk}.fwd_ms", round(tf, 4))
            rec(f"rope.{kk}.fwd_GBps", round(2 * (q.numel() + k.numel()) * 2 / tf / 1e6))
        except Exception as e: rec(f"rope.{kk}.error", repr(e)[:200])

@section("sdpa")
def _():
    B, H, T, D = 4, 32, 4096, 128
    q, k, v = [torch.randn(B, H, T, D, dtype=bf, device=dev, requires_grad=True) for _ in range(3)]
    f = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True)
    tf = bench(f); flops = 4 * B * H * T * T * D / 2
    rec("sdpa.flash_causal.fwd_TFLOPs", round(flops / tf / 1e9, 1))
    g = torch.randn(B, H, T, D, dtype=bf, device=dev)
    tb = bench(fwd_bwd(f, [q, k, v], g)); rec("sdpa.flash_causal.fwdbwd_TFLOPs", round(3.5 * flops / tb / 1e9, 1))

# ---- a Llama-3.2-1B-shaped model, pure torch ----
class Cfg: n_layer=16; d=2048; n_head=32; n_kv=8; inter=8192; vocab=128256; T=2048
class Block(torch.nn.Module):
    def __init__(s, c):
        super().__init__(); s.c = c; hd = c.d // c.n_head
        s.n1 = torch.nn.RMSNorm(c.d, eps=1e-5); s.n2 = torch.nn.RMSNorm(c.d, eps=1e-5)
        s.qkv = torch.nn.Linear(c.d, (c.n_head + 2 * c.n_kv) * hd, bias=False); s.o = torch.nn.Linear(c.d, c.d, bias=False)
        s.gu = torch.nn.Linear(c.d, 2 * c.inter, bias=False); s.dn = torch.nn.Linear(c.inter, c.d, bias=False)
    def forward(s, x, cos, sin):
        c = s.c; B, T, _ = x.shape; hd = c.d // c.n_head
        q, k, v = s.qkv(s.n1(x)).split([c.n_head * hd, c.n_kv * hd, c.n_kv * hd], -1)
        q = q.view(B, T, c.n_head, hd).transpose(1, 2); k = k.view(B, T, c.n_kv, hd).transpose(1, 2); v = v.view(B, T, c.n_kv, hd).transpose(1, 2)
        def rot(t): t1, t2 = t.chunk(2, -1); return torch.cat([-t2, t1], -1)
        q = q * cos + rot(q) * sin; k = k * cos + rot(k) * sin
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        x = x + s.o(y.transpose(1, 2).reshape(B, T, c.d))
        g, u = s.gu(s.n2(x)).chunk(2, -1)
        return x + s.dn(F.silu(g) * u)
class Llama(torch.nn.Module):
    def __init__(s, c):
        super().__init__(); s.c = c; hd = c.d // c.n_head
        s.emb = torch.nn.Embedding(c.vocab, c.d); s.blocks = torch.nn.ModuleList([Block(c) for _ in range(c.n_layer)])
        s.nf = torch.nn.RMSNorm(c.d, eps=1e-5); s.head = torch.nn.Linear(c.d, c.vocab, bias=False)
        inv = 1.0 / (500000 ** (torch.arange(0, hd, 2).float() / hd)); fr = torch.outer(torch.arange(c.T).float(), inv)
        emb = torch.cat([fr, fr], -1); s.register_buffer("cos", emb.cos()[None, None], persistent=False); s.register_buffer("sin", emb.sin()[None, None], persistent=False)
    def forward(s, idx, tgt):
        T = idx.shape[1]; x = s.emb(idx); cos = s.cos[..., :T, :].to(x.dtype); sin = s.sin[..., :T, :].to(x.dtype)
        for b in s.blocks: x = b(x, cos, sin)
        return F.cross_entropy(s.head(s.nf(x)).float().view(-1, s.c.vocab), tgt.view(-1))

@section("llama1b_train")
def _():
    c = Cfg(); B = 4
    for mode in ("eager", "compile"):
        torch.manual_seed(0)
        m = Llama(c).to(dev, bf); opt = torch.optim.AdamW(m.parameters(), lr=1e-4, fused=True)
        f = torch.compile(m) if mode == "compile" else m
        idx = torch.randint(0, c.vocab, (B, c.T), device=dev); tgt = torch.randint(0, c.vocab, (B, c.T), device=dev)
        def step():
            loss = f(idx, tgt); loss.backward(); opt.step(); opt.zero_grad(set_to_none=True); return loss
        t0 = time.time(); step(); torch.cuda.synchronize(); rec(f"llama1b_train.{mode}.first_step_s", round(time.time() - t0, 1))
        for _ in range(3): step()
        torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
        n = 10; t0 = time.time()
        for _ in range(n): step()
        torch.cuda.synchronize(); dt = (time.time() - t0) / n
        rec(f"llama1b_train.{mode}.ms_per_step", round(dt * 1e3, 1)); rec(f"llama1b_train.{mode}.tok_per_s", round(B * c.T / dt))
        rec(f"llama1b_train.{mode}.peak_GiB", round(torch.cuda.max_memory_allocated() / 2**30, 2))
        nparam = sum(p.numel() for p in m.parameters()); rec("llama1b_train.params_M", round(nparam / 1e6, 1))
        del m, opt, f; torch.cuda.empty_cache()

@section("llama1b_fwd")
def _():
    c = Cfg(); B = 4
    m = Llama(c).to(dev, bf).eval(); idx = torch.randint(0, c.vocab, (B, c.T), device=dev); tgt = torch.randint(0, c.vocab, (B, c.T), device=dev)
    with torch.no_grad():
        rec("llama1b_fwd.eager_ms", round(bench(lambda: m(idx, tgt), rep=300), 2))
        cm = torch.compile(m); rec("llama1b_fwd.compile_ms", round(bench(lambda: cm(idx, tgt), rep=300), 2))

json.dump(R, open(os.path.join(os.environ.get("OUT", "."), "peers.json"), "w"), indent=1)
print("DONE", flush=True)
