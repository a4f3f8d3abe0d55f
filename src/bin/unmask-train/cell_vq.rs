//! The VQ-VAE as a designed code: one code per layout cell, naming what the
//! cell holds (nothing, or one of the 48 size x colour x shape objects).
//!
//! Why: the world puts every object whole inside one cell of a 3 x 3 layout,
//! so at 48 px and factor 16 each code covers exactly one cell and 49 codes
//! describe every scene exactly. The earlier recipe let the codes emerge
//! unsupervised (6 x 6 codes of 8 px); they depended on their neighbours, the
//! transformer could not predict them from the caption, and the VQ-VAE itself
//! read back only 42% of scenes (docs/experiments/lm-binding.md). Here the
//! codebook is fixed and spells out its meaning (one-hot colour, shape, size,
//! "empty"); the encoder learns to put each cell on its code and the decoder
//! learns to draw each code, both supervised by the scene that was rendered.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Optimizer, VarBuilder, VarMap};
use rand::rngs::StdRng;
use rand::Rng;
use unmask::model::{CodeGrid, VqConfig, VqModel};
use unmask::shapes::world::{random_object, Object, Pos, Scene, COLORS, SHAPES, SIZES};

use crate::vq_train;

/// Codes in the book during training: `USED`, and spare ones far from every
/// target, so that the encoder never picks them (the shipped bundle was
/// trained so; the written bundle keeps the used ones only).
pub const CODES: usize = 64;
/// Codes a scene can have: empty, or one of 6 x 4 x 2 objects.
pub const USED: usize = 1 + COLORS.len() * SHAPES.len() * SIZES.len();
/// Dimensions of a code vector: colour 6, shape 4, size 2, empty 1, spare 3.
pub const DIM: usize = 16;
const EMPTY_DIM: usize = 12;

/// The code of a cell holding `obj` (0 for an empty cell).
pub fn code_of(obj: Option<&Object>) -> u32 {
    match obj {
        None => 0,
        Some(o) => {
            let c = COLORS.iter().position(|&x| x == o.color).unwrap_or(0);
            let s = SHAPES.iter().position(|&x| x == o.shape).unwrap_or(0);
            let z = SIZES.iter().position(|&x| x == o.size).unwrap_or(0);
            1 + ((c * SHAPES.len() + s) * SIZES.len() + z) as u32
        }
    }
}

/// The 3 x 3 code grid of a scene, row-major (what the encoder is trained to give).
pub fn scene_grid(scene: &Scene) -> CodeGrid {
    let codes = Pos::ALL.iter().map(|&p| code_of(scene.objects.iter().find(|o| o.pos == p))).collect();
    CodeGrid { height: 3, width: 3, codes }
}

/// The designed codebook `[CODES, DIM]`.
pub fn codebook_rows() -> Vec<Vec<f32>> {
    let mut rows = vec![vec![0f32; DIM]; CODES];
    rows[0][EMPTY_DIM] = 1.0;
    for (c, _) in COLORS.iter().enumerate() {
        for (s, _) in SHAPES.iter().enumerate() {
            for (z, _) in SIZES.iter().enumerate() {
                let k = 1 + (c * SHAPES.len() + s) * SIZES.len() + z;
                rows[k][c] = 1.0;
                rows[k][COLORS.len() + s] = 1.0;
                rows[k][COLORS.len() + SHAPES.len() + z] = 1.0;
            }
        }
    }
    // unused codes: distinct points at least 3 units out along the spare dimensions
    for (i, row) in rows.iter_mut().enumerate().skip(USED) {
        row[EMPTY_DIM + 1 + i % 3] = 3.0 + (i / 3) as f32;
    }
    rows
}

/// The VQ config: one level per entry of `channels` (five: factor 16), the
/// designed codebook's size and width.
pub fn config(channels: &[usize]) -> VqConfig {
    serde_json::from_value(config_json(channels, CODES)).expect("static VQ config")
}

/// diffusers' `config.json` of the VQ-VAE with `codes` codebook rows (the
/// training config, and the written bundle's). `norm_num_groups` is 4 so
/// that it divides every channel count from 8 up.
pub fn config_json(channels: &[usize], codes: usize) -> serde_json::Value {
    let n = channels.len();
    serde_json::json!({
        "_class_name": "VQModel",
        "block_out_channels": channels,
        "down_block_types": vec!["DownEncoderBlock2D"; n],
        "up_block_types": vec!["UpDecoderBlock2D"; n],
        "in_channels": 3, "out_channels": 3, "latent_channels": DIM, "layers_per_block": 1,
        "num_vq_embeddings": codes, "norm_num_groups": 4, "norm_type": "group",
        "mid_block_add_attention": false, "lookup_from_codebook": true, "act_fn": "silu",
        "sample_size": vq_train::SIDE, "scaling_factor": 1.0, "force_upcast": false, "vq_embed_dim": null
    })
}

/// Size of the constant offsets `build` gives the first features.
const CARRIER: f32 = 4.0;

/// A fresh VQ-VAE in `varmap`: the designed codebook, candle's default
/// initialisation elsewhere drawn from `rng` (`init::reseed_convs`), with one change: the encoder's and decoder's `conv_in` biases start at +-CARRIER in
/// alternate channels. Why: our images are mostly white, so GroupNorm's
/// per-image statistics swing with how much of the image the shapes cover,
/// and the decoder then cannot tell a small red shape from a faint large one
/// (training learned positions but not colours). Large image-independent
/// offsets in every group make the statistics nearly constant, so GroupNorm
/// behaves like a fixed affine map; single-batch autoencoder MSE after 100
/// steps went 0.0209 -> 0.0134 with it (earlier, unsupervised recipe).
pub fn build(cfg: &VqConfig, varmap: &VarMap, rng: &mut StdRng, dev: &Device) -> candle_core::Result<VqModel> {
    {
        let mut data = crate::varmap_data(varmap)?;
        let cb = Tensor::new(codebook_rows(), dev)?;
        data.insert("quantize.embedding.weight".into(), Var::from_tensor(&cb)?);
    }
    let fresh = varmap.all_vars().len() <= 1;
    let vq = VqModel::load(cfg, VarBuilder::from_varmap(varmap, DType::F32, dev))?;
    if fresh {
        crate::init::reseed_convs(varmap, rng)?;
        let data = crate::varmap_data(varmap)?;
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

/// The variables whose names `keep` accepts.
fn vars_where(varmap: &VarMap, keep: impl Fn(&str) -> bool) -> candle_core::Result<Vec<Var>> {
    let data = crate::varmap_data(varmap)?;
    Ok(data.iter().filter(|(k, _)| keep(k)).map(|(_, v)| v.clone()).collect())
}

/// Everything but the codebook, which stays as designed.
pub fn trainable(varmap: &VarMap) -> candle_core::Result<Vec<Var>> {
    vars_where(varmap, |k| k != "quantize.embedding.weight")
}

/// Training scenes: half drawn as the world draws them (1-3 objects), half
/// with every cell filled at even odds, so that every code is seen next to
/// every kind of neighbour.
pub fn training_scenes(rng: &mut StdRng, n: usize) -> Vec<Scene> {
    (0..n)
        .map(|i| {
            if i % 2 == 0 {
                return Scene::random(rng);
            }
            let mut objects: Vec<Object> = Vec::new();
            for p in Pos::ALL {
                if rng.random_bool(0.5) {
                    let mut o = random_object(rng, &[]);
                    o.pos = p;
                    objects.push(o);
                }
            }
            Scene { objects }
        })
        .collect()
}

/// The codebook vectors of the scenes' grids, `[B, DIM, 3, 3]`.
pub fn target_latents(vq: &VqModel, scenes: &[Scene]) -> candle_core::Result<Tensor> {
    let codes: Vec<u32> = scenes.iter().flat_map(|s| scene_grid(s).codes).collect();
    let idx = Tensor::new(codes, vq.codebook().device())?;
    let z = vq.codebook().index_select(&idx, 0)?;
    z.reshape((scenes.len(), 3, 3, DIM))?.permute((0, 3, 1, 2))?.contiguous()
}

/// One step: the encoder regresses each cell onto its code's vector, the
/// decoder draws the image from the exact code vectors. Returns (encoder
/// mse, decoder RGB mse).
pub fn step(vq: &VqModel, opt: &mut candle_nn::AdamW, scenes: &[Scene], dev: &Device) -> candle_core::Result<(f32, f32)> {
    let rendered: Vec<_> = scenes.iter().map(vq_train::render_scene).collect();
    let images = vq_train::images_tensor(&rendered, dev)?;
    let target = target_latents(vq, scenes)?;
    let enc = (vq.encode_latent(&images)? - &target)?.sqr()?.mean_all()?;
    let dec = (vq.decode_latent(&target)? - &images)?.sqr()?.mean_all()?;
    opt.backward_step(&(&enc + &dec)?)?;
    Ok((enc.to_scalar::<f32>()?, dec.to_scalar::<f32>()?))
}

/// The encoder's weights (the robust phase trains these alone: the decoder
/// keeps drawing the canonical scene of each code).
pub fn encoder_vars(varmap: &VarMap) -> candle_core::Result<Vec<Var>> {
    vars_where(varmap, |k| k.starts_with("encoder.") || k.starts_with("quant_conv."))
}

/// One encoder-only step on drawings that vary as real ones do (`vary.rs`;
/// one in five drawn by the world's renderer, which must stay exact).
/// Returns the encoder mse.
///
/// Why a phase of its own, after the others: trained from the start on
/// varied drawings, 1400 joint steps left the encoder wrong on 78 of 200
/// held-out scenes (canonical ones included); the encoder trained on the
/// canonical scenes first and then on varied ones keeps the canonical codes
/// and learns the variation in a few hundred steps.
pub fn encoder_step(vq: &VqModel, opt: &mut candle_nn::AdamW, scenes: &[Scene], rng: &mut StdRng, dev: &Device) -> candle_core::Result<f32> {
    let inputs: Vec<_> = scenes
        .iter()
        .map(|s| if rng.random_bool(0.2) { vq_train::render_scene(s) } else { crate::vary::render_varied(s, vq_train::SIDE, rng) })
        .collect();
    let target = target_latents(vq, scenes)?;
    let enc = (vq.encode_latent(&vq_train::images_tensor(&inputs, dev)?)? - &target)?.sqr()?.mean_all()?;
    opt.backward_step(&enc)?;
    enc.to_scalar::<f32>()
}

/// Extra loss weight of pixels on a shape's edge in the decoder polish.
const EDGE_WEIGHT: f32 = 9.0;

/// Per-pixel loss weights `[B, 1, S, S]` of rendered scenes: 1, plus `EDGE_WEIGHT` where a
/// pixel differs from one of its 4 neighbours. Why: after the joint phase
/// only small stars and small triangles failed to read back (51 of 51
/// misread objects in 200 scenes); their edges are a few pixels, which a
/// plain mean over the image weighs next to nothing.
pub fn edge_weights(images: &[image::RgbImage], dev: &Device) -> candle_core::Result<Tensor> {
    let side = vq_train::SIDE;
    let mut w = Vec::with_capacity(images.len() * (side * side) as usize);
    for img in images {
        for y in 0..side {
            for x in 0..side {
                let p = img.get_pixel(x, y);
                let edge = [(-1i32, 0i32), (1, 0), (0, -1), (0, 1)].iter().any(|(dx, dy)| {
                    let (nx, ny) = (x as i32 + dx, y as i32 + dy);
                    nx >= 0 && ny >= 0 && nx < side as i32 && ny < side as i32 && img.get_pixel(nx as u32, ny as u32) != p
                });
                w.push(if edge { 1.0 + EDGE_WEIGHT } else { 1.0 });
            }
        }
    }
    Tensor::from_vec(w, (images.len(), 1, side as usize, side as usize), dev)
}

/// The decoder's weights (the polish trains these alone, so every code keeps
/// the encoder's and the transformer's meaning).
pub fn decoder_vars(varmap: &VarMap) -> candle_core::Result<Vec<Var>> {
    vars_where(varmap, |k| k.starts_with("decoder.") || k.starts_with("post_quant_conv."))
}

/// One decoder-only step with edge-weighted RGB mse; returns the plain mse.
pub fn decoder_step(vq: &VqModel, opt: &mut candle_nn::AdamW, scenes: &[Scene], dev: &Device) -> candle_core::Result<f32> {
    let rendered: Vec<_> = scenes.iter().map(vq_train::render_scene).collect();
    let images = vq_train::images_tensor(&rendered, dev)?;
    let sq = (vq.decode_latent(&target_latents(vq, scenes)?)? - &images)?.sqr()?;
    let weighted = sq.broadcast_mul(&edge_weights(&rendered, dev)?)?.mean_all()?;
    opt.backward_step(&weighted)?;
    sq.mean_all()?.to_scalar::<f32>()
}

/// Held-out scenes whose encoder codes differ from the designed grid, out of
/// `n`: (drawn by the world, by the foreign renderer of `unmask eval`).
pub fn encoder_errors(vq: &VqModel, rng: &mut StdRng, n: usize) -> unmask::Result<(usize, usize)> {
    let (mut own, mut foreign) = (0, 0);
    for s in training_scenes(rng, n) {
        own += usize::from(vq_train::encode_scene(vq, &s)? != scene_grid(&s));
        let img = unmask::shapes::foreign::render_foreign(&s, vq_train::SIDE, rng);
        foreign += usize::from(vq.encode(&unmask::image_io::to_rgb(&img))? != scene_grid(&s));
    }
    Ok((own, foreign))
}

#[cfg(test)]
mod tests {
    use super::*;
    use unmask::shapes::world::{Color, Shape, Size};

    #[test]
    fn every_cell_content_has_its_own_code() {
        let rows = codebook_rows();
        let mut seen = std::collections::HashSet::new();
        seen.insert(code_of(None));
        for &color in &COLORS {
            for &shape in &SHAPES {
                for &size in &SIZES {
                    let k = code_of(Some(&Object { shape, color, size, pos: Pos(4) }));
                    assert!(seen.insert(k), "code {k} used twice");
                    assert_eq!(rows[k as usize].iter().sum::<f32>(), 3.0);
                }
            }
        }
        assert_eq!(seen.len(), USED);
        // every pair of book rows is apart, used ones by at least sqrt(2)
        for i in 0..CODES {
            for j in 0..i {
                let d: f32 = rows[i].iter().zip(&rows[j]).map(|(a, b)| (a - b) * (a - b)).sum();
                assert!(d >= 1.0, "codes {i} and {j} at squared distance {d}");
            }
        }
    }

    #[test]
    fn a_scene_grid_holds_each_object_at_its_cell() {
        let o = Object { shape: Shape::Star, color: Color::Blue, size: Size::Small, pos: Pos(5) };
        let g = scene_grid(&Scene { objects: vec![o] });
        assert_eq!((g.height, g.width), (3, 3));
        for (i, &c) in g.codes.iter().enumerate() {
            assert_eq!(c, if i == 5 { code_of(Some(&o)) } else { 0 }, "cell {i}");
        }
    }

    #[test]
    fn edge_weights_mark_the_outline_only() -> candle_core::Result<()> {
        let o = Object { shape: Shape::Square, color: Color::Red, size: Size::Large, pos: Pos(4) };
        let w = edge_weights(&[vq_train::render_scene(&Scene { objects: vec![o] })], &Device::Cpu)?.flatten_all()?.to_vec1::<f32>()?;
        let side = vq_train::SIDE as usize;
        let heavy: Vec<(usize, usize)> = w.iter().enumerate().filter(|(_, &v)| v > 1.0).map(|(i, _)| (i % side, i / side)).collect();
        // a square's outline on both sides of its edge, all inside the centre cell
        assert!(heavy.len() > 40, "{} edge pixels", heavy.len());
        assert!(heavy.iter().all(|&(x, y)| (16..32).contains(&x) && (16..32).contains(&y)), "{heavy:?}");
        Ok(())
    }
}
