//! The aMUSEd VQ-VAE of Lumina-DiMOO (diffusers `VQModel` layout, spec section 3):
//! encoder, nearest-code quantizer and decoder, driven by `vqvae/config.json`.

use std::path::Path;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Linear, VarBuilder};

use super::conv::Conv;
use band::{Norm, Pads, Pre, Residual};

mod band;
pub use band::BAND_BYTES;
use serde::Deserialize;

use crate::error::{Error, Result};

/// The fields of diffusers' `VQModel` config that shape the network.
#[derive(Debug, Clone, Deserialize)]
pub struct VqConfig {
    pub block_out_channels: Vec<usize>,
    pub layers_per_block: usize,
    pub latent_channels: usize,
    pub num_vq_embeddings: usize,
    pub norm_num_groups: usize,
    #[serde(default = "default_rgb")]
    pub in_channels: usize,
    #[serde(default = "default_rgb")]
    pub out_channels: usize,
    #[serde(default)]
    pub norm_type: Option<String>,
    #[serde(default)]
    pub mid_block_add_attention: Option<bool>,
    #[serde(default)]
    pub vq_embed_dim: Option<usize>,
    #[serde(default)]
    pub act_fn: Option<String>,
}

fn default_rgb() -> usize {
    3
}

impl VqConfig {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = crate::model::config::read_bundle_json(path, "vqvae/config.json")?;
        let cfg: VqConfig = serde_json::from_str(&text)
            .map_err(|e| Error::bundle(path, format!("not a diffusers VQModel config: {e}")))?;
        cfg.check().map_err(|m| Error::bundle(path, m))?;
        Ok(cfg)
    }

    fn check(&self) -> std::result::Result<(), String> {
        if self.block_out_channels.is_empty() || self.block_out_channels.len() > 8 {
            return Err(format!("field `block_out_channels`: 1 to 8 blocks expected, found {}", self.block_out_channels.len()));
        }
        for (field, v, max) in [
            ("norm_num_groups", self.norm_num_groups, 1024),
            ("layers_per_block", self.layers_per_block, 16),
            ("latent_channels", self.latent_channels, 4096),
            ("num_vq_embeddings", self.num_vq_embeddings, 1 << 20),
            ("block_out_channels", self.block_out_channels.iter().copied().max().unwrap_or(1), 4096),
            ("block_out_channels", self.block_out_channels.iter().copied().min().unwrap_or(1), usize::MAX),
        ] {
            if v == 0 || v > max {
                return Err(format!("field `{field}`: {v} is outside 1..={max}"));
            }
        }
        if let Some(c) = self.block_out_channels.iter().find(|&&c| c % self.norm_num_groups != 0) {
            return Err(format!("field `norm_num_groups`: {} does not divide channel count {c}", self.norm_num_groups));
        }
        if let Some(t) = self.norm_type.as_deref() {
            if t != "group" {
                return Err(format!("field `norm_type`: only \"group\" is supported, found \"{t}\""));
            }
        }
        if let Some(a) = self.act_fn.as_deref() {
            if a != "silu" {
                return Err(format!("field `act_fn`: only \"silu\" is supported, found \"{a}\""));
            }
        }
        if self.in_channels != 3 || self.out_channels != 3 {
            return Err("fields `in_channels`/`out_channels`: RGB (3) expected".into());
        }
        if self.embed_dim() != self.latent_channels {
            return Err(format!("field `vq_embed_dim` ({}) must equal latent_channels", self.embed_dim()));
        }
        Ok(())
    }

    /// Pixels per token side: 2^(number of blocks - 1).
    pub fn factor(&self) -> usize {
        1 << (self.block_out_channels.len() - 1)
    }

    pub fn embed_dim(&self) -> usize {
        self.vq_embed_dim.unwrap_or(self.latent_channels)
    }
}

const EPS: f64 = 1e-6;

fn conv(cin: usize, cout: usize, k: usize, stride: usize, padding: usize, vb: VarBuilder) -> candle_core::Result<Conv> {
    Conv::load(cin, cout, k, stride, padding, vb)
}

fn silu(x: &Tensor) -> candle_core::Result<Tensor> {
    candle_nn::ops::silu(x)
}

fn group_norm(groups: usize, channels: usize, vb: VarBuilder) -> candle_core::Result<Norm> {
    Norm::load(groups, channels, EPS, vb)
}

/// A 3 x 3 "same" convolution of `pre(x)` over bands of rows.
fn same(c: &Conv, x: &Tensor, pre: Pre, residual: Residual, bound: usize) -> candle_core::Result<Tensor> {
    band::conv(c, x, &pre, Pads::all(1), &residual, bound)
}

/// `conv(silu(norm(x)))` over bands of rows.
fn norm_conv(norm: &Norm, c: &Conv, x: &Tensor, residual: Residual, bound: usize) -> candle_core::Result<Tensor> {
    same(c, x, Pre::NormSilu(norm, norm.stats(x)?), residual, bound)
}

/// diffusers `ResnetBlock2D` without a time embedding.
struct Resnet {
    norm1: Norm,
    conv1: Conv,
    norm2: Norm,
    conv2: Conv,
    shortcut: Option<Conv>,
}

impl Resnet {
    fn load(cin: usize, cout: usize, groups: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(Self {
            norm1: group_norm(groups, cin, vb.pp("norm1"))?,
            conv1: conv(cin, cout, 3, 1, 1, vb.pp("conv1"))?,
            norm2: group_norm(groups, cout, vb.pp("norm2"))?,
            conv2: conv(cout, cout, 3, 1, 1, vb.pp("conv2"))?,
            shortcut: if cin != cout { Some(conv(cin, cout, 1, 1, 0, vb.pp("conv_shortcut"))?) } else { None },
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let h = self.conv1.forward(&silu(&self.norm1.forward(x)?)?)?;
        let h = self.conv2.forward(&silu(&self.norm2.forward(&h)?)?)?;
        match &self.shortcut {
            Some(s) => s.forward(x)? + h,
            None => x + h,
        }
    }

    fn forward_banded(&self, x: &Tensor, bound: usize) -> candle_core::Result<Tensor> {
        let h = norm_conv(&self.norm1, &self.conv1, x, Residual::None, bound)?;
        let residual = match &self.shortcut {
            Some(s) => Residual::Shortcut(s, x),
            None => Residual::Add(x),
        };
        norm_conv(&self.norm2, &self.conv2, &h, residual, bound)
    }
}

/// diffusers `Attention` as the VQ mid-block uses it: one head over all channels.
struct SpatialAttention {
    norm: Norm,
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
}

impl SpatialAttention {
    fn load(c: usize, groups: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(Self {
            norm: group_norm(groups, c, vb.pp("group_norm"))?,
            q: candle_nn::linear(c, c, vb.pp("to_q"))?,
            k: candle_nn::linear(c, c, vb.pp("to_k"))?,
            v: candle_nn::linear(c, c, vb.pp("to_v"))?,
            out: candle_nn::linear(c, c, vb.pp("to_out").pp(0))?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let t = self.norm.forward(x)?.reshape((b, c, h * w))?.transpose(1, 2)?.contiguous()?;
        let (q, k, v) = (self.q.forward(&t)?, self.k.forward(&t)?, self.v.forward(&t)?);
        let att = candle_nn::ops::softmax_last_dim(&(q.matmul(&k.t()?)? / (c as f64).sqrt())?)?;
        let o = self.out.forward(&att.matmul(&v)?)?;
        o.transpose(1, 2)?.reshape((b, c, h, w))? + x
    }
}

struct MidBlock {
    first: Resnet,
    attention: Option<SpatialAttention>,
    second: Resnet,
}

impl MidBlock {
    fn load(c: usize, cfg: &VqConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let g = cfg.norm_num_groups;
        let attention = if cfg.mid_block_add_attention.unwrap_or(true) {
            Some(SpatialAttention::load(c, g, vb.pp("attentions").pp(0))?)
        } else {
            None
        };
        Ok(Self {
            first: Resnet::load(c, c, g, vb.pp("resnets").pp(0))?,
            attention,
            second: Resnet::load(c, c, g, vb.pp("resnets").pp(1))?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut h = self.first.forward(x)?;
        if let Some(a) = &self.attention {
            h = a.forward(&h)?;
        }
        self.second.forward(&h)
    }

    /// The attention runs whole: it is at the latent's size.
    fn forward_banded(&self, x: &Tensor, bound: usize) -> candle_core::Result<Tensor> {
        let mut h = self.first.forward_banded(x, bound)?;
        if let Some(a) = &self.attention {
            h = a.forward(&h)?;
        }
        self.second.forward_banded(&h, bound)
    }
}

struct Stage {
    resnets: Vec<Resnet>,
    resample: Option<Conv>,
}

struct Encoder {
    conv_in: Conv,
    down: Vec<Stage>,
    mid: MidBlock,
    norm_out: Norm,
    conv_out: Conv,
}

impl Encoder {
    fn load(cfg: &VqConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let ch = &cfg.block_out_channels;
        let g = cfg.norm_num_groups;
        let mut down = Vec::new();
        let mut cin = ch[0];
        for (i, &cout) in ch.iter().enumerate() {
            let vbb = vb.pp("down_blocks").pp(i);
            let resnets = (0..cfg.layers_per_block)
                .map(|j| Resnet::load(if j == 0 { cin } else { cout }, cout, g, vbb.pp("resnets").pp(j)))
                .collect::<candle_core::Result<Vec<_>>>()?;
            let last = i + 1 == ch.len();
            let resample = if last { None } else { Some(conv(cout, cout, 3, 2, 0, vbb.pp("downsamplers").pp(0).pp("conv"))?) };
            down.push(Stage { resnets, resample });
            cin = cout;
        }
        let top = *ch.last().unwrap_or(&ch[0]);
        Ok(Self {
            conv_in: conv(cfg.in_channels, ch[0], 3, 1, 1, vb.pp("conv_in"))?,
            down,
            mid: MidBlock::load(top, cfg, vb.pp("mid_block"))?,
            norm_out: group_norm(g, top, vb.pp("conv_norm_out"))?,
            conv_out: conv(top, cfg.latent_channels, 3, 1, 1, vb.pp("conv_out"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut h = self.conv_in.forward(x)?;
        for stage in &self.down {
            for r in &stage.resnets {
                h = r.forward(&h)?;
            }
            if let Some(c) = &stage.resample {
                // diffusers pads right and bottom by one, then a stride-2 conv without padding
                h = c.forward(&h.pad_with_zeros(3, 0, 1)?.pad_with_zeros(2, 0, 1)?)?;
            }
        }
        h = self.mid.forward(&h)?;
        self.conv_out.forward(&silu(&self.norm_out.forward(&h)?)?)
    }

    /// `forward` a band of rows at a time; each `h = ...` drops the map it replaces.
    fn forward_banded(&self, x: &Tensor, bound: usize) -> candle_core::Result<Tensor> {
        let mut h = same(&self.conv_in, x, Pre::None, Residual::None, bound)?;
        for stage in &self.down {
            for r in &stage.resnets {
                h = r.forward_banded(&h, bound)?;
            }
            if let Some(c) = &stage.resample {
                let pads = Pads { top: 0, bottom: 1, left: 0, right: 1 };
                h = band::conv(c, &h, &Pre::None, pads, &Residual::None, bound)?;
            }
        }
        h = self.mid.forward_banded(&h, bound)?;
        norm_conv(&self.norm_out, &self.conv_out, &h, Residual::None, bound)
    }
}

struct Decoder {
    conv_in: Conv,
    mid: MidBlock,
    up: Vec<Stage>,
    norm_out: Norm,
    conv_out: Conv,
}

impl Decoder {
    fn load(cfg: &VqConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let rev: Vec<usize> = cfg.block_out_channels.iter().rev().copied().collect();
        let g = cfg.norm_num_groups;
        let mut up = Vec::new();
        let mut cin = rev[0];
        for (i, &cout) in rev.iter().enumerate() {
            let vbb = vb.pp("up_blocks").pp(i);
            let resnets = (0..cfg.layers_per_block + 1)
                .map(|j| Resnet::load(if j == 0 { cin } else { cout }, cout, g, vbb.pp("resnets").pp(j)))
                .collect::<candle_core::Result<Vec<_>>>()?;
            let last = i + 1 == rev.len();
            let resample = if last { None } else { Some(conv(cout, cout, 3, 1, 1, vbb.pp("upsamplers").pp(0).pp("conv"))?) };
            up.push(Stage { resnets, resample });
            cin = cout;
        }
        let bottom = *rev.last().unwrap_or(&rev[0]);
        Ok(Self {
            conv_in: conv(cfg.latent_channels, rev[0], 3, 1, 1, vb.pp("conv_in"))?,
            mid: MidBlock::load(rev[0], cfg, vb.pp("mid_block"))?,
            up,
            norm_out: group_norm(g, bottom, vb.pp("conv_norm_out"))?,
            conv_out: conv(bottom, cfg.out_channels, 3, 1, 1, vb.pp("conv_out"))?,
        })
    }

    fn forward(&self, z: &Tensor) -> candle_core::Result<Tensor> {
        let mut h = self.mid.forward(&self.conv_in.forward(z)?)?;
        for stage in &self.up {
            for r in &stage.resnets {
                h = r.forward(&h)?;
            }
            if let Some(c) = &stage.resample {
                let (_, _, hh, ww) = h.dims4()?;
                h = c.forward(&h.upsample_nearest2d(hh * 2, ww * 2)?)?;
            }
        }
        self.conv_out.forward(&silu(&self.norm_out.forward(&h)?)?)
    }

    /// `forward` a band of rows at a time: the upsampled maps, normalised
    /// maps and unfolds exist a band at a time only.
    fn forward_banded(&self, z: &Tensor, bound: usize) -> candle_core::Result<Tensor> {
        let mut h = same(&self.conv_in, z, Pre::None, Residual::None, bound)?;
        h = self.mid.forward_banded(&h, bound)?;
        for stage in &self.up {
            for r in &stage.resnets {
                h = r.forward_banded(&h, bound)?;
            }
            if let Some(c) = &stage.resample {
                h = same(c, &h, Pre::Up2, Residual::None, bound)?;
            }
        }
        norm_conv(&self.norm_out, &self.conv_out, &h, Residual::None, bound)
    }
}

/// An image as the VQ-VAE sees it: RGB rows of u8, `height * width * 3` long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgb {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

/// A grid of VQ codes, row-major.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CodeGrid {
    pub height: usize,
    pub width: usize,
    pub codes: Vec<u32>,
}

pub struct VqModel {
    cfg: VqConfig,
    encoder: Encoder,
    quant_conv: Conv,
    codebook: Tensor,
    post_quant_conv: Conv,
    decoder: Decoder,
    device: Device,
    band_bytes: Option<usize>,
}

impl VqModel {
    /// The VQ-VAE runs in f32 on every device: it is small next to the transformer.
    pub fn load(cfg: &VqConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let e = cfg.embed_dim();
        Ok(Self {
            cfg: cfg.clone(),
            encoder: Encoder::load(cfg, vb.pp("encoder"))?,
            quant_conv: conv(cfg.latent_channels, e, 1, 1, 0, vb.pp("quant_conv"))?,
            codebook: vb.get((cfg.num_vq_embeddings, e), "quantize.embedding.weight")?,
            post_quant_conv: conv(e, cfg.latent_channels, 1, 1, 0, vb.pp("post_quant_conv"))?,
            decoder: Decoder::load(cfg, vb.pp("decoder"))?,
            device: vb.device().clone(),
            band_bytes: Some(BAND_BYTES),
        })
    }

    /// How `encode` and `decode` run their convolutions: over bands of rows
    /// whose unfold takes at most `bytes` (the default, [`BAND_BYTES`]), or
    /// with `None` over whole maps as the training hooks do (for comparisons).
    pub fn set_band_bytes(&mut self, bytes: Option<usize>) {
        self.band_bytes = bytes;
    }

    fn encoder_forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self.band_bytes {
            Some(b) => self.encoder.forward_banded(x, b),
            None => self.encoder.forward(x),
        }
    }

    fn decoder_forward(&self, z: &Tensor) -> candle_core::Result<Tensor> {
        match self.band_bytes {
            Some(b) => self.decoder.forward_banded(z, b),
            None => self.decoder.forward(z),
        }
    }

    pub fn config(&self) -> &VqConfig {
        &self.cfg
    }

    pub fn factor(&self) -> usize {
        self.cfg.factor()
    }

    /// Pixels -> nearest codebook index per latent cell (row-major).
    pub fn encode(&self, img: &Rgb) -> Result<CodeGrid> {
        let _timer = crate::profile::phase("encode");
        let f = self.factor();
        if img.width % f != 0 || img.height % f != 0 || img.width == 0 || img.height == 0 {
            return Err(Error::invalid(format!(
                "image is {}x{}: both sides must be positive multiples of the VQ factor {f}",
                img.width, img.height
            )));
        }
        let x = Tensor::from_slice(&img.data, (img.height, img.width, 3), &self.device)?
            .to_dtype(DType::F32)?
            .affine(1.0 / 255.0, 0.0)?
            .permute((2, 0, 1))?
            .unsqueeze(0)?;
        let z = self.quant_conv.forward(&self.encoder_forward(&x)?)?; // [1, e, h, w]
        let (_, e, h, w) = z.dims4()?;
        let z = z.squeeze(0)?.permute((1, 2, 0))?.reshape((h * w, e))?;
        // |z - c|^2 = |z|^2 - 2 z.c + |c|^2; |z|^2 is the same for every code.
        let cross = z.matmul(&self.codebook.t()?)?;
        let norms = self.codebook.sqr()?.sum(1)?;
        let dist = cross.affine(-2.0, 0.0)?.broadcast_add(&norms.unsqueeze(0)?)?;
        let codes = dist.argmin(1)?.to_vec1::<u32>()?;
        Ok(CodeGrid { height: h, width: w, codes })
    }

    /// Training hook: the pre-quantisation latent `[B, e, h, w]` of images
    /// `[B, 3, H, W]` in [0, 1].
    pub fn encode_latent(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.quant_conv.forward(&self.encoder.forward(x)?)
    }

    /// Training hook: pixels `[B, 3, H, W]` (unclipped) from latents `[B, e, h, w]`.
    pub fn decode_latent(&self, z: &Tensor) -> candle_core::Result<Tensor> {
        self.decoder.forward(&self.post_quant_conv.forward(z)?)
    }

    /// The codebook `[K, e]`.
    pub fn codebook(&self) -> &Tensor {
        &self.codebook
    }

    /// Codes -> pixels in [0, 1], `[H, W, 3]` f32.
    pub fn decode_f32(&self, grid: &CodeGrid) -> Result<Tensor> {
        let k = self.cfg.num_vq_embeddings;
        if let Some(bad) = grid.codes.iter().find(|&&c| c as usize >= k) {
            return Err(Error::invalid(format!("code {bad} outside the codebook of {k}")));
        }
        if grid.codes.len() != grid.height * grid.width || grid.codes.is_empty() {
            return Err(Error::invalid(format!(
                "code grid holds {} codes, expected {} x {}",
                grid.codes.len(),
                grid.height,
                grid.width
            )));
        }
        let idx = Tensor::from_slice(&grid.codes, grid.codes.len(), &self.device)?;
        let z = self.codebook.index_select(&idx, 0)?;
        let z = z.reshape((grid.height, grid.width, self.cfg.embed_dim()))?.permute((2, 0, 1))?.unsqueeze(0)?;
        let x = self.decoder_forward(&self.post_quant_conv.forward(&z)?)?;
        Ok(x.squeeze(0)?.permute((1, 2, 0))?.clamp(0f32, 1f32)?)
    }

    /// Codes -> RGB u8 (`round(x * 255)` of the clipped output).
    pub fn decode(&self, grid: &CodeGrid) -> Result<Rgb> {
        let _timer = crate::profile::phase("decode");
        let x = self.decode_f32(grid)?;
        let (h, w, _) = x.dims3()?;
        let data = x.flatten_all()?.to_vec1::<f32>()?.iter().map(|v| (v * 255.0).round_ties_even() as u8).collect();
        Ok(Rgb { width: w, height: h, data })
    }
}
