//! The VQ-VAE's convolutions over bands of output rows (issue 29, item 5).
//!
//! Why: a convolution over a whole feature map unfolds it (im2col: on CUDA
//! `3 * 3 * C` values a pixel, 9 GiB for 256 channels at 1024^2 in f32), and
//! the GroupNorm + SiLU before it, or the upsampling, each materialise
//! another whole map. Here each band of output rows reads only its input
//! rows plus the kernel's halo, normalises (with statistics of the whole
//! tensor), activates or upsamples just those rows, pads them, convolves them
//! and adds the residual, into one preallocated output. A 3 x 3 convolution is
//! local, so this is exact: on the CPU the bands are whole tiles of candle's
//! tiled `conv2d`, and every element goes through the same operations as in
//! the whole-map code, bit for bit (`tests::banded_equals_whole_maps`; the
//! 1 x 1 shortcut's product is one gemm over fewer columns, which gives each
//! column the same sums).

use candle_core::{Module, Tensor};
use candle_nn::GroupNorm;

use super::super::conv::Conv;

/// Bytes one band's unfold and output may take (`rows * width * (C_in * k *
/// k + 2 * C_out)` values: on CUDA the im2col, the product and its NCHW copy).
/// 256 MiB keeps a band's working set a fraction of a 1024^2 map while a band
/// still holds ~20 rows of 1024 px at 256 channels. On the CPU smaller bands
/// cost time for little memory (release VQ-VAE, 512^2 decode, the unfold
/// alone counted: 55 s of CPU and 1.27 GB peak at 256 MiB, 61 s and 1.19 GB
/// at 32 MiB, 91 s and 1.16 GB at 8 MiB).
pub const BAND_BYTES: usize = 256 << 20;

/// Output pixels per tile of candle's CPU `conv2d` (`conv2d_tiled`'s
/// `TILE_SIZE`): CPU bands start on a tile boundary so that every tile, and
/// so every product, is the one the whole-map convolution computes.
const CPU_TILE: usize = 512;

/// GroupNorm that can also be applied a band at a time. `forward` is
/// candle's own; `stats` and `apply_silu` split it in two with the same
/// operations, so the result is bitwise the same.
pub struct Norm {
    inner: GroupNorm,
    weight: Tensor,
    bias: Tensor,
    groups: usize,
    eps: f64,
}

/// Per (image, group) mean and `sqrt(var + eps)` of a whole tensor, `[B, G, 1]`.
pub struct Stats {
    mean: Tensor,
    std: Tensor,
}

impl Norm {
    pub fn load(groups: usize, channels: usize, eps: f64, vb: candle_nn::VarBuilder) -> candle_core::Result<Self> {
        // the hints candle_nn::group_norm gives
        let weight = vb.get_with_hints(channels, "weight", candle_nn::Init::Const(1.))?;
        let bias = vb.get_with_hints(channels, "bias", candle_nn::Init::Const(0.))?;
        let inner = GroupNorm::new(weight.clone(), bias.clone(), channels, groups, eps)?;
        Ok(Self { inner, weight, bias, groups, eps })
    }

    /// The statistics of `x` (contiguous f32 `[B, C, H, W]`), as candle's
    /// GroupNorm computes them, one group at a time: no whole-map temporary.
    pub fn stats(&self, x: &Tensor) -> candle_core::Result<Stats> {
        let (b, c, h, w) = x.dims4()?;
        let hs = c / self.groups * h * w;
        let x = x.reshape((b, self.groups, hs))?;
        let mean = (x.sum_keepdim(2)? / hs as f64)?;
        let mut sums = Vec::with_capacity(b * self.groups);
        for bi in 0..b {
            for g in 0..self.groups {
                let xg = x.narrow(0, bi, 1)?.narrow(1, g, 1)?;
                let mg = mean.narrow(0, bi, 1)?.narrow(1, g, 1)?;
                sums.push(xg.broadcast_sub(&mg)?.sqr()?.sum_keepdim(2)?);
            }
        }
        let var = (Tensor::cat(&sums, 1)?.reshape((b, self.groups, 1))? / hs as f64)?;
        let std = (var + self.eps)?.sqrt()?;
        Ok(Stats { mean, std })
    }

    /// GroupNorm of rows of `x` with the whole tensor's `stats`, then SiLU.
    fn apply_silu(&self, x: &Tensor, st: &Stats) -> candle_core::Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        // one temporary at a time: each assignment drops the previous one
        let mut t = x.contiguous()?.reshape((b, self.groups, c / self.groups * h * w))?;
        t = t.broadcast_sub(&st.mean)?;
        t = t.broadcast_div(&st.std)?;
        t = t.reshape((b, c, h, w))?.broadcast_mul(&self.weight.reshape((1, c, 1, 1))?)?;
        t = t.broadcast_add(&self.bias.reshape((1, c, 1, 1))?)?;
        candle_nn::ops::silu(&t)
    }
}

impl Module for Norm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.inner.forward(x)
    }
}

/// Zero padding around a convolution's input: rows above and below, columns
/// left and right.
#[derive(Clone, Copy)]
pub struct Pads {
    pub top: usize,
    pub bottom: usize,
    pub left: usize,
    pub right: usize,
}

impl Pads {
    pub fn all(p: usize) -> Self {
        Self { top: p, bottom: p, left: p, right: p }
    }
}

/// What is done to the input's rows before they are convolved.
pub enum Pre<'a> {
    None,
    /// GroupNorm (whole-tensor statistics), then SiLU.
    NormSilu(&'a Norm, Stats),
    /// Nearest-neighbour upsampling by 2.
    Up2,
}

/// What is added to the output's rows.
pub enum Residual<'a> {
    None,
    /// A tensor of the output's shape.
    Add(&'a Tensor),
    /// A 1 x 1 convolution of a tensor of the output's size.
    Shortcut(&'a Conv, &'a Tensor),
}

/// `conv(pre(x))` (+ the residual), a band of output rows at a time, each
/// band's unfold and output within `bound` bytes (see [`BAND_BYTES`]).
pub fn conv(conv: &Conv, x: &Tensor, pre: &Pre, pads: Pads, residual: &Residual, bound: usize) -> candle_core::Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let up = if matches!(pre, Pre::Up2) { 2 } else { 1 };
    let (vh, vw) = (h * up, w * up);
    let (k, s) = (conv.kernel(), conv.stride());
    let oh = (vh + pads.top + pads.bottom - k) / s + 1;
    let ow = (vw + pads.left + pads.right - k) / s + 1;
    let per_px = (c * k * k + 2 * conv.out_channels()) * x.dtype().size_in_bytes();
    let rows = band_rows(ow, per_px, bound, x.device().is_cpu()).min(oh);
    let out = Tensor::zeros((b, conv.out_channels(), oh, ow), x.dtype(), x.device())?;
    for o0 in (0..oh).step_by(rows) {
        let o1 = (o0 + rows).min(oh);
        // rows [p0, p1) of the padded input, [v0, v1) of the unpadded one
        let (p0, p1) = (o0 * s, (o1 - 1) * s + k);
        let zt = pads.top.saturating_sub(p0).min(p1 - p0);
        let v0 = (p0.max(pads.top) - pads.top).min(vh);
        let v1 = p1.saturating_sub(pads.top).min(vh).max(v0);
        let zb = (p1 - p0) - zt - (v1 - v0);
        let mut t = band_input(x, pre, v0, v1, up)?;
        t = t.pad_with_zeros(2, zt, zb)?.pad_with_zeros(3, pads.left, pads.right)?;
        let mut y = conv.forward_padded(&t)?;
        drop(t);
        y = match residual {
            Residual::None => y,
            Residual::Add(r) => (y + r.narrow(2, o0, o1 - o0)?)?,
            Residual::Shortcut(sc, r) => (y + sc.forward_padded(&r.narrow(2, o0, o1 - o0)?)?)?,
        };
        out.slice_set(&y.contiguous()?, 2, o0)?;
    }
    Ok(out)
}

/// Rows `[v0, v1)` of `pre(x)` (in upsampled rows when upsampling).
fn band_input(x: &Tensor, pre: &Pre, v0: usize, v1: usize, up: usize) -> candle_core::Result<Tensor> {
    if v0 == v1 {
        let (b, c, _, w) = x.dims4()?;
        return Tensor::zeros((b, c, 0, w * up), x.dtype(), x.device());
    }
    let (s0, s1) = (v0 / up, (v1 - 1) / up + 1);
    let rows = x.narrow(2, s0, s1 - s0)?;
    match pre {
        Pre::None => Ok(rows),
        Pre::NormSilu(norm, st) => norm.apply_silu(&rows, st),
        Pre::Up2 => {
            let w = x.dim(3)?;
            rows.upsample_nearest2d((s1 - s0) * 2, w * 2)?.narrow(2, v0 - s0 * 2, v1 - v0)
        }
    }
}

/// Output rows per band: as many as `bound` allows at `per_px` bytes an
/// output pixel, at least one; on the CPU a multiple of the rows that make
/// whole tiles.
fn band_rows(ow: usize, per_px: usize, bound: usize, cpu: bool) -> usize {
    let rows = (bound / (ow * per_px).max(1)).max(1);
    if !cpu {
        return rows;
    }
    let align = CPU_TILE / gcd(ow, CPU_TILE);
    (rows / align).max(1) * align
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor};

    use super::super::{VqConfig, VqModel};

    fn bits(t: &Tensor) -> Vec<u32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|v| v.to_bits()).collect()
    }

    /// A small VQ-VAE with random weights, every kind of block the release
    /// has plus the mid-block attention, run over bands forced small (many
    /// bands a map, a short last one, both edges) and over whole maps: the
    /// latents and pixels are the same bits.
    #[test]
    fn banded_equals_whole_maps() {
        let dev = Device::Cpu;
        let cfg = VqConfig {
            block_out_channels: vec![8, 16, 16],
            layers_per_block: 1,
            latent_channels: 4,
            num_vq_embeddings: 16,
            norm_num_groups: 4,
            in_channels: 3,
            out_channels: 3,
            norm_type: None,
            mid_block_add_attention: Some(true),
            vq_embed_dim: None,
            act_fn: None,
        };
        let vb = crate::model::random::random_vq_weights(&cfg, DType::F32, &dev).unwrap();
        let mut vq = VqModel::load(&cfg, vb).unwrap();
        // 80 x 128 px: maps 128, 64 and 32 wide, whose CPU bands are 4, 8 and 16 rows
        let x = Tensor::rand(0f32, 1.0, (1, 3, 80, 128), &dev).unwrap();
        let z = Tensor::randn(0f32, 1.0, (1, 4, 20, 32), &dev).unwrap();
        vq.set_band_bytes(None);
        let (ew, dw) = (vq.encoder_forward(&x).unwrap(), vq.decoder_forward(&z).unwrap());
        vq.set_band_bytes(Some(1));
        let (eb, db) = (vq.encoder_forward(&x).unwrap(), vq.decoder_forward(&z).unwrap());
        assert_eq!(ew.dims(), eb.dims());
        assert_eq!(dw.dims(), db.dims());
        assert!(bits(&ew) == bits(&eb), "encoder latents differ");
        assert!(bits(&dw) == bits(&db), "decoded pixels differ");
    }

    /// Bands cover the map once, in tile-aligned steps on the CPU.
    #[test]
    fn band_rows_are_whole_tiles_on_the_cpu() {
        // 256 channels in and out at 1024 px: 23 rows, 253 MiB of unfold and output;
        // at 1000 px on the CPU: 64 rows, the fewest that make whole tiles
        assert_eq!(super::band_rows(1024, (2304 + 512) * 4, super::BAND_BYTES, true), 23);
        assert_eq!(super::band_rows(1000, (2304 + 512) * 4, super::BAND_BYTES, true), 64);
        assert_eq!(super::band_rows(1000, (2304 + 512) * 4, super::BAND_BYTES, false), 23);
        assert_eq!(super::band_rows(48, 9 * 4, 1, true), 32);
        assert_eq!(super::band_rows(48, 9 * 4, 1, false), 1);
    }
}
