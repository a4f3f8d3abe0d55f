//! VQ-VAE training on rendered scenes: reconstruction + codebook and
//! commitment losses with a straight-through estimator, and restarts of codes
//! that stop being used.

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{Optimizer, VarBuilder, VarMap};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use unmask::model::{CodeGrid, VqConfig, VqModel};
use unmask::shapes::{render::render, world::Scene};

/// Image side: 48 px puts each cell of the 3 x 3 layout on exactly 2 x 2
/// codes (8 px each), so a code only ever shows a quarter of one layout
/// cell, and the ~200 such quarters fit the 256-code book. (At 64 px the
/// layout cells straddle codes, the book had to share codes between
/// thousands of different patches, and reconstructions came out blurred.)
pub const SIDE: u32 = 48;

/// `norm_num_groups` is 4 so that it divides every channel count from 8 up.
pub fn config_with(channels: &[usize]) -> VqConfig {
    let n = channels.len();
    serde_json::from_value(serde_json::json!({
        "_class_name": "VQModel",
        "block_out_channels": channels,
        "down_block_types": vec!["DownEncoderBlock2D"; n],
        "up_block_types": vec!["UpDecoderBlock2D"; n],
        "in_channels": 3, "out_channels": 3, "latent_channels": 8, "layers_per_block": 1,
        "num_vq_embeddings": 256, "norm_num_groups": 4, "norm_type": "group",
        "mid_block_add_attention": false, "lookup_from_codebook": true, "act_fn": "silu",
        "sample_size": SIDE, "scaling_factor": 1.0, "force_upcast": false, "vq_embed_dim": null
    }))
    .expect("static VQ config")
}

/// Images `[B, 3, S, S]` in [0, 1].
pub fn batch_images(scenes: &[&Scene], dev: &Device) -> candle_core::Result<Tensor> {
    let mut data = Vec::with_capacity(scenes.len() * (SIDE * SIDE * 3) as usize);
    for s in scenes {
        data.extend(render(s, SIDE).into_raw());
    }
    let n = scenes.len();
    Tensor::from_vec(data, (n, SIDE as usize, SIDE as usize, 3), dev)?.to_dtype(DType::F32)?.affine(1.0 / 255.0, 0.0)?.permute((0, 3, 1, 2))?.contiguous()
}

/// Nearest code per latent cell: `[B, h*w]` indices, and the flat latents `[B*h*w, e]`.
pub fn nearest(vq: &VqModel, z: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
    let (b, e, h, w) = z.dims4()?;
    let flat = z.permute((0, 2, 3, 1))?.reshape((b * h * w, e))?;
    let cb = vq.codebook();
    let dist = flat.matmul(&cb.t()?)?.affine(-2.0, 0.0)?.broadcast_add(&cb.sqr()?.sum(1)?.unsqueeze(0)?)?;
    Ok((dist.argmin(D::Minus1)?, flat))
}

/// Code grids of a batch of scenes.
pub fn encode_scenes(vq: &VqModel, scenes: &[&Scene], dev: &Device) -> candle_core::Result<Vec<CodeGrid>> {
    let z = vq.encode_latent(&batch_images(scenes, dev)?)?;
    let (_, _, h, w) = z.dims4()?;
    let (idx, _) = nearest(vq, &z)?;
    let idx = idx.to_vec1::<u32>()?;
    Ok(idx.chunks(h * w).map(|c| CodeGrid { height: h, width: w, codes: c.to_vec() }).collect())
}

/// Size of the constant offsets `build` gives the first features.
const CARRIER: f32 = 4.0;

/// A fresh VQ-VAE in `varmap` (candle's default initialisation), with one
/// change: the encoder's and decoder's `conv_in` biases start at +-CARRIER in
/// alternate channels. Why: our images are mostly white, so GroupNorm's
/// per-image statistics swing with how much of the image the shapes cover,
/// and the decoder then cannot tell a small red shape from a faint large one
/// (training learned positions but not colours). Large image-independent
/// offsets in every group make the statistics nearly constant, so GroupNorm
/// behaves like a fixed affine map; single-batch autoencoder MSE after 100
/// steps went 0.0209 -> 0.0134 with it.
pub fn build(cfg: &VqConfig, varmap: &VarMap, dev: &Device) -> candle_core::Result<VqModel> {
    {
        let mut data = varmap.data().lock().map_err(|_| candle_core::Error::Msg("varmap lock".into()))?;
        if !data.contains_key("quantize.embedding.weight") {
            let cb = Tensor::randn(0f32, 0.5, (cfg.num_vq_embeddings, cfg.embed_dim()), dev)?;
            data.insert("quantize.embedding.weight".into(), Var::from_tensor(&cb)?);
        }
    }
    let fresh = varmap.all_vars().len() <= 1;
    let vq = VqModel::load(cfg, VarBuilder::from_varmap(varmap, DType::F32, dev))?;
    if fresh {
        let data = varmap.data().lock().map_err(|_| candle_core::Error::Msg("varmap lock".into()))?;
        for name in ["encoder.conv_in.bias", "decoder.conv_in.bias"] {
            if let Some(v) = data.get(name) {
                let n = v.as_tensor().dim(0)?;
                let vals: Vec<f32> = (0..n).map(|i| if i % 2 == 0 { CARRIER } else { -CARRIER }).collect();
                v.set(&Tensor::new(vals, dev)?)?;
            }
        }
    }
    Ok(vq)
}

/// Random `crop`-pixel squares of `images` `[B, 3, S, S]`, aligned to the
/// VQ grid. Convolutions do not care where a patch came from, and a 32 px
/// crop costs a quarter of the full image, so training takes 4x the steps in
/// the same time.
pub fn crops(images: &Tensor, crop: usize, factor: usize, rng: &mut StdRng) -> candle_core::Result<Tensor> {
    let (b, _, h, w) = images.dims4()?;
    if crop >= h.min(w) {
        return Ok(images.clone());
    }
    let mut parts = Vec::with_capacity(b);
    for i in 0..b {
        let oy = factor * rng.random_range(0..=(h - crop) / factor);
        let ox = factor * rng.random_range(0..=(w - crop) / factor);
        parts.push(images.get(i)?.narrow(1, oy, crop)?.narrow(2, ox, crop)?);
    }
    Tensor::stack(&parts, 0)?.contiguous()
}

/// Reconstruction loss: the mse in whatever colour basis `x` is in (the
/// whitened one in phases 1-3, where every colour direction counts alike;
/// adding the RGB mse at a comparable weight brought the colourless blobs
/// back within 600 steps, so it is left out).
fn mse(y: &Tensor, x: &Tensor) -> candle_core::Result<Tensor> {
    (y - x)?.sqr()?.mean_all()
}

/// The nearest codes of latents `z` `[B, e, h, w]`: (indices, flat latents
/// `[B*h*w, e]`, their codes' vectors `[B*h*w, e]`, those as `[B, e, h, w]`).
fn quantize(vq: &VqModel, z: &Tensor) -> candle_core::Result<(Tensor, Tensor, Tensor, Tensor)> {
    let (b, e, h, w) = z.dims4()?;
    let (idx, flat) = nearest(vq, z)?;
    let zq_flat = vq.codebook().index_select(&idx, 0)?;
    let zq = zq_flat.reshape((b, h, w, e))?.permute((0, 3, 1, 2))?;
    Ok((idx, flat, zq_flat, zq))
}

/// Scenes of one training step, rendered and cut into grid-aligned crops;
/// also the step's RNG, for whatever else the step draws.
pub fn training_batch(seed: u64, stage: u64, step: usize, batch: usize, crop: usize, factor: usize, dev: &Device) -> candle_core::Result<(Tensor, StdRng)> {
    let mut rng = step_rng(seed, stage, step);
    let scenes = scenes(&mut rng, batch);
    let images = batch_images(&scenes.iter().collect::<Vec<_>>(), dev)?;
    Ok((crops(&images, crop, factor, &mut rng)?, rng))
}

/// A plain autoencoder step (no quantisation): the first phase, so the latent
/// learns colour and shape before codes have to separate them.
pub fn ae_step(vq: &VqModel, opt: &mut candle_nn::AdamW, images: &Tensor) -> candle_core::Result<f32> {
    let z = vq.encode_latent(images)?;
    let rec = mse(&vq.decode_latent(&z)?, images)?;
    opt.backward_step(&rec)?;
    rec.to_scalar::<f32>()
}

/// Sets the codebook to k-means centres (k-means++ seeding, a few Lloyd
/// rounds) of the latents of `images`.
pub fn kmeans_codebook(vq: &VqModel, varmap: &VarMap, images: &Tensor, rng: &mut StdRng) -> candle_core::Result<()> {
    let z = vq.encode_latent(images)?.detach();
    let (b, e, h, w) = z.dims4()?;
    let pts = z.permute((0, 2, 3, 1))?.reshape((b * h * w, e))?.to_vec2::<f32>()?;
    let k = vq.config().num_vq_embeddings;
    let d2 = |a: &[f32], c: &[f32]| -> f32 { a.iter().zip(c).map(|(x, y)| (x - y) * (x - y)).sum() };
    let mut centres: Vec<Vec<f32>> = vec![pts[rng.random_range(0..pts.len())].clone()];
    let mut best: Vec<f32> = pts.iter().map(|p| d2(p, &centres[0])).collect();
    while centres.len() < k {
        let total: f32 = best.iter().sum();
        let mut r = rng.random_range(0.0..total.max(1e-12));
        let mut pick = pts.len() - 1;
        for (i, d) in best.iter().enumerate() {
            if r < *d {
                pick = i;
                break;
            }
            r -= d;
        }
        centres.push(pts[pick].clone());
        let c = centres.last().cloned().unwrap_or_default();
        for (i, p) in pts.iter().enumerate() {
            best[i] = best[i].min(d2(p, &c));
        }
    }
    for _ in 0..8 {
        let mut sums = vec![vec![0f32; e]; k];
        let mut counts = vec![0usize; k];
        for p in &pts {
            let (j, _) = centres.iter().enumerate().map(|(j, c)| (j, d2(p, c))).fold((0, f32::MAX), |a, x| if x.1 < a.1 { x } else { a });
            counts[j] += 1;
            sums[j].iter_mut().zip(p).for_each(|(s, v)| *s += v);
        }
        for j in 0..k {
            if counts[j] > 0 {
                centres[j] = sums[j].iter().map(|s| s / counts[j] as f32).collect();
            }
        }
    }
    let data = varmap.data().lock().map_err(|_| candle_core::Error::Msg("varmap lock".into()))?;
    if let Some(cb) = data.get("quantize.embedding.weight") {
        cb.set(&Tensor::new(centres, cb.device())?)?;
    }
    Ok(())
}

/// One optimisation step; returns the reconstruction mse. `used` counts code
/// assignments since the last restart; with `restart`, codes that none of
/// those steps used jump to latents of this batch and the counts start over.
pub fn step(vq: &VqModel, opt: &mut candle_nn::AdamW, varmap: &VarMap, images: &Tensor, restart_rng: &mut StdRng, used: &mut [usize], restart: bool) -> candle_core::Result<f32> {
    let z = vq.encode_latent(images)?;
    let (idx, flat, zq_flat, zq) = quantize(vq, &z)?;
    // straight-through: decoder gradients reach the encoder unchanged
    let st = (&z + (&zq - &z)?.detach())?;
    let recon = vq.decode_latent(&st)?;
    let rec = mse(&recon, images)?;
    let codebook_loss = (&zq_flat - flat.detach())?.sqr()?.mean_all()?;
    let commit = (&flat - zq_flat.detach())?.sqr()?.mean_all()?;
    let loss = ((&rec + codebook_loss)? + (commit * 0.25)?)?;
    opt.backward_step(&loss)?;
    for &i in &idx.to_vec1::<u32>()? {
        used[i as usize] += 1;
    }
    if restart {
        // unused codes jump to latents of this batch, so the codebook stays alive
        let data = varmap.data().lock().map_err(|_| candle_core::Error::Msg("varmap lock".into()))?;
        if let Some(cb) = data.get("quantize.embedding.weight") {
            let flat_v = flat.detach().to_vec2::<f32>()?;
            let mut rows = cb.as_tensor().to_vec2::<f32>()?;
            for (k, u) in used.iter().enumerate() {
                if *u == 0 {
                    let j = restart_rng.random_range(0..flat_v.len());
                    rows[k] = flat_v[j].iter().map(|v| v + restart_rng.random_range(-0.01..0.01)).collect();
                }
            }
            let t = Tensor::new(rows, cb.device())?;
            cb.set(&t)?;
        }
        used.iter_mut().for_each(|u| *u = 0);
    }
    rec.to_scalar::<f32>()
}

/// A decoder-only step in RGB: the codes come from the frozen encoder and
/// codebook. Returns the reconstruction mse.
pub fn decoder_step(vq: &VqModel, opt: &mut candle_nn::AdamW, images: &Tensor) -> candle_core::Result<f32> {
    let z = vq.encode_latent(images)?.detach();
    let (_, _, _, zq) = quantize(vq, &z)?;
    let rec = mse(&vq.decode_latent(&zq.detach())?, images)?;
    opt.backward_step(&rec)?;
    rec.to_scalar::<f32>()
}

pub fn scenes(rng: &mut StdRng, n: usize) -> Vec<Scene> {
    (0..n).map(|_| Scene::random(rng)).collect()
}

pub fn step_rng(seed: u64, stage: u64, step: usize) -> StdRng {
    StdRng::seed_from_u64(seed ^ (stage << 56) ^ (step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// A fixed linear change of colour basis that trains the VQ-VAE in
/// "whitened" colours. Why: our pixels are mostly white, so the second
/// moment of RGB is dominated by one direction (white vs shape) and the
/// directions that tell red from orange or purple from blue carry little
/// energy; gradient descent learns small directions last (training found
/// every shape's place long before any colour: brown blobs). In the whitened
/// basis every colour direction carries the same energy, in the input and
/// in the loss. No mean is subtracted, so black stays zero and the encoder's
/// zero padding means the same in both bases; `fold` writes the basis
/// change into `encoder.conv_in` and `decoder.conv_out`, after which the
/// model takes and gives plain RGB as the engine expects.
pub struct Whitening {
    /// RGB -> whitened
    pub p: [[f64; 3]; 3],
    /// whitened -> RGB
    pub p_inv: [[f64; 3]; 3],
}

impl Whitening {
    /// From the uncentred second moment of the pixels of `images` `[B, 3, H, W]`.
    pub fn from_images(images: &Tensor) -> candle_core::Result<Self> {
        let (b, c, h, w) = images.dims4()?;
        let x = images.permute((1, 0, 2, 3))?.reshape((c, b * h * w))?;
        let m = (x.matmul(&x.t()?)? / (b * h * w) as f64)?.to_dtype(DType::F64)?.to_vec2::<f64>()?;
        let mut a = [[0.0; 3]; 3];
        for i in 0..3 {
            for j in 0..3 {
                a[i][j] = m[i][j];
            }
        }
        let (vals, vecs) = jacobi_eigen(a);
        // floor the energies so that no direction is blown up more than 30x
        let top = vals.iter().cloned().fold(0.0, f64::max);
        let mut p = [[0.0; 3]; 3];
        let mut p_inv = [[0.0; 3]; 3];
        for k in 0..3 {
            let s = vals[k].max(top / 900.0).sqrt();
            for i in 0..3 {
                for j in 0..3 {
                    // P = D^-1/2 V^T, P^-1 = V D^1/2 (rows of P are scaled eigenvectors)
                    p[k][j] = vecs[j][k] / s;
                    p_inv[i][k] = vecs[i][k] * s;
                }
            }
        }
        Ok(Self { p, p_inv })
    }

    fn mat(m: &[[f64; 3]; 3], dev: &Device) -> candle_core::Result<Tensor> {
        Tensor::new(m.iter().flat_map(|r| r.iter().map(|&v| v as f32)).collect::<Vec<f32>>(), dev)?.reshape((3, 3))
    }

    /// `m` applied to the colour of every pixel of `x` `[B, 3, H, W]`.
    fn map(m: &[[f64; 3]; 3], x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        Self::mat(m, x.device())?.broadcast_matmul(&x.reshape((b, c, h * w))?)?.reshape((b, c, h, w))
    }

    /// `[B, 3, H, W]` RGB -> whitened.
    pub fn apply(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        Self::map(&self.p, x)
    }

    /// Rewrites the weights so that the model maps RGB to RGB: the
    /// encoder's first convolution reads RGB through P, the decoder's last
    /// one writes through P^-1.
    pub fn fold(&self, varmap: &VarMap) -> candle_core::Result<()> {
        let data = varmap.data().lock().map_err(|_| candle_core::Error::Msg("varmap lock".into()))?;
        let get = |n: &str| data.get(n).ok_or_else(|| candle_core::Error::Msg(format!("no {n}")));
        let dev = get("encoder.conv_in.weight")?.as_tensor().device().clone();
        let p = Self::mat(&self.p, &dev)?;
        let p_inv = Self::mat(&self.p_inv, &dev)?;
        // conv_in: W'[o, c, ky, kx] = sum_k W[o, k, ky, kx] P[k, c]
        let w = get("encoder.conv_in.weight")?;
        let t = w.as_tensor();
        let (o, c, kh, kw) = t.dims4()?;
        let folded = t.permute((0, 2, 3, 1))?.reshape((o * kh * kw, c))?.matmul(&p)?.reshape((o, kh, kw, c))?.permute((0, 3, 1, 2))?.contiguous()?;
        w.set(&folded)?;
        // conv_out: W'[c, i, ky, kx] = sum_k P^-1[c, k] W[k, i, ky, kx]; same for the bias
        let w = get("decoder.conv_out.weight")?;
        let t = w.as_tensor();
        let (o, i, kh, kw) = t.dims4()?;
        w.set(&p_inv.matmul(&t.reshape((o, i * kh * kw))?)?.reshape((o, i, kh, kw))?)?;
        let bias = get("decoder.conv_out.bias")?;
        bias.set(&p_inv.matmul(&bias.as_tensor().unsqueeze(1)?)?.squeeze(1)?)?;
        Ok(())
    }
}

/// Eigenvalues and eigenvectors (columns) of a symmetric 3x3 matrix, by cyclic Jacobi rotations.
fn jacobi_eigen(mut a: [[f64; 3]; 3]) -> ([f64; 3], [[f64; 3]; 3]) {
    let mut v = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    for _ in 0..50 {
        for (p, q) in [(0, 1), (0, 2), (1, 2)] {
            if a[p][q].abs() < 1e-15 {
                continue;
            }
            let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
            let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
            let t = if theta == 0.0 { 1.0 } else { t };
            let (c, s) = (1.0 / (t * t + 1.0).sqrt(), t / (t * t + 1.0).sqrt());
            for k in 0..3 {
                let (akp, akq) = (a[k][p], a[k][q]);
                a[k][p] = c * akp - s * akq;
                a[k][q] = s * akp + c * akq;
            }
            for k in 0..3 {
                let (apk, aqk) = (a[p][k], a[q][k]);
                a[p][k] = c * apk - s * aqk;
                a[q][k] = s * apk + c * aqk;
            }
            for row in v.iter_mut() {
                let (vp, vq) = (row[p], row[q]);
                row[p] = c * vp - s * vq;
                row[q] = s * vp + c * vq;
            }
        }
    }
    ([a[0][0], a[1][1], a[2][2]], v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitening_folds_into_the_model_exactly() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let cfg = config_with(&[8, 8]);
        let map = VarMap::new();
        let vq = build(&cfg, &map, &dev)?;
        let mut rng = StdRng::seed_from_u64(3);
        let sc = scenes(&mut rng, 4);
        let x = batch_images(&sc.iter().collect::<Vec<_>>(), &dev)?;
        let wh = Whitening::from_images(&x)?;
        // whitening decorrelates: the second moment of P x is diagonal, with ones
        // except where the 30x floor held a direction back
        let xw = wh.apply(&x)?;
        let n = (x.elem_count() / 3) as f64;
        let m = xw.permute((1, 0, 2, 3))?.reshape((3, n as usize))?;
        let m = (m.matmul(&m.t()?)? / n)?.to_vec2::<f32>()?;
        for i in 0..3 {
            for j in 0..3 {
                let ok = if i == j { m[i][j] > 0.1 && m[i][j] < 1.001 } else { m[i][j].abs() < 1e-3 };
                assert!(ok, "{m:?}");
            }
        }
        // the unfolded model on whitened input, mapped back, equals the folded model on RGB
        let before = Whitening::map(&wh.p_inv, &vq.decode_latent(&vq.encode_latent(&xw)?)?)?;
        wh.fold(&map)?;
        let vq = VqModel::load(&cfg, VarBuilder::from_varmap(&map, DType::F32, &dev))?;
        let after = vq.decode_latent(&vq.encode_latent(&x)?)?;
        let diff = (before - after)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-3, "max diff {diff}");
        Ok(())
    }
}
