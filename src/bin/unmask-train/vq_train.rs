//! VQ-VAE helpers for training: rendered batches, encoding a scene, and the
//! per-step RNG. (The recipe itself is in
//! `cell_vq.rs`.)

use candle_core::{DType, Device, Tensor};
use image::RgbImage;
use rand::rngs::StdRng;
use rand::SeedableRng;
use unmask::model::{CodeGrid, VqModel};
use unmask::shapes::{render::render, world::Scene};

/// Image side: 48 px puts each cell of the 3 x 3 layout on exactly one code
/// (16 px, five VQ levels), see `cell_vq.rs`.
pub const SIDE: u32 = 48;

/// A scene drawn at the training size.
pub fn render_scene(scene: &Scene) -> RgbImage {
    render(scene, SIDE)
}

/// Images `[B, 3, S, S]` in [0, 1].
pub fn images_tensor(images: &[RgbImage], dev: &Device) -> candle_core::Result<Tensor> {
    let mut data = Vec::with_capacity(images.len() * (SIDE * SIDE * 3) as usize);
    for img in images {
        data.extend_from_slice(img.as_raw());
    }
    Tensor::from_vec(data, (images.len(), SIDE as usize, SIDE as usize, 3), dev)?.to_dtype(DType::F32)?.affine(1.0 / 255.0, 0.0)?.permute((0, 3, 1, 2))?.contiguous()
}

/// A scene's code grid, through the engine's own encoder path.
pub fn encode_scene(vq: &VqModel, scene: &Scene) -> unmask::Result<CodeGrid> {
    vq.encode(&unmask::image_io::to_rgb(&render_scene(scene)))
}

pub fn step_rng(seed: u64, stage: u64, step: usize) -> StdRng {
    StdRng::seed_from_u64(seed ^ (stage << 56) ^ (step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}
