//! How big a request may be on this model and this machine (issue 16): every
//! size a user can ask for is checked against an estimate of the memory it
//! needs before any work, and refused with the largest value that would fit.
//!
//! The budget is what the model's device has available when the request is
//! checked (the loaded weights already excluded): on CUDA the GPU's free
//! memory, else the host's (under `ulimit -v`, what is left of the address
//! space if that is less; [`crate::device_memory`]), times 0.8; `UNMASK_MEMORY_LIMIT`
//! (bytes, or with a K/M/G suffix) sets it instead. The estimates are upper
//! bounds calibrated on this CPU build (measured peaks in the comments); they
//! follow what each part materialises:
//! - a transformer forward over T positions: the attention scores, their
//!   softmax and a temporary, `3 * heads * T^2` values or 1.5 x the chunk
//!   bound when queries run in chunks, plus `T * (8 d + 3 m)` activations
//!   (branches run one after another, so one forward's worth);
//! - the ML-Cache: per branch, K and V of every layer and the logits rows;
//! - the VQ-VAE over P pixels: it convolves a band of rows at a time
//!   (`model::vq::BAND_BYTES`), so what it holds is the three maps of its
//!   largest residual block (input, hidden, output) plus one band's working
//!   set; see [`vq_bytes`] for the figures measured on the release's VQ-VAE.

pub use crate::device_memory::Memory;
use crate::error::{Error, Result};
use crate::model::{LladaConfig, VqConfig};

/// Bytes one request may use in `mem`: on a GPU its free memory (the
/// weights are on it already), on the host what is available.
pub fn budget(mem: Memory) -> u64 {
    let left = if mem == Memory::Host { address_space_left() } else { None };
    budget_from(env_limit(), mem.free(), left)
}

/// `UNMASK_MEMORY_LIMIT` in bytes, when set and valid.
pub fn env_limit() -> Option<u64> {
    std::env::var("UNMASK_MEMORY_LIMIT").ok().and_then(|v| parse_bytes(&v))
}

/// The budget's rule, from what was read: the limit when set, else 80% of
/// the free memory (8 GiB when unreadable) or of the address space left, the
/// smaller (an allocation past `ulimit -v` aborts the process).
pub fn budget_from(limit: Option<u64>, free: Option<u64>, address_left: Option<u64>) -> u64 {
    if let Some(b) = limit {
        return b;
    }
    let mem = free.unwrap_or(8 << 30);
    let room = address_left.map_or(mem, |a| a.min(mem));
    room / 10 * 8
}

/// `RLIMIT_AS` minus this process's current virtual size, when a limit is set.
fn address_space_left() -> Option<u64> {
    let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit only writes the struct we pass
    if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut l) } != 0 || l.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status.lines().find(|l| l.starts_with("VmSize:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some((l.rlim_cur as u64).saturating_sub(kb * 1024))
}

/// "1500000", "800M", "1.5G", "64k" -> bytes.
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()?.to_ascii_uppercase() {
        'K' => (&s[..s.len() - 1], 1u64 << 10),
        'M' => (&s[..s.len() - 1], 1 << 20),
        'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let v: f64 = num.trim().parse().ok()?;
    (v.is_finite() && v > 0.0).then(|| (v * mult as f64) as u64)
}

pub fn gib(b: u64) -> String {
    if b >= 1 << 30 {
        format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
    } else {
        format!("{} MiB", b >> 20)
    }
}

/// Peak bytes of one transformer forward over `t` positions, with the
/// attention's score tensors bounded by `attention_bytes` (query chunks, see
/// `Llada::set_attention_bytes`).
pub fn forward_bytes(cfg: &LladaConfig, t: usize, dtype_bytes: u64, attention_bytes: u64) -> u64 {
    let (t, h) = (t as u64, cfg.n_heads as u64);
    // scores and softmax of one chunk, plus a temporary: 1.5 x the bound
    let scores = (3 * h * t * t * dtype_bytes).min(attention_bytes / 2 * 3);
    let acts = t * (8 * cfg.d_model as u64 + 3 * cfg.mlp_hidden as u64) * dtype_bytes;
    scores.saturating_add(acts)
}

/// What the ML-Cache keeps for `branches` branches over `t` positions.
pub fn cache_bytes(cfg: &LladaConfig, t: usize, branches: usize, codebook: usize, dtype_bytes: u64) -> u64 {
    let kv = 2 * cfg.n_layers as u64 * t as u64 * (cfg.n_kv_heads * cfg.head_dim) as u64 * dtype_bytes;
    let logits = t as u64 * codebook as u64 * 4;
    (kv + logits) * branches as u64
}

/// Peak bytes of a VQ encode or decode of a `w x h` image, weights aside.
///
/// The convolutions run a band of rows at a time, so the peak is the largest
/// residual block's three maps (its input, with the channels of the level
/// beside it, its hidden map and its output) plus one band: at most
/// `BAND_BYTES` of unfold and output and its input rows (1.5 x the bound, or
/// of one whole map when that is smaller), the mid-block attention's scores
/// when it has one, and the image's own tensors. Release VQ-VAE (8B preset),
/// f32 on this 2-core CPU, peak resident minus its 585 MB of weights:
/// decode 256^2 276 MB (estimate 538 MB), 512^2 663 MB (946 MB), 1024^2
/// 2.28 GB (2.58 GB); encode 512^2 517 MB, 1024^2 1.72 GB. Before bands:
/// decode 512^2 1.44 GB, 1024^2 5.50 GB; encode 1024^2 3.23 GB.
pub fn vq_bytes(cfg: &VqConfig, w: usize, h: usize) -> u64 {
    const F32: u64 = 4;
    let px = w as u64 * h as u64;
    let ch: Vec<u64> = cfg.block_out_channels.iter().map(|&c| c as u64).collect();
    let (mut maps, mut whole_band) = (0u64, 0u64);
    for (i, &c) in ch.iter().enumerate() {
        let p = px >> (2 * i);
        // the first resnet of level i reads the channels of the level below
        // (decoder) or above (encoder)
        let cin = ch.get(i + 1).copied().unwrap_or(c).max(if i > 0 { ch[i - 1] } else { c });
        maps = maps.max((cin + 2 * c) * p * F32);
        whole_band = whole_band.max((9 * cin + 2 * c.max(cin)) * p * F32);
    }
    let band = whole_band.min(crate::model::vq::BAND_BYTES as u64) / 2 * 3;
    let tokens = px / (cfg.factor() * cfg.factor()) as u64;
    let top = *ch.last().unwrap_or(&0);
    let attention = if cfg.mid_block_add_attention.unwrap_or(true) { (3 * tokens * tokens + 4 * tokens * top) * F32 } else { 0 };
    maps.saturating_add(band).saturating_add(attention) + px * 24
}

/// One image task's shape, as the estimate needs it.
pub struct ImageRequest {
    /// The longest branch prefix, in tokens.
    pub prefix: usize,
    pub grid_h: usize,
    pub grid_w: usize,
    pub branches: usize,
    pub cache: bool,
}

impl ImageRequest {
    /// Sequence length: prefix, the grid with a newline per row, and the end markers.
    pub fn tokens(&self) -> usize {
        self.prefix + self.grid_h * (self.grid_w + 1) + 2
    }
}

/// An image task's memory, part by part (bytes). The weights are resident
/// already when a request is checked, so [`Breakdown::working`] leaves them
/// out; [`Breakdown::peak`] is what the device must hold in all.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Breakdown {
    pub weights: u64,
    pub vq_weights: u64,
    /// One step's hidden states and MLP intermediates (the guidance
    /// branches run as one batch, so every branch's at once).
    pub activations: u64,
    /// One layer's attention scores and softmax (chunked under the bound).
    pub attention: u64,
    /// Codebook logits of every masked cell, every branch.
    pub logits: u64,
    /// ML-Cache: every layer's K and V and the logits rows, every branch.
    pub cache: u64,
    /// The VQ-VAE encode or decode at the image's size.
    pub vq_pass: u64,
}

impl Breakdown {
    /// Sampling and the VQ pass do not overlap: the larger of the two.
    pub fn working(&self) -> u64 {
        (self.activations + self.attention + self.logits + self.cache).max(self.vq_pass)
    }
    pub fn peak(&self) -> u64 {
        self.weights + self.vq_weights + self.working()
    }
}

/// The parts of an image task (weights left at 0).
pub fn image_breakdown(cfg: &LladaConfig, vq: &VqConfig, r: &ImageRequest, codebook: usize, dtype_bytes: u64, attention_bytes: u64) -> Breakdown {
    let t = r.tokens() as u64;
    let f = vq.factor();
    let (h, d, m) = (cfg.n_heads as u64, cfg.d_model as u64, cfg.mlp_hidden as u64);
    Breakdown {
        activations: t * (8 * d + 3 * m) * dtype_bytes * r.branches.max(1) as u64,
        attention: (3 * h * t * t * dtype_bytes).min(attention_bytes / 2 * 3),
        logits: (r.grid_h * r.grid_w * codebook * 4 * r.branches) as u64,
        cache: if r.cache { cache_bytes(cfg, r.tokens(), r.branches, codebook, dtype_bytes) } else { 0 },
        vq_pass: vq_bytes(vq, r.grid_w * f, r.grid_h * f),
        ..Default::default()
    }
}

/// Peak working bytes of an image task: the larger of the sampling and the VQ passes.
pub fn image_bytes(cfg: &LladaConfig, vq: &VqConfig, r: &ImageRequest, codebook: usize, dtype_bytes: u64, attention_bytes: u64) -> u64 {
    image_breakdown(cfg, vq, r, codebook, dtype_bytes, attention_bytes).working()
}

/// Parameters of a VQ-VAE from its config, every tensor `VqModel::load`
/// reads (the release's: 146,244,675).
pub fn vq_parameters(vq: &VqConfig) -> u64 {
    let c: Vec<u64> = vq.block_out_channels.iter().map(|&c| c as u64).collect();
    let (lat, rgb) = (vq.latent_channels as u64, 3u64);
    let conv = |i: u64, o: u64, k: u64| k * k * i * o + o;
    let norm = |ch: u64| 2 * ch;
    let resnet = |i: u64, o: u64| norm(i) + conv(i, o, 3) + norm(o) + conv(o, o, 3) + if i != o { conv(i, o, 1) } else { 0 };
    let top = *c.last().unwrap_or(&0);
    let mid = 2 * resnet(top, top) + if vq.mid_block_add_attention.unwrap_or(true) { norm(top) + 4 * (top * top + top) } else { 0 };
    let side = |levels: &[u64], per_level: usize| {
        let mut n = 0;
        let mut cin = levels[0];
        for (j, &o) in levels.iter().enumerate() {
            n += (0..per_level).map(|r| resnet(if r == 0 { cin } else { o }, o)).sum::<u64>();
            if j + 1 < levels.len() {
                n += conv(o, o, 3); // down- or upsampler
            }
            cin = o;
        }
        n
    };
    let rev: Vec<u64> = c.iter().rev().copied().collect();
    let encoder = conv(rgb, c[0], 3) + side(&c, vq.layers_per_block) + mid + norm(top) + conv(top, lat, 3);
    let decoder = conv(lat, top, 3) + mid + side(&rev, vq.layers_per_block + 1) + norm(c[0]) + conv(c[0], rgb, 3);
    let e = vq.embed_dim() as u64;
    encoder + decoder + conv(lat, e, 1) + vq.num_vq_embeddings as u64 * e + conv(e, lat, 1)
}

/// Refuses a request whose estimate is over `budget` (from [`budget`]) in
/// `mem`. `what` names the request ("--width/--height 2048x2048");
/// `largest`, given the same budget, says what would fit.
pub fn check(mem: Memory, budget: u64, what: &str, needed: u64, largest: impl FnOnce(u64) -> String) -> Result<()> {
    match over_budget(what, needed, budget, mem, env_limit().is_some()) {
        None => Ok(()),
        Some(m) => Err(Error::invalid(format!("{m}: {}", largest(budget)))),
    }
}

/// The refusal of `needed` bytes over `budget`, naming the memory: `None`
/// when it fits. `limited`: the budget is `UNMASK_MEMORY_LIMIT`'s.
pub fn over_budget(what: &str, needed: u64, budget: u64, mem: Memory, limited: bool) -> Option<String> {
    if needed <= budget {
        return None;
    }
    let whose = match mem {
        Memory::Host => "this machine".to_string(),
        gpu => gpu.describe(),
    };
    Some(format!(
        "{what} needs about {} of memory, more than the {} {whose} allows{}",
        gib(needed),
        gib(budget),
        if limited { " (UNMASK_MEMORY_LIMIT)" } else { "" },
    ))
}

/// The largest value in `lo..=hi` (a multiple of `step`) whose estimate fits.
pub fn largest_fitting(lo: usize, hi: usize, step: usize, fits: impl Fn(usize) -> bool) -> Option<usize> {
    let (mut a, mut b) = (lo / step, hi / step);
    if !fits(a * step) {
        return None;
    }
    while a < b {
        let m = (a + b).div_ceil(2);
        if fits(m * step) {
            a = m;
        } else {
            b = m - 1;
        }
    }
    Some(a * step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_parse_with_suffixes() {
        assert_eq!(parse_bytes("800M"), Some(800 << 20));
        assert_eq!(parse_bytes("1.5G"), Some(3 << 29));
        assert_eq!(parse_bytes("4096"), Some(4096));
        assert_eq!(parse_bytes("-1G"), None);
        assert_eq!(parse_bytes("lots"), None);
    }

    #[test]
    fn the_budget_is_the_limit_or_80_percent_of_the_free_memory() {
        assert_eq!(budget_from(Some(600 << 20), Some(1 << 40), None), 600 << 20);
        assert_eq!(budget_from(None, Some(10 << 30), None), 8 << 30);
        assert_eq!(budget_from(None, Some(10 << 30), Some(5 << 30)), 4 << 30);
        assert_eq!(budget_from(None, None, None), (8u64 << 30) / 10 * 8);
    }

    #[test]
    fn a_refusal_names_the_memory_it_was_counted_in() {
        assert_eq!(over_budget("x", 100, 100, Memory::Gpu(0), false), None);
        let host = over_budget("--width 2048 --height 2048", 9 << 30, 6 << 30, Memory::Host, false).unwrap();
        assert_eq!(host, "--width 2048 --height 2048 needs about 9.0 GiB of memory, more than the 6.0 GiB this machine allows");
        let gpu = over_budget("1024x1024", 9 << 30, 6 << 30, Memory::Gpu(1), true).unwrap();
        assert!(gpu.starts_with("1024x1024 needs about 9.0 GiB of memory, more than the 6.0 GiB GPU 1"), "{gpu}");
        assert!(gpu.ends_with(" allows (UNMASK_MEMORY_LIMIT)"), "{gpu}");
        // the GPU's figure, not the host's, decides: 6 GiB free on the card refuses what the host would take
        let need = 7u64 << 30;
        assert!(over_budget("x", need, budget_from(None, Some(64 << 30), None), Memory::Host, false).is_none());
        assert!(over_budget("x", need, budget_from(None, Some(6 << 30), None), Memory::Gpu(0), false).is_some());
    }

    #[test]
    fn the_largest_fitting_value_is_found_on_its_step() {
        assert_eq!(largest_fitting(16, 4096, 16, |v| v * v <= 1_000_000), Some(992));
        assert_eq!(largest_fitting(16, 4096, 16, |_| false), None);
    }
}
