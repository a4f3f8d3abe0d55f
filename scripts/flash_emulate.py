"""Lane-level emulation of src/model/attention/flash.cu, for machines with no
GPU: every index expression of the kernel (tiles, ldmatrix addresses, mma
fragments, masks, spans, grouped heads) is restated here line for line and
run on the self-check's shapes against a plain softmax attention.

The instructions follow the PTX ISA's fragment layouts: ldmatrix .x4 takes
row addresses of matrix i from lanes 8i..8i+7 and gives lane l row l/4,
columns 2(l%4), 2(l%4)+1 of each matrix (transposed with .trans); mma
m16n8k16 A = {(g, 2t..), (g+8, 2t..), (g, 2t+8..), (g+8, 2t+8..)}, B =
{(2t.., g), (2t+8.., g)}, C = {(g, 2t..), (g+8, 2t..)} with g = lane/4,
t = lane%4. Asynchronous copies land either when issued or only at the next
wait (both runs must agree): an overwrite while another warp reads, or a
read before the data is there, shows up as a wrong result.

usage: python3 scripts/flash_emulate.py        (needs numpy)
"""
import numpy as np

THREADS = 128
LANES = np.arange(32)
G, T = LANES // 4, LANES % 4  # a lane's group (row) and thread in group (column pair)


def bf16(x):
    """Round float32 to bfloat16 (nearest even), kept in float32."""
    x = np.asarray(x, dtype=np.float32)
    u = x.view(np.uint32).astype(np.uint64)
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return u.astype(np.uint32).view(np.float32)


class Kernel:
    def __init__(self, D, late_landing):
        self.D = D
        self.BM = 64
        self.BN = 64 if D <= 128 else 32
        self.STRIDE = D + 8
        self.late = late_landing

    # ---- shared memory and asynchronous copies ----
    def load_tile(self, rows, s_off, g, g_off, gstride, valid):
        C = self.D // 8
        writes = []
        for i in range(0, rows * C):  # every thread's chunks i, i + 128, ...
            r, c = i // C, i % C
            ok = r < valid
            src = g_off + (r if ok else 0) * gstride + c * 8
            data = g[src:src + 8] if ok else np.zeros(8, np.float32)
            writes.append((s_off + r * self.STRIDE + c * 8, data.copy()))
        if self.late:
            self.pending.extend(writes)
        else:
            for a, d in writes:
                self.smem[a:a + 8] = d

    def wait_all(self):
        for a, d in self.pending:
            self.smem[a:a + 8] = d
        self.pending = []

    def ldsm_x4(self, addr, trans):
        """addr[lane] -> regs[lane][4][2]"""
        out = np.zeros((32, 4, 2), np.float32)
        for m in range(4):
            M = self.smem[addr[8 * m:8 * m + 8, None] + np.arange(8)[None, :]]
            if trans:
                M = M.T
            out[:, m, 0] = M[G, 2 * T]
            out[:, m, 1] = M[G, 2 * T + 1]
        return out

    @staticmethod
    def mma(c, a, b0, b1):
        """c[lane][4] += A (a[lane][4][2]) @ B (b0, b1: [lane][2])."""
        A = np.zeros((16, 16), np.float64)
        B = np.zeros((16, 8), np.float64)
        C = np.zeros((16, 8), np.float64)
        for e in range(2):
            A[G, 2 * T + e] = a[:, 0, e]
            A[G + 8, 2 * T + e] = a[:, 1, e]
            A[G, 2 * T + 8 + e] = a[:, 2, e]
            A[G + 8, 2 * T + 8 + e] = a[:, 3, e]
            B[2 * T + e, G] = b0[:, e]
            B[2 * T + 8 + e, G] = b1[:, e]
            C[G, 2 * T + e] = c[:, e]
            C[G + 8, 2 * T + e] = c[:, 2 + e]
        Dm = A @ B + C
        for e in range(2):
            c[:, e] = Dm[G, 2 * T + e]
            c[:, 2 + e] = Dm[G + 8, 2 * T + e]

    # ---- one block, as flash_attention_bf16 runs it ----
    def block(self, Q, K, V, O, p, tile, h):
        D, BM, BN, S = self.D, self.BM, self.BN, self.STRIDE
        self.smem = np.full(2 * BN * S, np.nan, np.float32)  # garbage until written
        self.pending = []
        sK, sV = 0, BN * S
        b = 0
        while b + 1 < p["n_seqs"] and tile >= p["tiles"][b + 1]:
            b += 1
        q0 = (tile - p["tiles"][b]) * BM
        q_rows = min(BM, p["q_len"][b] - q0)
        k_len = p["k_len"][b]
        kvh = h // p["kv_group"]
        Qb = (p["q_start"][b] + q0) * p["q_stride"] + h * D
        Kb = p["k_start"][b] * p["kv_stride"] + kvh * D
        Vb = p["k_start"][b] * p["kv_stride"] + kvh * D
        lanes = np.arange(32)

        self.load_tile(BM, 0, Q, Qb, p["q_stride"], q_rows)
        self.wait_all()
        qf = {}
        for warp in range(4):
            for kk in range(D // 16):
                r = warp * 16 + (lanes & 15)
                c = kk * 16 + (lanes >> 4) * 8
                qf[warp, kk] = self.ldsm_x4(r * S + c, False)
        # __syncthreads
        o = {w: np.zeros((32, D // 8, 4), np.float32) for w in range(4)}
        m_row = {w: np.full((32, 2), -np.inf, np.float32) for w in range(4)}
        l_row = {w: np.zeros((32, 2), np.float32) for w in range(4)}
        n_tiles = (k_len + BN - 1) // BN
        self.load_tile(BN, sK, K, Kb, p["kv_stride"], min(BN, k_len))
        for j in range(n_tiles):
            kv0 = j * BN
            kv_rows = min(BN, k_len - kv0)
            self.wait_all()
            # __syncthreads
            self.load_tile(BN, sV, V, Vb + kv0 * p["kv_stride"], p["kv_stride"], kv_rows)
            pf = {}
            for warp in range(4):
                s = np.zeros((32, BN // 8, 4), np.float32)
                for kk in range(D // 16):
                    for nn in range(BN // 16):
                        r = nn * 16 + (lanes & 7) + ((lanes >> 4) << 3)
                        c = kk * 16 + ((lanes >> 3) & 1) * 8
                        bf = self.ldsm_x4(sK + r * S + c, False)
                        self.mma(s[:, 2 * nn], qf[warp, kk], bf[:, 0], bf[:, 1])
                        self.mma(s[:, 2 * nn + 1], qf[warp, kk], bf[:, 2], bf[:, 3])
                if kv_rows < BN:
                    for nt in range(BN // 8):
                        for e in range(4):
                            key = nt * 8 + 2 * (lanes & 3) + (e & 1)
                            s[key >= kv_rows, nt, e] = -np.inf
                mx = m_row[warp].copy()
                mx[:, 0] = np.maximum(mx[:, 0], np.max(np.maximum(s[:, :, 0], s[:, :, 1]), axis=1))
                mx[:, 1] = np.maximum(mx[:, 1], np.max(np.maximum(s[:, :, 2], s[:, :, 3]), axis=1))
                for x in (1, 2):
                    mx = np.maximum(mx, mx[lanes ^ x])
                sl2 = p["scale_log2"]
                with np.errstate(invalid="ignore"):
                    corr = np.exp2((m_row[warp] - mx) * sl2)
                m_row[warp] = mx
                msc = mx * sl2
                s[:, :, 0:2] = np.exp2(s[:, :, 0:2] * sl2 - msc[:, 0, None, None])
                s[:, :, 2:4] = np.exp2(s[:, :, 2:4] * sl2 - msc[:, 1, None, None])
                rs = np.stack([s[:, :, 0:2].sum(axis=(1, 2)), s[:, :, 2:4].sum(axis=(1, 2))], axis=1)
                l_row[warp] = l_row[warp] * corr + rs
                o[warp][:, :, 0:2] *= corr[:, 0, None, None]
                o[warp][:, :, 2:4] *= corr[:, 1, None, None]
                q = np.zeros((32, BN // 16, 4, 2), np.float32)
                for kk in range(BN // 16):
                    q[:, kk, 0] = bf16(s[:, 2 * kk, 0:2])
                    q[:, kk, 1] = bf16(s[:, 2 * kk, 2:4])
                    q[:, kk, 2] = bf16(s[:, 2 * kk + 1, 0:2])
                    q[:, kk, 3] = bf16(s[:, 2 * kk + 1, 2:4])
                pf[warp] = q
            self.wait_all()
            # __syncthreads
            if j + 1 < n_tiles:
                self.load_tile(BN, sK, K, Kb + (kv0 + BN) * p["kv_stride"], p["kv_stride"], min(BN, k_len - kv0 - BN))
            for warp in range(4):
                for kk in range(BN // 16):
                    for dn in range(D // 16):
                        r = kk * 16 + (lanes & 7) + (((lanes >> 3) & 1) << 3)
                        c = dn * 16 + (lanes >> 4) * 8
                        bf = self.ldsm_x4(sV + r * S + c, True)
                        self.mma(o[warp][:, 2 * dn], pf[warp][:, kk], bf[:, 0], bf[:, 1])
                        self.mma(o[warp][:, 2 * dn + 1], pf[warp][:, kk], bf[:, 2], bf[:, 3])
        Ob = (p["q_start"][b] + q0) * p["q_stride"] + h * D
        for warp in range(4):
            lr = l_row[warp].copy()
            for x in (1, 2):
                lr = lr + lr[lanes ^ x]
            g, t = lanes >> 2, lanes & 3
            r0, r1 = warp * 16 + g, warp * 16 + g + 8
            for i in range(D // 8):
                col = i * 8 + 2 * t
                for l in range(32):
                    if r0[l] < q_rows:
                        O[Ob + r0[l] * p["q_stride"] + col[l]:][:2] = bf16(o[warp][l, i, 0:2] / lr[l, 0])
                    if r1[l] < q_rows:
                        O[Ob + r1[l] * p["q_stride"] + col[l]:][:2] = bf16(o[warp][l, i, 2:4] / lr[l, 1])


def run(D, heads, kv_heads, seqs, late, rng):
    """The Rust side's parameters (flash.rs `run`), every block, and the error
    against softmax attention in float64 per sequence."""
    rows, keys = sum(s[0] for s in seqs), sum(s[1] for s in seqs)
    Q = bf16(rng.standard_normal((rows, heads * D)).astype(np.float32) * 3)
    K = bf16(rng.standard_normal((keys, kv_heads * D)).astype(np.float32))
    V = bf16(rng.standard_normal((keys, kv_heads * D)).astype(np.float32))
    scale = 1 / np.sqrt(D)
    p = dict(n_seqs=len(seqs), kv_group=heads // kv_heads, q_stride=heads * D, kv_stride=kv_heads * D,
             scale_log2=np.float32(scale * np.log2(np.e)), tiles=[], q_start=[], q_len=[], k_start=[], k_len=[])
    tiles = qs = ks = 0
    for ql, kl in seqs:
        p["tiles"].append(tiles)
        p["q_start"].append(qs)
        p["q_len"].append(ql)
        p["k_start"].append(ks)
        p["k_len"].append(kl)
        tiles += -(-ql // 64)
        qs += ql
        ks += kl
    p["tiles"].append(tiles)
    O = np.full(rows * heads * D, np.nan, np.float32)
    k = Kernel(D, late)
    for tile in range(tiles):
        for h in range(heads):
            k.block(Q.ravel(), K.ravel(), V.ravel(), O, p, tile, h)
    O = O.reshape(rows, heads * D)
    want = np.zeros_like(O, dtype=np.float64)
    for b, (ql, kl) in enumerate(seqs):
        for h in range(heads):
            kh = h // (heads // kv_heads)
            q = Q[p["q_start"][b]:p["q_start"][b] + ql, h * D:(h + 1) * D].astype(np.float64)
            kk = K[p["k_start"][b]:p["k_start"][b] + kl, kh * D:(kh + 1) * D].astype(np.float64)
            vv = V[p["k_start"][b]:p["k_start"][b] + kl, kh * D:(kh + 1) * D].astype(np.float64)
            sc = q @ kk.T * scale
            pr = np.exp(sc - sc.max(axis=1, keepdims=True))
            pr /= pr.sum(axis=1, keepdims=True)
            want[p["q_start"][b]:p["q_start"][b] + ql, h * D:(h + 1) * D] = pr @ vv
    if np.isnan(O).any():
        return float("inf")
    return float(np.abs(O - want).max() / np.abs(want).max())


if __name__ == "__main__":
    # the self-check's cases (src/model/attention/check.rs), smaller heads counts to keep it quick
    cases = [("full", 2, 2, [(150, 150)]), ("packed", 2, 2, [(70, 70), (130, 130), (1, 1)]),
             ("partial", 2, 2, [(10, 200), (0, 50), (37, 90)]), ("gqa", 4, 2, [(100, 100), (60, 65)])]
    rng = np.random.default_rng(0)
    worst = 0.0
    for D in (16, 48, 128, 256):
        for name, h, kv, seqs in cases:
            for late in (False, True):
                err = run(D, h, kv, seqs, late, rng)
                worst = max(worst, err)
                print(f"D={D:3} {name:8} copies land {'at the wait' if late else 'when issued'}: error {err:.2e}", flush=True)
    print("worst", worst)
    raise SystemExit(0 if worst < 2e-2 else 1)
