//! VQ-VAE training on rendered scenes: reconstruction + codebook and
//! commitment losses with a straight-through estimator, and restarts of codes
//! that stop being used.

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{Optimizer, VarBuilder, VarMap};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use unmask::model::{CodeGrid, VqConfig, VqModel};
use unmask::shapes::{render::render, world::Scene};

pub const SIDE: u32 = 64;

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

pub fn build(cfg: &VqConfig, varmap: &VarMap, dev: &Device) -> candle_core::Result<VqModel> {
    {
        let mut data = varmap.data().lock().map_err(|_| candle_core::Error::Msg("varmap lock".into()))?;
        if !data.contains_key("quantize.embedding.weight") {
            let cb = Tensor::randn(0f32, 0.5, (cfg.num_vq_embeddings, cfg.embed_dim()), dev)?;
            data.insert("quantize.embedding.weight".into(), Var::from_tensor(&cb)?);
        }
    }
    VqModel::load(cfg, VarBuilder::from_varmap(varmap, DType::F32, dev))
}

/// A plain autoencoder step (no quantisation): the first phase, so the latent
/// learns colour and shape before codes have to separate them.
pub fn ae_step(vq: &VqModel, opt: &mut candle_nn::AdamW, images: &Tensor) -> candle_core::Result<f32> {
    let z = vq.encode_latent(images)?;
    let rec = (vq.decode_latent(&z)? - images)?.sqr()?.mean_all()?;
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

/// One optimisation step; returns (reconstruction mse, codes used in the batch).
pub fn step(vq: &VqModel, opt: &mut candle_nn::AdamW, varmap: &VarMap, images: &Tensor, restart_rng: &mut StdRng, restart: bool) -> candle_core::Result<(f32, usize)> {
    let z = vq.encode_latent(images)?;
    let (b, e, h, w) = z.dims4()?;
    let (idx, flat) = nearest(vq, &z)?;
    let zq_flat = vq.codebook().index_select(&idx, 0)?;
    let zq = zq_flat.reshape((b, h, w, e))?.permute((0, 3, 1, 2))?;
    // straight-through: decoder gradients reach the encoder unchanged
    let st = (&z + (&zq - &z)?.detach())?;
    let recon = vq.decode_latent(&st)?;
    let rec = (recon - images)?.sqr()?.mean_all()?;
    let codebook_loss = (&zq_flat - flat.detach())?.sqr()?.mean_all()?;
    let commit = (&flat - zq_flat.detach())?.sqr()?.mean_all()?;
    let loss = ((&rec + codebook_loss)? + (commit * 0.25)?)?;
    opt.backward_step(&loss)?;
    let ids = idx.to_vec1::<u32>()?;
    let mut used = vec![false; vq.config().num_vq_embeddings];
    for &i in &ids {
        used[i as usize] = true;
    }
    if restart {
        // unused codes jump to latents of this batch, so the codebook stays alive
        let data = varmap.data().lock().map_err(|_| candle_core::Error::Msg("varmap lock".into()))?;
        if let Some(cb) = data.get("quantize.embedding.weight") {
            let flat_v = flat.detach().to_vec2::<f32>()?;
            let mut rows = cb.as_tensor().to_vec2::<f32>()?;
            for (k, u) in used.iter().enumerate() {
                if !u {
                    let j = restart_rng.random_range(0..flat_v.len());
                    rows[k] = flat_v[j].iter().map(|v| v + restart_rng.random_range(-0.01..0.01)).collect();
                }
            }
            let t = Tensor::new(rows, cb.device())?;
            cb.set(&t)?;
        }
    }
    Ok((rec.to_scalar::<f32>()?, used.iter().filter(|u| **u).count()))
}

pub fn scenes(rng: &mut StdRng, n: usize) -> Vec<Scene> {
    (0..n).map(|_| Scene::random(rng)).collect()
}

pub fn step_rng(seed: u64, stage: u64, step: usize) -> StdRng {
    StdRng::seed_from_u64(seed ^ (stage << 56) ^ (step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}
