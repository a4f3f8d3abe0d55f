"""PyTorch eager baseline for the GPU bench (issue 17, item 7): the same
random-weight LLaDA-8B shapes as benches/gpu.rs in bf16 with
scaled_dot_product_attention, and the same samplers written plainly (no
cache): one forward at 4,160 tokens, a 64 x 64 grid (1024 px) text-to-image
with 64 steps and guidance 4 (both branches batched, greedy, MaskGIT cosine),
and a 256-token answer (blocks of 32, one position a step). Prints one JSON
object per case with its peak memory (torch.cuda.max_memory_allocated).

`agreement --dir DIR` loads the 2-layer model `gpu-bench agreement` wrote
there (safetensors, read here without the safetensors package), runs the
same 4,160 tokens and compares: top-1 agreement of the logits with ours and
the max relative error of our logits (our hidden states through this
script's head) against this script's.

usage: python3 gpu_torch.py forward|t2i|answer|agreement [--config 8b|mid] [--steps N] [--side N] [--dir DIR]
"""
import json
import math
import sys
import time

import torch
import torch.nn.functional as F

case = sys.argv[1] if len(sys.argv) > 1 else "forward"
config = sys.argv[sys.argv.index("--config") + 1] if "--config" in sys.argv else "8b"
steps = int(sys.argv[sys.argv.index("--steps") + 1]) if "--steps" in sys.argv else 64
dev = "cuda" if torch.cuda.is_available() else "cpu"
dt = torch.bfloat16 if dev == "cuda" else torch.float32
if config == "mid":
    d, L, H, M, V, side = 1024, 8, 16, 2816, 1024 + 8192, 32
else:
    d, L, H, M, V, side = 4096, 32, 32, 12288, 134548, 64
if "--side" in sys.argv:
    side = int(sys.argv[sys.argv.index("--side") + 1])
hd = d // H
offset = V - 8192 - 100 if V > 100000 else 1024
MASK, NEWLINE, ANSWER_START = 3, 4, 8
g = torch.Generator(device=dev).manual_seed(0)


def w(o, i):
    return (torch.randn(o, i, generator=g, device=dev) / math.sqrt(i)).to(dt)


def read_safetensors(path):
    """name -> tensor on the device (bf16 / f32 files as `gpu-bench` writes them)."""
    import struct
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    kinds = {"BF16": torch.bfloat16, "F32": torch.float32, "F16": torch.float16}
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=kinds[meta["dtype"]]).view(meta["shape"])
        out[name] = t.to(device=dev, dtype=dt)
    return out


t_load = time.perf_counter()
if case == "agreement":
    wd = sys.argv[sys.argv.index("--dir") + 1]
    T_ = read_safetensors(wd + "/model.safetensors")
    at = "model.transformer"
    L = len({k.split(".")[3] for k in T_ if k.startswith(at + ".blocks.")})
    wte = T_[f"{at}.wte.weight"]
    V = wte.shape[0]
    blocks = [dict(q=T_[f"{at}.blocks.{i}.q_proj.weight"], k=T_[f"{at}.blocks.{i}.k_proj.weight"], v=T_[f"{at}.blocks.{i}.v_proj.weight"],
                   o=T_[f"{at}.blocks.{i}.attn_out.weight"], gate=T_[f"{at}.blocks.{i}.ff_proj.weight"], up=T_[f"{at}.blocks.{i}.up_proj.weight"],
                   down=T_[f"{at}.blocks.{i}.ff_out.weight"], n1=T_[f"{at}.blocks.{i}.attn_norm.weight"], n2=T_[f"{at}.blocks.{i}.ff_norm.weight"])
              for i in range(L)]
    lnf = T_[f"{at}.ln_f.weight"]
    head = T_.get(f"{at}.ff_out.weight", wte)
else:
    wte = w(V, d)
    blocks = [dict(q=w(d, d), k=w(d, d), v=w(d, d), o=w(d, d), gate=w(M, d), up=w(M, d), down=w(d, M),
                   n1=torch.ones(d, device=dev, dtype=dt), n2=torch.ones(d, device=dev, dtype=dt)) for _ in range(L)]
    lnf = torch.ones(d, device=dev, dtype=dt)
    head = w(V, d)
inv = 1.0 / (500000.0 ** (torch.arange(0, hd, 2, dtype=torch.float, device=dev) / hd))
load_ms = (time.perf_counter() - t_load) * 1e3


def rms(x, wt):
    xf = x.float()
    return (wt.float() * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-5))).to(dt)


def tables(T):
    ang = torch.outer(torch.arange(T, device=dev).float(), inv)
    emb = torch.cat((ang, ang), -1)
    return emb.cos().to(dt), emb.sin().to(dt)


def rope(t, cos, sin):
    x1, x2 = t[..., : hd // 2], t[..., hd // 2:]
    return t * cos + torch.cat((-x2, x1), -1) * sin


@torch.no_grad()
def hidden(ids, key_mask=None):
    """ids [B, T]; key_mask [B, T] True where a key is real."""
    B, T = ids.shape
    cos, sin = tables(T)
    attn = None if key_mask is None else key_mask[:, None, None, :]
    x = wte[ids]
    for b in blocks:
        a = rms(x, b["n1"])
        q = (a @ b["q"].T).view(B, T, H, hd).transpose(1, 2)
        k = (a @ b["k"].T).view(B, T, H, hd).transpose(1, 2)
        v = (a @ b["v"].T).view(B, T, H, hd).transpose(1, 2)
        o = F.scaled_dot_product_attention(rope(q, cos, sin), rope(k, cos, sin), v, attn_mask=attn)
        x = x + o.transpose(1, 2).reshape(B, T, d) @ b["o"].T
        f = rms(x, b["n2"])
        x = x + (F.silu(f @ b["gate"].T) * (f @ b["up"].T)) @ b["down"].T
    return rms(x, lnf)


def sync():
    if dev == "cuda":
        torch.cuda.synchronize()


prompt = [20 + i * 13 % 900 for i in range(128)]
if dev == "cuda":
    torch.cuda.reset_peak_memory_stats()
t0 = time.perf_counter()
detail = {}
with torch.no_grad():
    if case == "forward":
        ids = ((torch.arange(4160, device=dev) * 7919) % V)[None]
        hidden(ids)
        sync()
        times = []
        for _ in range(5):
            s = time.perf_counter()
            hidden(ids)
            sync()
            times.append((time.perf_counter() - s) * 1e3)
        times.sort()
        detail = {"tokens": 4160, "median_ms": round(times[2], 2)}
    elif case == "t2i":
        n = side * side
        grid_pos = [r * (side + 1) + c for r in range(side) for c in range(side)]
        cond, unc = prompt, prompt[:16]
        T = len(cond) + side * (side + 1) + 2
        cells = torch.full((n,), -1, device=dev)
        w_cb = head[offset:offset + 8192]
        for s in range(steps):
            masked = (cells < 0).nonzero().flatten()
            if masked.numel() == 0:
                break
            seqs = []
            for p in (cond, unc):
                img = torch.full((side, side + 1), NEWLINE, device=dev)
                img[:, :side] = torch.where(cells < 0, MASK, cells + offset).view(side, side)
                seq = torch.cat([torch.tensor(p + [5], device=dev), img.flatten(), torch.tensor([6], device=dev)])
                seqs.append(torch.cat([seq, torch.zeros(T - seq.numel(), dtype=seq.dtype, device=dev)]))
            ids = torch.stack(seqs)
            km = torch.arange(T, device=dev)[None] < torch.tensor([[len(cond) + side * (side + 1) + 2], [len(unc) + side * (side + 1) + 2]], device=dev)
            h = hidden(ids, km)
            pos = torch.tensor(grid_pos, device=dev)[masked]
            lc = (h[0, len(cond) + 1 + pos] @ w_cb.T).float()
            lu = (h[1, len(unc) + 1 + pos] @ w_cb.T).float()
            logits = 5.0 * lc - 4.0 * lu
            pick = logits.argmax(-1)
            conf = torch.log_softmax(logits, -1).gather(1, pick[:, None])[:, 0]
            keep = 0 if s + 1 >= steps else max(1, math.floor(masked.numel() * math.cos(math.pi / 2 * (s + 1) / steps)))
            cells[masked] = pick
            if keep > 0:
                cut = conf.sort().values[min(keep, conf.numel() - 1)]
                cells[masked[conf < cut]] = -1
        sync()
        detail = {"grid": side, "steps": steps, "cfg": 4}
    elif case == "answer":
        gl, bl = 256, 32
        img = [offset + (i * 31) % 8192 for i in range(side * (side + 1))]
        x = torch.tensor(prompt + img + [ANSWER_START] + [MASK] * gl, device=dev)
        start = len(prompt) + len(img) + 1
        for blk in range(gl // bl):
            for _ in range(bl):  # one position a step (steps = gen_length)
                lo, hi = start + blk * bl, start + (blk + 1) * bl
                rows = (x[start:hi] == MASK).nonzero().flatten() + start
                if rows.numel() == 0:
                    break
                h = hidden(x[None])[0]
                p = torch.softmax((h[rows] @ head.T).float(), -1)
                conf, tok = p.max(-1)
                j = conf.argmax()
                x[rows[j]] = tok[j]
        sync()
        detail = {"gen_length": gl, "block_length": bl}
    elif case == "agreement":
        n = 4160
        ids = ((torch.arange(n, device=dev) * 7919) % V)[None]
        h = hidden(ids)[0]
        ours_h = torch.frombuffer(bytearray(open(wd + "/hidden.f32", "rb").read()), dtype=torch.float32).view(n, d).to(dev)
        ours_top = torch.tensor(json.load(open(wd + "/top1.json")), device=dev)
        agree, err, scale = 0, 0.0, 0.0
        for r0 in range(0, n, 512):
            lt = (h[r0:r0 + 512] @ head.T).float()
            lo = (ours_h[r0:r0 + 512].to(dt) @ head.T).float()
            agree += (lt.argmax(-1) == ours_top[r0:r0 + 512]).sum().item()
            err = max(err, (lo - lt).abs().max().item())
            scale = max(scale, lt.abs().max().item())
        hid_err = ((ours_h - h.float()).abs().max() / h.float().abs().max()).item()
        detail = {"tokens": n, "layers": L, "top1_agreement": round(agree / n, 4), "logits_max_rel_err": round(err / scale, 5),
                  "hidden_max_rel_err": round(hid_err, 5)}
wall_ms = (time.perf_counter() - t0) * 1e3
peak = torch.cuda.max_memory_allocated() if dev == "cuda" else 0
print(json.dumps({"case": case, "impl": f"torch {torch.__version__} eager", "device": dev, "config": config,
                  "load_ms": round(load_ms), "wall_ms": round(wall_ms, 1), "peak_bytes": peak, **detail}))
