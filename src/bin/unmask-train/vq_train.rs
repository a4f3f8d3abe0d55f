//! VQ-VAE helpers for training: the config, rendered batches,
//! nearest-code encoding, and the per-step RNG. (The recipe itself is in
//! `cell_vq.rs`.)

use candle_core::{DType, Device, Tensor, D};
use rand::rngs::StdRng;
use rand::SeedableRng;
use unmask::model::{CodeGrid, VqConfig, VqModel};
use unmask::shapes::{render::render, world::Scene};

/// Image side: 48 px puts each cell of the 3 x 3 layout on exactly one code
/// (16 px, five VQ levels), see `cell_vq.rs`.
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

pub fn step_rng(seed: u64, stage: u64, step: usize) -> StdRng {
    StdRng::seed_from_u64(seed ^ (stage << 56) ^ (step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}
