//! The VQ-VAE's 2-D convolution: candle's `conv2d` for inference, and an
//! unfold-and-matmul form when the weights are being trained on the CPU.
//!
//! Why a second form: candle's backward pass of `conv2d` computes the input's
//! gradient with `conv_transpose2d`, which on the CPU is a direct loop of
//! short dot products over the input channels (8-64 here), and the kernel's
//! gradient as a convolution whose kernel is the whole image. `perf` on the
//! trainer's VQ-VAE steps put ~45% of the time in those loops and ~3% in gemm.
//! Written as `unfold(x) @ W^T`, the backward pass is two matrix products
//! and a `fold` (the unfold's adjoint, one pass over the columns).
//!
//! The choice is made per call: the unfold form runs only where the weight is
//! a `Var` (being trained) and on the CPU, so inference, on every device, is
//! exactly what it was. (The VQ-VAE's inference runs its convolutions a band
//! of rows at a time through `forward_padded`, see `vq::band`.)

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Layout, Module, Shape, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, VarBuilder};
use rayon::prelude::*;

/// A convolution with square kernel `k`, stride and symmetric zero padding.
pub struct Conv {
    inner: Conv2d,
    k: usize,
    stride: usize,
    padding: usize,
}

impl Conv {
    pub fn load(cin: usize, cout: usize, k: usize, stride: usize, padding: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        let cfg = Conv2dConfig { padding, stride, ..Default::default() };
        Ok(Self { inner: candle_nn::conv2d(cin, cout, k, cfg, vb)?, k, stride, padding })
    }

    pub fn kernel(&self) -> usize {
        self.k
    }

    pub fn stride(&self) -> usize {
        self.stride
    }

    pub fn out_channels(&self) -> usize {
        self.inner.weight().dims()[0]
    }

    /// The convolution of `x` padded by the caller (a band of rows, see
    /// `vq::band`): candle's `conv2d` and bias add, as `Conv2d::forward`
    /// does them, without padding of its own.
    pub fn forward_padded(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = x.conv2d(self.inner.weight(), 0, self.stride, 1, 1)?;
        match self.inner.bias() {
            Some(b) => y.broadcast_add(&b.reshape((1, b.dim(0)?, 1, 1))?),
            None => Ok(y),
        }
    }
}

impl Module for Conv {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let w = self.inner.weight();
        if !(w.is_variable() && x.device().is_cpu()) {
            return self.inner.forward(x);
        }
        let (b, c, h, wd) = x.dims4()?;
        let cout = w.dim(0)?;
        let unfold = Unfold { k: self.k, stride: self.stride, padding: self.padding, c, h, w: wd };
        let (oh, ow) = unfold.out_hw();
        let cols = if self.k == 1 && self.stride == 1 && self.padding == 0 {
            x.permute((0, 2, 3, 1))?.reshape((b * h * wd, c))?
        } else {
            x.contiguous()?.apply_op1(unfold)?
        };
        let mut y = cols.matmul(&w.reshape((cout, c * self.k * self.k))?.t()?)?;
        if let Some(bias) = self.inner.bias() {
            y = y.broadcast_add(bias)?;
        }
        y.reshape((b, oh, ow, cout))?.permute((0, 3, 1, 2))?.contiguous()
    }
}

/// `[B, C, H, W]` -> `[B * OH * OW, C * k * k]`: each output pixel's receptive
/// field as one row, columns in the weight's `(c, ky, kx)` order.
#[derive(Clone, Copy)]
struct Unfold {
    k: usize,
    stride: usize,
    padding: usize,
    c: usize,
    h: usize,
    w: usize,
}

impl Unfold {
    fn out_hw(&self) -> (usize, usize) {
        let o = |n: usize| (n + 2 * self.padding - self.k) / self.stride + 1;
        (o(self.h), o(self.w))
    }

    /// The input pixel (`y * W + x`) that output pixel `(oy, ox)` reads at
    /// kernel offset `(ky, kx)`, or `None` in the zero padding.
    fn source(&self, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<usize> {
        let y = (oy * self.stride + ky).checked_sub(self.padding)?;
        let x = (ox * self.stride + kx).checked_sub(self.padding)?;
        (y < self.h && x < self.w).then_some(y * self.w + x)
    }

    fn row_len(&self) -> usize {
        self.c * self.k * self.k
    }
}

impl CustomOp1 for Unfold {
    fn name(&self) -> &'static str {
        "unfold"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(storage, layout)?;
        let plane = self.h * self.w;
        let b = x.len() / (self.c * plane);
        let (oh, ow) = self.out_hw();
        let (k, row) = (self.k, self.row_len());
        let mut cols = vec![0f32; b * oh * ow * row];
        // one chunk per output row of pixels, for the pool
        cols.par_chunks_mut(ow * row).enumerate().for_each(|(bo, chunk)| {
            let (bi, oy) = (bo / oh, bo % oh);
            let img = &x[bi * self.c * plane..(bi + 1) * self.c * plane];
            for ox in 0..ow {
                let out = &mut chunk[ox * row..(ox + 1) * row];
                for ky in 0..k {
                    for kx in 0..k {
                        if let Some(src) = self.source(oy, ox, ky, kx) {
                            for ci in 0..self.c {
                                out[(ci * k + ky) * k + kx] = img[ci * plane + src];
                            }
                        }
                    }
                }
            }
        });
        Ok((CpuStorage::F32(cols), Shape::from((b * oh * ow, row))))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&Fold(*self))?))
    }
}

/// The adjoint of `Unfold`: sums each column entry back onto the input pixel
/// it was read from.
struct Fold(Unfold);

impl CustomOp1 for Fold {
    fn name(&self) -> &'static str {
        "fold"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let u = &self.0;
        let cols = contiguous_f32(storage, layout)?;
        let (oh, ow) = u.out_hw();
        let (k, row, plane) = (u.k, u.row_len(), u.h * u.w);
        let b = cols.len() / (oh * ow * row);
        let mut x = vec![0f32; b * u.c * plane];
        // one chunk per image: images do not share input pixels
        x.par_chunks_mut(u.c * plane).enumerate().for_each(|(bi, img)| {
            for oy in 0..oh {
                for ox in 0..ow {
                    let r = ((bi * oh + oy) * ow + ox) * row;
                    let src_row = &cols[r..r + row];
                    for ky in 0..k {
                        for kx in 0..k {
                            if let Some(dst) = u.source(oy, ox, ky, kx) {
                                for ci in 0..u.c {
                                    img[ci * plane + dst] += src_row[(ci * k + ky) * k + kx];
                                }
                            }
                        }
                    }
                }
            }
        });
        Ok((CpuStorage::F32(x), Shape::from((b, u.c, u.h, u.w))))
    }
}

fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout) -> candle_core::Result<&'a [f32]> {
    let data = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => Err(candle_core::Error::Msg(format!("unfold/fold: a contiguous f32 tensor expected, got {:?}", storage.dtype()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};
    use candle_nn::VarMap;

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    /// The unfold form gives candle's outputs and gradients, for every kind
    /// of convolution the VQ-VAE has (3x3 padded, 3x3 stride 2, 1x1).
    #[test]
    fn unfold_form_matches_candle_forward_and_backward() {
        let dev = Device::Cpu;
        for (cin, cout, k, stride, padding, hw) in [(3, 8, 3, 1, 1, 12), (8, 8, 3, 2, 0, 13), (8, 16, 1, 1, 0, 6), (5, 4, 3, 1, 1, 3)] {
            let map = VarMap::new();
            let conv = Conv::load(cin, cout, k, stride, padding, VarBuilder::from_varmap(&map, DType::F32, &dev)).unwrap();
            let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, cin, hw, hw), &dev).unwrap()).unwrap();
            let fast = conv.forward(x.as_tensor()).unwrap();
            let slow = conv.inner.forward(x.as_tensor()).unwrap();
            assert_eq!(fast.dims(), slow.dims());
            assert!(max_diff(&fast, &slow) < 1e-4, "forward {cin}->{cout} k{k} s{stride}");
            // a loss that weighs every output differently
            let wts = Tensor::randn(0f32, 1.0, fast.shape(), &dev).unwrap();
            let gf = (fast * &wts).unwrap().sum_all().unwrap().backward().unwrap();
            let gs = (slow * &wts).unwrap().sum_all().unwrap().backward().unwrap();
            for t in [x.as_tensor(), conv.inner.weight(), conv.inner.bias().unwrap()] {
                let (a, b) = (gf.get(t).unwrap(), gs.get(t).unwrap());
                assert!(max_diff(a, b) < 1e-3, "gradient {:?} of {cin}->{cout} k{k} s{stride}", t.dims());
            }
        }
    }

    /// Inference weights (not `Var`s) keep candle's convolution.
    #[test]
    fn plain_weights_use_candles_convolution() {
        let dev = Device::Cpu;
        let mut ts = std::collections::HashMap::new();
        ts.insert("weight".to_string(), Tensor::randn(0f32, 1.0, (4, 3, 3, 3), &dev).unwrap());
        ts.insert("bias".to_string(), Tensor::zeros(4, DType::F32, &dev).unwrap());
        let conv = Conv::load(3, 4, 3, 1, 1, VarBuilder::from_tensors(ts, DType::F32, &dev)).unwrap();
        assert!(!conv.inner.weight().is_variable());
        let x = Tensor::randn(0f32, 1.0, (1, 3, 5, 5), &dev).unwrap();
        assert_eq!(max_diff(&conv.forward(&x).unwrap(), &conv.inner.forward(&x).unwrap()), 0.0);
    }
}
