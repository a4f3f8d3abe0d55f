"""PyTorch eager baseline of one LLaDA forward at the mid-size config (f32).

Same shapes as benches/forward.rs; prints `torch_ms <median>`.
usage: python3 forward_torch.py TOKENS THREADS
"""
import math
import sys
import time

import torch
import torch.nn.functional as F

T, threads = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
d, L, H, M, V = 1024, 8, 16, 2816, 1024 + 8192
hd = d // H
g = torch.Generator().manual_seed(0)


def w(o, i):
    return torch.randn(o, i, generator=g) / math.sqrt(i)


wte = torch.randn(V, d, generator=g)
blocks = [dict(q=w(d, d), k=w(d, d), v=w(d, d), o=w(d, d), gate=w(M, d), up=w(M, d), down=w(d, M),
               n1=torch.ones(d), n2=torch.ones(d)) for _ in range(L)]
lnf = torch.ones(d)
inv = 1.0 / (500000.0 ** (torch.arange(0, hd, 2, dtype=torch.float) / hd))
ang = torch.outer(torch.arange(T).float(), inv)
emb = torch.cat((ang, ang), -1)
cos, sin = emb.cos(), emb.sin()


def rms(x, wt):
    return wt * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5))


def rope(t):
    x1, x2 = t[..., : hd // 2], t[..., hd // 2:]
    return t * cos + torch.cat((-x2, x1), -1) * sin


@torch.no_grad()
def forward(ids):
    x = wte[ids]
    for b in blocks:
        a = rms(x, b["n1"])
        q = (a @ b["q"].T).view(T, H, hd).transpose(0, 1)
        k = (a @ b["k"].T).view(T, H, hd).transpose(0, 1)
        v = (a @ b["v"].T).view(T, H, hd).transpose(0, 1)
        o = F.scaled_dot_product_attention(rope(q), rope(k), v)
        x = x + o.transpose(0, 1).reshape(T, d) @ b["o"].T
        f = rms(x, b["n2"])
        x = x + (F.silu(f @ b["gate"].T) * (f @ b["up"].T)) @ b["down"].T
    return rms(x, lnf)


ids = (torch.arange(T) * 7919) % V
forward(ids)
times = []
for _ in range(5):
    s = time.perf_counter()
    forward(ids)
    times.append((time.perf_counter() - s) * 1e3)
times.sort()
ms = times[len(times) // 2]
print(f"torch {torch.__version__} (eager f32, {threads} threads): forward of {T} tokens: {ms:.1f} ms, {T / ms * 1e3:.0f} tokens/s")
print(f"torch_ms {ms:.3f}")
