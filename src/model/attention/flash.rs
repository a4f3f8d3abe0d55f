//! The fused attention kernel (`flash.cu`) as a candle custom op. Built only
//! with the `cuda` feature (build.rs compiles one PTX module per head
//! dimension); without it [`fused`] says so and the caller keeps the
//! reference path.

use candle_core::Tensor;

use super::Spans;

/// The most sequences one call packs (the kernel's parameter block holds them
/// by value); more and the caller splits the call.
pub const MAX_SEQS: usize = 16;

/// Fused attention over packed sequences: `q` `[rows, heads*hd]` (RoPE applied,
/// unscaled), `k`, `v` `[keys, kv_heads*hd]` (RoPE on `k`), bf16 on a CUDA
/// device; returns `[rows, heads*hd]` bf16. `scale` is the softmax scale.
pub fn fused(q: &Tensor, k: &Tensor, v: &Tensor, spans: &Spans, heads: usize, kv_heads: usize, hd: usize, scale: f32) -> candle_core::Result<Tensor> {
    spans.check(q.dim(0)?, k.dim(0)?)?;
    if spans.len() > MAX_SEQS {
        candle_core::bail!("fused attention: {} sequences in one call, at most {MAX_SEQS}", spans.len());
    }
    if hd % 16 != 0 || hd == 0 || hd > 256 || heads % kv_heads.max(1) != 0 {
        candle_core::bail!("fused attention: head dim {hd} (a multiple of 16 up to 256) with {heads} / {kv_heads} heads");
    }
    if q.dims2()? != (q.dim(0)?, heads * hd) || k.dims2()?.1 != kv_heads * hd || v.dims2()? != k.dims2()? {
        candle_core::bail!("fused attention: shapes q {:?} k {:?} v {:?}", q.shape(), k.shape(), v.shape());
    }
    imp::run(q, k, v, spans, heads, kv_heads, hd, scale)
}

#[cfg(not(feature = "cuda"))]
mod imp {
    use super::*;
    #[allow(clippy::too_many_arguments)]
    pub fn run(_: &Tensor, _: &Tensor, _: &Tensor, _: &Spans, _: usize, _: usize, _: usize, _: f32) -> candle_core::Result<Tensor> {
        candle_core::bail!("fused attention needs a build with `--features cuda`")
    }
}

#[cfg(feature = "cuda")]
mod imp {
    use super::*;
    use candle_core::backend::BackendStorage;
    use candle_core::cuda_backend::cudarc::driver::{DeviceRepr, LaunchConfig, PushKernelArg};
    use candle_core::cuda_backend::{CudaStorage, CudaStorageSlice, WrapErr};
    use candle_core::{CustomOp3, Layout, Shape};

    // one PTX module per head dimension: `FLASH_PTX: [(usize, &str); 16]`
    include!(concat!(env!("OUT_DIR"), "/flash_ptx.rs"));

    /// Mirrors `FlashParams` in flash.cu field for field.
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Params {
        n_seqs: i32,
        kv_group: i32,
        q_stride: i32,
        kv_stride: i32,
        scale_log2: f32,
        tiles: [i32; MAX_SEQS + 1],
        q_start: [i32; MAX_SEQS],
        q_len: [i32; MAX_SEQS],
        k_start: [i32; MAX_SEQS],
        k_len: [i32; MAX_SEQS],
    }
    // SAFETY: plain old data with the C layout the kernel reads.
    unsafe impl DeviceRepr for Params {}

    /// Query rows per block (BM in flash.cu).
    const BM: usize = 64;

    struct Op {
        params: Params,
        tiles: u32,
        heads: u32,
        hd: usize,
        out: Shape,
    }

    impl CustomOp3 for Op {
        fn name(&self) -> &'static str {
            "unmask-flash-attention"
        }

        fn cpu_fwd(&self, _: &candle_core::CpuStorage, _: &Layout, _: &candle_core::CpuStorage, _: &Layout, _: &candle_core::CpuStorage, _: &Layout) -> candle_core::Result<(candle_core::CpuStorage, Shape)> {
            candle_core::bail!("fused attention runs on CUDA only")
        }

        fn cuda_fwd(&self, q: &CudaStorage, lq: &Layout, k: &CudaStorage, lk: &Layout, v: &CudaStorage, lv: &Layout) -> candle_core::Result<(CudaStorage, Shape)> {
            let dev = q.device().clone();
            let (CudaStorageSlice::BF16(qs), CudaStorageSlice::BF16(ks), CudaStorageSlice::BF16(vs)) = (&q.slice, &k.slice, &v.slice) else {
                candle_core::bail!("fused attention takes bf16");
            };
            // contiguous, and 16-byte aligned for cp.async (offsets in elements)
            let view = |l: &Layout| -> candle_core::Result<(usize, usize)> {
                match l.contiguous_offsets() {
                    Some((a, b)) if a % 8 == 0 => Ok((a, b)),
                    _ => candle_core::bail!("fused attention: inputs must be contiguous from an aligned offset"),
                }
            };
            let ((q0, q1), (k0, k1), (v0, v1)) = (view(lq)?, view(lk)?, view(lv)?);
            let (qv, kv, vv) = (qs.slice(q0..q1), ks.slice(k0..k1), vs.slice(v0..v1));
            let ptx = FLASH_PTX.iter().find(|(d, _)| *d == self.hd).map(|(_, p)| *p);
            let Some(ptx) = ptx else { candle_core::bail!("fused attention: no kernel for head dim {}", self.hd) };
            let func = dev.get_or_load_custom_func("flash_attention_bf16", &format!("unmask_flash_d{}", self.hd), ptx)?;
            let n = self.out.elem_count();
            // SAFETY: every row of every sequence is written by the kernel
            // (rows outside all sequences do not exist: spans cover q).
            let out = unsafe { dev.alloc(n)? };
            if self.tiles > 0 {
                let cfg = LaunchConfig { grid_dim: (self.tiles, self.heads, 1), block_dim: (128, 1, 1), shared_mem_bytes: 0 };
                let mut b = func.builder();
                b.arg(&qv);
                b.arg(&kv);
                b.arg(&vv);
                b.arg(&out);
                b.arg(&self.params);
                // SAFETY: the kernel reads q, k, v within the spans checked
                // against their row counts and writes `out` of the same shape as q.
                unsafe { b.launch(cfg) }.w()?;
            }
            Ok((CudaStorage { slice: CudaStorageSlice::BF16(out), device: dev }, self.out.clone()))
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn run(q: &Tensor, k: &Tensor, v: &Tensor, spans: &Spans, heads: usize, kv_heads: usize, hd: usize, scale: f32) -> candle_core::Result<Tensor> {
        let mut p = Params {
            n_seqs: spans.len() as i32,
            kv_group: (heads / kv_heads) as i32,
            q_stride: (heads * hd) as i32,
            kv_stride: (kv_heads * hd) as i32,
            scale_log2: scale * std::f32::consts::LOG2_E,
            ..Default::default()
        };
        let mut tiles = 0usize;
        for (b, s) in spans.iter().enumerate() {
            p.tiles[b] = tiles as i32;
            p.q_start[b] = s.q_start as i32;
            p.q_len[b] = s.q_len as i32;
            p.k_start[b] = s.k_start as i32;
            p.k_len[b] = s.k_len as i32;
            tiles += s.q_len.div_ceil(BM);
        }
        p.tiles[spans.len()] = tiles as i32;
        if tiles > i32::MAX as usize || q.elem_count() > i32::MAX as usize / 2 || k.elem_count() > i32::MAX as usize / 2 {
            candle_core::bail!("fused attention: problem too large for 32-bit indexing");
        }
        let op = Op { params: p, tiles: tiles as u32, heads: heads as u32, hd, out: q.shape().clone() };
        q.contiguous()?.apply_op3_no_bwd(&k.contiguous()?, &v.contiguous()?, &op)
    }
}
