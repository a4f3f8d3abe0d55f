// Fused bidirectional attention for Lumina-DiMOO on NVIDIA GPUs (sm_80+):
// flash-attention style (tiles of keys streamed through shared memory, an
// online softmax in f32, no score tensor in global memory), bf16 in and out,
// f32 accumulation, written for `mma.sync.m16n8k16` and `ldmatrix`.
//
// One build per head dimension: `nvcc --ptx -DHEAD_DIM=D` (build.rs), D any
// multiple of 16 up to 256. The Rust side (flash.rs) picks the module.
//
// Layout (all row-major, bf16):
//   Q, O  [rows, n_heads * D]      rows of every sequence, packed
//   K, V  [keys, n_kv_heads * D]   keys of every sequence, packed
// Sequence b's queries are rows q_start[b] .. q_start[b] + q_len[b]; they
// attend to keys k_start[b] .. k_start[b] + k_len[b] and to no other. A
// partial pass (ML-Cache, text cache) is a sequence with q_len < k_len: its
// rows already carry RoPE at their own positions, so no position is needed
// here. Query head h reads key/value head h / kv_group (grouped-query heads).
//
// Grid: x = query tiles of BM rows over all sequences (prefix sums in
// `tiles`), y = query heads. Block: 4 warps, each owns 16 query rows.

#include <cuda_bf16.h>
#include <stdint.h>

#ifndef HEAD_DIM
#define HEAD_DIM 128
#endif

#define MAX_SEQS 16

static_assert(HEAD_DIM % 16 == 0 && HEAD_DIM >= 16 && HEAD_DIM <= 256, "HEAD_DIM: a multiple of 16 up to 256");

constexpr int D = HEAD_DIM;
constexpr int BM = 64;                       // query rows per block (16 per warp)
constexpr int BN = D <= 128 ? 64 : 32;       // keys per tile (smaller for wide heads: registers)
constexpr int STRIDE = D + 8;                // shared row stride in elements: 16 bytes of padding
                                             // put the 8 rows an ldmatrix reads on distinct banks
constexpr int THREADS = 128;
static_assert(BM <= 2 * BN, "the Q tile is staged in the K and V buffers");

struct FlashParams {
    int n_seqs;
    int kv_group;        // query heads per key/value head
    int q_stride;        // elements between query rows (n_heads * D)
    int kv_stride;       // elements between key rows (n_kv_heads * D)
    float scale_log2;    // softmax scale times log2(e): scores go through exp2
    int tiles[MAX_SEQS + 1];
    int q_start[MAX_SEQS];
    int q_len[MAX_SEQS];
    int k_start[MAX_SEQS];
    int k_len[MAX_SEQS];
};

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
    unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    int bytes = valid ? 16 : 0;  // 0: the 16 bytes are zero-filled, nothing is read
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(bytes));
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }

__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const __nv_bfloat16* p) {
    unsigned s = (unsigned)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(s));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t (&r)[4], const __nv_bfloat16* p) {
    unsigned s = (unsigned)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(s));
}

// c (16 x 8, f32) += a (16 x 16, row) * b (16 x 8, col)
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // .x (low half) = lo: the lower column
    return *reinterpret_cast<uint32_t*>(&v);
}

// ROWS rows of D elements from global (row stride `gstride`) into shared
// (row stride STRIDE); rows at or past `valid` are zero-filled.
template <int ROWS>
__device__ __forceinline__ void load_tile(__nv_bfloat16* s, const __nv_bfloat16* g, int gstride, int valid) {
    constexpr int C = D / 8;  // 16-byte chunks per row
    for (int i = threadIdx.x; i < ROWS * C; i += THREADS) {
        int r = i / C, c = i % C;
        bool ok = r < valid;
        cp_async16(s + r * STRIDE + c * 8, g + (size_t)(ok ? r : 0) * gstride + c * 8, ok);
    }
}

extern "C" __global__ void __launch_bounds__(THREADS)
flash_attention_bf16(const __nv_bfloat16* __restrict__ Q, const __nv_bfloat16* __restrict__ K,
                     const __nv_bfloat16* __restrict__ V, __nv_bfloat16* __restrict__ O, const FlashParams p) {
    __shared__ __align__(128) __nv_bfloat16 smem[2 * BN * STRIDE];
    __nv_bfloat16* sK = smem;
    __nv_bfloat16* sV = smem + BN * STRIDE;

    // which sequence this tile of queries belongs to
    const int tile = blockIdx.x, h = blockIdx.y;
    int b = 0;
    while (b + 1 < p.n_seqs && tile >= p.tiles[b + 1]) b++;
    const int q0 = (tile - p.tiles[b]) * BM;
    const int q_rows = min(BM, p.q_len[b] - q0);
    const int k_len = p.k_len[b];
    const int kvh = h / p.kv_group;
    const __nv_bfloat16* Qb = Q + (size_t)(p.q_start[b] + q0) * p.q_stride + h * D;
    const __nv_bfloat16* Kb = K + (size_t)p.k_start[b] * p.kv_stride + kvh * D;
    const __nv_bfloat16* Vb = V + (size_t)p.k_start[b] * p.kv_stride + kvh * D;

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

    // Q: staged through shared memory into registers, kept there for every key tile
    load_tile<BM>(smem, Qb, p.q_stride, q_rows);
    cp_commit();
    cp_wait_all();
    __syncthreads();
    uint32_t qf[D / 16][4];
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
        // matrices: rows 0-7 / 8-15 at columns kk*16, then the same at kk*16 + 8 = a0..a3
        int r = warp * 16 + (lane & 15);
        int c = kk * 16 + (lane >> 4) * 8;
        ldsm_x4(qf[kk], smem + r * STRIDE + c);
    }
    __syncthreads();

    float o[D / 8][4];
#pragma unroll
    for (int i = 0; i < D / 8; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
    // this thread's rows: g = lane / 4 and g + 8 of the warp's 16; the four
    // threads of a quad share them (each holds two columns of every 8)
    float m_row[2] = {-INFINITY, -INFINITY};
    float l_row[2] = {0.f, 0.f};

    const int n_tiles = (k_len + BN - 1) / BN;
    load_tile<BN>(sK, Kb, p.kv_stride, min(BN, k_len));
    cp_commit();

    for (int j = 0; j < n_tiles; j++) {
        const int kv0 = j * BN;
        const int kv_rows = min(BN, k_len - kv0);
        cp_wait_all();      // K[j] has landed
        __syncthreads();    // ... for every thread; and every warp is done reading V[j-1]
        load_tile<BN>(sV, Vb + (size_t)kv0 * p.kv_stride, p.kv_stride, kv_rows);
        cp_commit();        // V[j] arrives while S = Q K^T is computed

        float s[BN / 8][4];
#pragma unroll
        for (int i = 0; i < BN / 8; i++) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
#pragma unroll
            for (int nn = 0; nn < BN / 16; nn++) {
                // matrices: keys nn*16 + 0-7 at dims kk*16 (b0) and kk*16 + 8 (b1) of
                // key tile 2nn, then keys + 8-15 likewise for key tile 2nn + 1
                uint32_t bf[4];
                int r = nn * 16 + (lane & 7) + ((lane >> 4) << 3);
                int c = kk * 16 + ((lane >> 3) & 1) * 8;
                ldsm_x4(bf, sK + r * STRIDE + c);
                mma16816(s[2 * nn], qf[kk], bf[0], bf[1]);
                mma16816(s[2 * nn + 1], qf[kk], bf[2], bf[3]);
            }
        }
        if (kv_rows < BN) {  // keys past the sequence's end (zero-filled) get no weight
#pragma unroll
            for (int nt = 0; nt < BN / 8; nt++) {
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    int key = nt * 8 + 2 * (lane & 3) + (e & 1);
                    if (key >= kv_rows) s[nt][e] = -INFINITY;
                }
            }
        }

        // online softmax: new running max, rescale what was summed so far
        float mx[2] = {m_row[0], m_row[1]};
#pragma unroll
        for (int nt = 0; nt < BN / 8; nt++) {
            mx[0] = fmaxf(mx[0], fmaxf(s[nt][0], s[nt][1]));
            mx[1] = fmaxf(mx[1], fmaxf(s[nt][2], s[nt][3]));
        }
        float corr[2], msc[2];
#pragma unroll
        for (int i = 0; i < 2; i++) {
            mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
            mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
            corr[i] = exp2f((m_row[i] - mx[i]) * p.scale_log2);  // 0 on the first tile (m = -inf)
            m_row[i] = mx[i];
            msc[i] = mx[i] * p.scale_log2;
        }
        float rs[2] = {0.f, 0.f};
#pragma unroll
        for (int nt = 0; nt < BN / 8; nt++) {
            s[nt][0] = exp2f(fmaf(s[nt][0], p.scale_log2, -msc[0]));
            s[nt][1] = exp2f(fmaf(s[nt][1], p.scale_log2, -msc[0]));
            s[nt][2] = exp2f(fmaf(s[nt][2], p.scale_log2, -msc[1]));
            s[nt][3] = exp2f(fmaf(s[nt][3], p.scale_log2, -msc[1]));
            rs[0] += s[nt][0] + s[nt][1];
            rs[1] += s[nt][2] + s[nt][3];
        }
        // per-thread partial sums; the quad's four are added once at the end
        l_row[0] = l_row[0] * corr[0] + rs[0];
        l_row[1] = l_row[1] * corr[1] + rs[1];
#pragma unroll
        for (int i = 0; i < D / 8; i++) {
            o[i][0] *= corr[0];
            o[i][1] *= corr[0];
            o[i][2] *= corr[1];
            o[i][3] *= corr[1];
        }
        // the probabilities as A fragments: key tiles 2kk and 2kk + 1 make k-step kk
        uint32_t pf[BN / 16][4];
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++) {
            pf[kk][0] = pack_bf16(s[2 * kk][0], s[2 * kk][1]);
            pf[kk][1] = pack_bf16(s[2 * kk][2], s[2 * kk][3]);
            pf[kk][2] = pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]);
            pf[kk][3] = pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3]);
        }

        cp_wait_all();      // V[j] has landed
        __syncthreads();    // ... for every thread; and every warp is done reading K[j]
        if (j + 1 < n_tiles) {  // K[j+1] arrives while O += P V is computed
            load_tile<BN>(sK, Kb + (size_t)(kv0 + BN) * p.kv_stride, p.kv_stride, min(BN, k_len - kv0 - BN));
            cp_commit();
        }
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++) {
#pragma unroll
            for (int dn = 0; dn < D / 16; dn++) {
                // transposed matrices: keys kk*16 + 0-7 (b0) and + 8-15 (b1) at dims
                // dn*16 + 0-7 (dim tile 2dn), then the same at dims + 8-15 (2dn + 1)
                uint32_t bf[4];
                int r = kk * 16 + (lane & 7) + (((lane >> 3) & 1) << 3);
                int c = dn * 16 + (lane >> 4) * 8;
                ldsm_x4_t(bf, sV + r * STRIDE + c);
                mma16816(o[2 * dn], pf[kk], bf[0], bf[1]);
                mma16816(o[2 * dn + 1], pf[kk], bf[2], bf[3]);
            }
        }
    }

    // normalise and write this thread's two rows
#pragma unroll
    for (int i = 0; i < 2; i++) {
        l_row[i] += __shfl_xor_sync(0xffffffffu, l_row[i], 1);
        l_row[i] += __shfl_xor_sync(0xffffffffu, l_row[i], 2);
    }
    const float inv0 = 1.f / l_row[0], inv1 = 1.f / l_row[1];
    const int g = lane >> 2, t = lane & 3;
    const int r0 = warp * 16 + g, r1 = r0 + 8;
    __nv_bfloat16* Ob = O + (size_t)(p.q_start[b] + q0) * p.q_stride + h * D;
#pragma unroll
    for (int i = 0; i < D / 8; i++) {
        int col = i * 8 + 2 * t;
        if (r0 < q_rows)
            *reinterpret_cast<__nv_bfloat162*>(Ob + (size_t)r0 * p.q_stride + col) = __floats2bfloat162_rn(o[i][0] * inv0, o[i][1] * inv0);
        if (r1 < q_rows)
            *reinterpret_cast<__nv_bfloat162*>(Ob + (size_t)r1 * p.q_stride + col) = __floats2bfloat162_rn(o[i][2] * inv1, o[i][3] * inv1);
    }
}
