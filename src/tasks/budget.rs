//! Each task's request checked against the memory budget before any work
//! (see [`crate::limits`] for the estimates). `label` names the request in
//! the front end's words: the CLI passes its flags, the worker plain words.

use crate::crop::WorkArea;
use crate::engine::Engine;
use crate::error::Result;
use crate::limits::{self, ImageRequest, Memory};
use crate::sampler::{ImageLayout, ImageSettings, TextLayout};
use crate::sampler::layout::MAX_PROMPT_TOKENS;

fn dtype_bytes(engine: &Engine) -> u64 {
    if engine.info.compute_dtype == "f32" {
        4
    } else {
        2
    }
}

/// The memory the engine's tensors live in, and the budget there now.
fn memory(engine: &Engine) -> (Memory, u64) {
    let mem = Memory::of(engine.llada.device());
    (mem, limits::budget(mem))
}

fn attention(engine: &Engine) -> u64 {
    engine.llada.attention_bytes() as u64
}

fn branches(layout: &ImageLayout, s: &ImageSettings) -> usize {
    1 + usize::from(layout.text_free.is_some() && s.cfg > 0.0) + usize::from(layout.image_free.is_some() && s.cfg_img > 0.0)
}

fn image_need(engine: &Engine, prefix: usize, gh: usize, gw: usize, branches: usize, cache: bool) -> u64 {
    let r = ImageRequest { prefix, grid_h: gh, grid_w: gw, branches, cache };
    limits::image_bytes(&engine.bundle.config, &engine.bundle.vq_config, &r, engine.info.codebook_size, dtype_bytes(engine), attention(engine))
}

/// An image task's layout (text-to-image, inpaint crop, edit).
pub fn check_image(engine: &Engine, layout: &ImageLayout, s: &ImageSettings, label: &str) -> Result<()> {
    let prefix = [Some(&layout.cond), layout.text_free.as_ref(), layout.image_free.as_ref()]
        .into_iter()
        .flatten()
        .map(|p| p.len())
        .max()
        .unwrap_or(0);
    let b = branches(layout, s);
    let need = image_need(engine, prefix, layout.height, layout.width, b, s.cache.is_some());
    let f = engine.vq.factor();
    // an edit's prefix holds the image too: the square is searched with its share
    let image_in_prefix = prefix > layout.height * (layout.width + 1);
    let (mem, budget) = memory(engine);
    limits::check(mem, budget, label, need, |budget| {
        let fits = |side: usize| {
            let g = side / f;
            let extra = if image_in_prefix { g * (g + 1) } else { 0 };
            image_need(engine, prefix.min(MAX_PROMPT_TOKENS + 64) + extra, g, g, b, s.cache.is_some()) <= budget
        };
        match limits::largest_fitting(f, 16384, f, fits) {
            Some(side) => format!("the largest square that fits is {side}x{side}"),
            None => "not even one cell fits: free memory or raise UNMASK_MEMORY_LIMIT".into(),
        }
    })
}

/// A text-to-image request, before anything runs (the CLI names its flags in `label`).
pub fn check_generate(engine: &Engine, prompt: &str, width: usize, height: usize, s: &ImageSettings, label: &str) -> Result<()> {
    let f = engine.vq.factor();
    let cells = (width / f) * (height / f);
    if cells > crate::sampler::layout::MAX_CELLS {
        let side = ((crate::sampler::layout::MAX_CELLS as f64).sqrt() as usize) * f;
        return Err(crate::error::Error::invalid(format!(
            "{label} is {} x {} = {cells} token cells, more than the {} a layout may hold: the largest square is {side}x{side}",
            height / f,
            width / f,
            crate::sampler::layout::MAX_CELLS
        )));
    }
    let p = crate::sampler::Prompter::new(&engine.tokenizer, engine.special);
    let layout = p.text_to_image(prompt, height / f, width / f)?;
    check_image(engine, &layout, s, label)
}

/// An understanding request, before the image is encoded: the answer
/// positions with the question and the image at its fitted size.
pub fn check_ask(engine: &Engine, question: &str, image: &image::RgbImage, fit: super::FitMode, gen_length: usize, label: &str) -> Result<()> {
    let f = engine.vq.factor();
    let (w, h) = super::fit_size(image.width() as usize, image.height() as usize, fit, f, super::bucket(&engine.info, super::ASK_AREA))?;
    check_vq(engine, w, h, &format!("reading a {w}x{h} image"))?;
    let p = crate::sampler::Prompter::new(&engine.tokenizer, engine.special);
    let prompt = p.prompt(crate::sampler::layout::MMU_SYSTEM, question)?;
    let image_tokens = (h / f) * (w / f + 1) + 2;
    let seq = vec![0u32; prompt.len() + image_tokens + 1 + gen_length + 1];
    let layout = TextLayout { answer_start: seq.len() - gen_length - 1, seq, gen_length };
    check_answer(engine, &layout, label)
}

/// An understanding layout: the question, the image and `gen_length` answer positions.
pub fn check_answer(engine: &Engine, layout: &TextLayout, label: &str) -> Result<()> {
    let cfg = &engine.bundle.config;
    let fixed = layout.seq.len() - layout.gen_length;
    let need = limits::forward_bytes(cfg, layout.seq.len(), dtype_bytes(engine), attention(engine));
    let (mem, budget) = memory(engine);
    limits::check(mem, budget, label, need, |budget| {
        let fits = |g: usize| limits::forward_bytes(cfg, fixed + g, dtype_bytes(engine), attention(engine)) <= budget;
        match limits::largest_fitting(1, MAX_ANSWER, 1, fits) {
            Some(g) => format!("the longest answer that fits is {g} positions"),
            None => "the image alone does not fit: use a smaller image".into(),
        }
    })
}

/// The most answer positions any request may ask for (the reference uses 64-1024).
pub const MAX_ANSWER: usize = 4096;

/// A VQ encode or decode of a `w x h` image.
pub fn check_vq(engine: &Engine, w: usize, h: usize, label: &str) -> Result<()> {
    check_vq_config(&engine.bundle.vq_config, engine.llada.device(), w, h, label)
}

/// As [`check_vq`], for callers that load only the VQ-VAE (on `device`).
pub fn check_vq_config(vq: &crate::model::VqConfig, device: &candle_core::Device, w: usize, h: usize, label: &str) -> Result<()> {
    let f = vq.factor();
    let mem = Memory::of(device);
    limits::check(mem, limits::budget(mem), label, limits::vq_bytes(vq, w, h), |budget| {
        match largest_of_shape(w, h, f, |tw, th| limits::vq_bytes(vq, tw, th) <= budget) {
            Some((tw, th)) => format!("the largest of this shape that fits is about {tw}x{th} px"),
            None => "not even one cell fits: free memory or raise UNMASK_MEMORY_LIMIT".into(),
        }
    })
}

/// The largest `tw x th` of about `w : h`'s shape, both sides whole cells of
/// `f` within `1..=MAX_SIDE` px, for which `fits` holds. The short side is
/// searched, so a very long strip is never suggested as "N x 0".
fn largest_of_shape(w: usize, h: usize, f: usize, fits: impl Fn(usize, usize) -> bool) -> Option<(usize, usize)> {
    let max = crate::image_io::MAX_SIDE as usize / f * f;
    let (long, short) = (w.max(h).max(1), h.min(w).max(1));
    let size = |s: usize| {
        let l = ((s as f64 * long as f64 / short as f64) as usize / f * f).clamp(f, max);
        if w >= h {
            (l, s)
        } else {
            (s, l)
        }
    };
    let side = limits::largest_fitting(f, max, f, |s| {
        let (a, b) = size(s);
        fits(a, b)
    })?;
    Some(size(side))
}

/// Host bytes per pixel of the whole image that a retouch holds at once: the
/// photo and its result (3 + 3), the mask (1), a crop's source and its
/// scaled-back result with their masks (3 + 3 + 1 + 1 when one crop covers
/// the whole canvas, as an outpaint's border does) and the encoded PNG (up to
/// 3 more). Measured on the embedded model (whole process, peak resident):
/// a 48x48 image outpainted to 4048x4048 329 MB (20 B/px), to 11038x11038
/// 2.29 GB (18.8 B/px; what the refusal of 16048x16048 under a 3 GB
/// address-space limit suggests, and it ran there).
pub const CANVAS_BYTES_PER_PIXEL: u64 = 20;

/// The host memory a retouch of a `w x h` canvas needs, besides the model's runs.
pub fn canvas_bytes(w: u64, h: u64) -> u64 {
    w.saturating_mul(h).saturating_mul(CANVAS_BYTES_PER_PIXEL)
}

/// A retouch of a `w x h` px canvas whose image and mask are loaded already
/// (4 bytes a pixel of [`CANVAS_BYTES_PER_PIXEL`]): the rest against the
/// host's budget before any work. The canvas always lives on the host,
/// whatever device runs the model.
pub fn check_retouch(w: u64, h: u64, label: &str) -> Result<()> {
    let mem = Memory::Host;
    let rest = |w: u64, h: u64| canvas_bytes(w, h) / CANVAS_BYTES_PER_PIXEL * (CANVAS_BYTES_PER_PIXEL - 4);
    limits::check(mem, limits::budget(mem), label, rest(w, h), |budget| {
        let px = budget / (CANVAS_BYTES_PER_PIXEL - 4);
        let scale = (px as f64 / (w.max(1) * h.max(1)) as f64).sqrt().min(1.0);
        let (tw, th) = ((w as f64 * scale) as u64, (h as f64 * scale) as u64);
        if tw == 0 || th == 0 {
            "free memory or raise UNMASK_MEMORY_LIMIT".into()
        } else {
            format!("the largest of this shape that fits is about {tw}x{th} px")
        }
    })
}

/// `n` region masks of a `w x h` image (a byte a pixel each) against the
/// host's budget, before they are read: a front end calls this with the
/// number of masks it was given.
pub fn check_masks(n: usize, w: u64, h: u64, label: &str) -> Result<()> {
    let mem = Memory::Host;
    let bytes = (n as u64).saturating_mul(w.saturating_mul(h));
    limits::check(mem, limits::budget(mem), label, bytes, |budget| {
        let fit = budget / w.saturating_mul(h).max(1);
        if fit == 0 {
            "free memory or raise UNMASK_MEMORY_LIMIT".into()
        } else {
            format!("at most {fit} region masks of this size fit: merge regions or run them in parts")
        }
    })
}

/// An outpaint's canvas: `w x h` grown by the borders, refused before it is
/// allocated with the largest borders (same proportions) that fit.
pub fn check_extended(w: u32, h: u32, left: u32, right: u32, top: u32, bottom: u32) -> Result<()> {
    check_extended_in(limits::budget(Memory::Host), w, h, left, right, top, bottom)
}

fn check_extended_in(budget: u64, w: u32, h: u32, left: u32, right: u32, top: u32, bottom: u32) -> Result<()> {
    let size = |t: f64| {
        let b = |v: u32| (v as f64 * t) as u64;
        (w as u64 + b(left) + b(right), h as u64 + b(top) + b(bottom))
    };
    let (nw, nh) = size(1.0);
    let mem = Memory::Host;
    let label = format!("a {w}x{h} image extended to {nw}x{nh} px");
    limits::check(mem, budget, &label, canvas_bytes(nw, nh), |budget| {
        // the largest fraction of every border that fits, by bisection
        let fits = |t: f64| {
            let (a, b) = size(t);
            canvas_bytes(a, b) <= budget
        };
        if !fits(0.0) {
            return "not even the image itself fits: free memory or raise UNMASK_MEMORY_LIMIT".into();
        }
        let (mut lo, mut hi) = (0.0, 1.0);
        for _ in 0..40 {
            let m = (lo + hi) / 2.0;
            if fits(m) {
                lo = m;
            } else {
                hi = m;
            }
        }
        let b = |v: u32| (v as f64 * lo) as u64;
        let (a, c) = size(lo);
        format!(
            "add at most left {}, right {}, top {}, bottom {} px (a {a}x{c} canvas)",
            b(left),
            b(right),
            b(top),
            b(bottom)
        )
    })
}

/// The bundle's working area, shrunk (same rules otherwise) until an
/// inpaint crop at it fits the budget: a photo is never refused for its crop.
pub fn fitted_work_area(engine: &Engine, s: &ImageSettings) -> WorkArea {
    let w = engine.info.work_area;
    let f = engine.vq.factor();
    let prefix = MAX_PROMPT_TOKENS + 64;
    let b = 1 + usize::from(s.cfg > 0.0);
    let (_, budget) = memory(engine);
    let fits = |side: usize| image_need(engine, prefix, side / f, side / f, b, s.cache.is_some()) <= budget;
    // never more cells than a layout may hold (a small VQ factor on the
    // release's working area would plan crops the sampler then refuses)
    let cells = crate::sampler::layout::MAX_CELLS;
    let w = WorkArea { area: w.area.min(cells * f * f), ..w };
    let side = (w.area as f64).sqrt() as usize / f * f;
    if fits(side.max(f)) {
        return w;
    }
    let side = limits::largest_fitting(f, side.max(f), f, fits).unwrap_or(f);
    WorkArea { area: side * side, max_upscale: w.max_upscale }
}

/// What a front end without the engine (the Studio holds only [`crate::engine::ModelInfo`])
/// shows before a text-to-image or edit run: `Some(warning)` when a
/// `width x height` image with `branches` guidance branches will not fit the
/// memory budget of the model's device here (the GPU's on CUDA), with the
/// largest square that does. For a model in this process only: a server
/// checks its own.
pub fn warning(info: &crate::engine::ModelInfo, width: usize, height: usize, branches: usize, cache: bool) -> Option<String> {
    let mem = Memory::of_name(&info.device);
    warning_in(info, width, height, branches, cache, mem, limits::budget(mem))
}

/// [`warning`] against a given `budget` in `mem`.
pub fn warning_in(info: &crate::engine::ModelInfo, width: usize, height: usize, branches: usize, cache: bool, mem: Memory, budget: u64) -> Option<String> {
    let f = info.vq_factor.max(1);
    let cfg = crate::model::LladaConfig {
        d_model: info.d_model,
        n_heads: info.n_heads,
        n_kv_heads: info.n_kv_heads,
        head_dim: info.d_model / info.n_heads.max(1),
        n_layers: info.n_layers,
        mlp_hidden: info.mlp_hidden,
        vocab: info.vocab,
        rope_theta: 0.0,
        rms_norm_eps: 0.0,
        weight_tying: false,
    };
    // only the channel widths shape the VQ pass's estimate
    let vq = crate::model::VqConfig {
        block_out_channels: info.vq_block_out_channels.clone(),
        layers_per_block: 0, latent_channels: 0, num_vq_embeddings: 0, norm_num_groups: 1, in_channels: 3, out_channels: 3,
        norm_type: None, mid_block_add_attention: None, vq_embed_dim: None, act_fn: None,
    };
    let bytes = if info.compute_dtype == "f32" { 4 } else { 2 };
    let need = |w: usize, h: usize| {
        let r = ImageRequest { prefix: crate::plan::PROMPT_TOKENS, grid_h: h / f, grid_w: w / f, branches, cache };
        limits::image_bytes(&cfg, &vq, &r, info.codebook_size, bytes, crate::model::llada::ATTENTION_BYTES as u64)
    };
    let refusal = limits::over_budget(&format!("{width}x{height}"), need(width, height), budget, mem, limits::env_limit().is_some())?;
    let side = limits::largest_fitting(f, 16384, f, |s| need(s, s) <= budget);
    Some(refusal + &side.map(|s| format!(": at most about {s}x{s}")).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the Studio holds of the released model, running on `device`.
    fn info_8b(device: &str) -> crate::engine::ModelInfo {
        let (c, vq, k) = crate::plan::lumina_dimoo_8b();
        serde_json::from_value(serde_json::json!({
            "name": "8b", "path": "", "parameters": 0, "stored_dtype": "bf16", "compute_dtype": "bf16", "device": device,
            "d_model": c.d_model, "n_layers": c.n_layers, "n_heads": c.n_heads, "n_kv_heads": c.n_kv_heads,
            "mlp_hidden": c.mlp_hidden, "vocab": c.vocab, "text_vocab": 126_356, "codebook_size": k, "vq_factor": vq.factor(),
            "vq_block_out_channels": vq.block_out_channels, "special_tokens": crate::bundle::SpecialTokens::default(),
            "tokenizer_vocab": 0, "work_area": WorkArea::RELEASE,
        }))
        .unwrap()
    }

    #[test]
    fn a_suggested_shape_never_has_a_zero_side() {
        // a 1,504,000 x 16 strip: the old rule scaled both sides from a square and said "1504000x0"
        let (w, h) = largest_of_shape(1_504_000, 16, 16, |a, b| a * b <= 4_000_000).unwrap();
        assert!(w >= 16 && h >= 16 && w <= crate::image_io::MAX_SIDE as usize, "{w}x{h}");
        assert!(w * h <= 4_000_000);
        let (w, h) = largest_of_shape(3000, 2000, 16, |a, b| a * b <= 1 << 20).unwrap();
        assert!(w > h && w % 16 == 0 && h % 16 == 0 && w * h <= 1 << 20 && w * h > 900_000, "{w}x{h}");
        assert_eq!(largest_of_shape(100, 100, 16, |_, _| false), None);
    }

    #[test]
    fn an_extended_canvas_over_the_budget_is_refused_with_borders_that_fit() {
        // 8000 px each side of a 48 x 48 image: 16048^2 x 20 B = 4.8 GiB
        let e = check_extended_in(1 << 30, 48, 48, 8000, 8000, 8000, 8000).unwrap_err().to_string();
        let small = check_extended_in(1 << 30, 48, 48, 100, 100, 0, 0);
        assert!(e.starts_with("a 48x48 image extended to 16048x16048 px needs about"), "{e}");
        let left: u64 = e.split("add at most left ").nth(1).and_then(|s| s.split(',').next()).and_then(|s| s.parse().ok()).unwrap();
        assert!((3000..3700).contains(&left), "{e}");
        assert!(canvas_bytes(48 + 4 * left / 2, 48 + 4 * left / 2) <= 1 << 30, "what it names fits");
        assert!(small.is_ok());
    }

    #[test]
    fn the_studio_warns_against_the_gpus_figure_with_what_fits() {
        let i = info_8b("cuda");
        assert_eq!(Memory::of_name(&i.device), Memory::Gpu(0));
        // 1024^2, guidance and the cache: about 6.2 GiB besides the weights
        assert!(warning_in(&i, 1024, 1024, 2, true, Memory::Gpu(0), 8 << 30).is_none());
        let w = warning_in(&i, 1024, 1024, 2, true, Memory::Gpu(0), 5 << 30).unwrap();
        assert!(w.starts_with("1024x1024 needs about 6.2 GiB of memory, more than the 5.0 GiB GPU 0"), "{w}");
        let side: usize = w.rsplit("at most about ").next().and_then(|s| s.split('x').next()).and_then(|s| s.parse().ok()).unwrap();
        assert!((512..1024).contains(&side), "{w}");
        assert!(warning_in(&i, side, side, 2, true, Memory::Gpu(0), 5 << 30).is_none(), "what it names fits");
    }
}
