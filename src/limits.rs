//! How big a request may be on this model and this machine (issue 16): every
//! size a user can ask for is checked against an estimate of the memory it
//! needs before any work, and refused with the largest value that would fit.
//!
//! The budget is what the machine has available when the request is checked
//! (the loaded weights already excluded; under `ulimit -v`, what is left of
//! the address space if that is less), times 0.8; `UNMASK_MEMORY_LIMIT`
//! (bytes, or with a K/M/G suffix) sets it instead. The estimates are upper
//! bounds calibrated on this CPU build (measured peaks in the comments); they
//! follow what each part materialises:
//! - a transformer forward over T positions: the attention scores, their
//!   softmax and a temporary, `3 * heads * T^2` values or 1.5 x the chunk
//!   bound when queries run in chunks, plus `T * (8 d + 3 m)` activations
//!   (branches run one after another, so one forward's worth);
//! - the ML-Cache: per branch, K and V of every layer and the logits rows;
//! - the VQ-VAE over P pixels: its convolutions unfold 3 x 3 patches, about
//!   48 bytes per channel and pixel at the widest level (embedded model,
//!   2048^2 decode: estimate 1.6 GB, measured 1.42 GB; fixture 1024^2: 805 MB
//!   vs 730 MB measured).

use crate::error::{Error, Result};
use crate::model::{LladaConfig, VqConfig};

/// Bytes this process may use for one request.
pub fn budget() -> u64 {
    if let Some(b) = std::env::var("UNMASK_MEMORY_LIMIT").ok().and_then(|v| parse_bytes(&v)) {
        return b;
    }
    let mem = available().unwrap_or(8 << 30);
    // under an address-space limit (`ulimit -v`) an allocation past it aborts
    // the process: what is left of it bounds the budget too
    let room = address_space_left().map_or(mem, |a| a.min(mem));
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

/// `MemAvailable` of /proc/meminfo, in bytes.
fn available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
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

/// Peak bytes of a VQ encode or decode of a `w x h` image.
pub fn vq_bytes(cfg: &VqConfig, w: usize, h: usize) -> u64 {
    let px = w as u64 * h as u64;
    let widest = cfg.block_out_channels.iter().enumerate().map(|(i, &c)| c as u64 * (px >> (2 * i))).max().unwrap_or(0);
    widest.saturating_mul(48) + px * 24
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

/// Parameters of a VQ-VAE from its config (convolutions of the encoder and
/// decoder; norms and biases are noise next to them).
pub fn vq_parameters(vq: &VqConfig) -> u64 {
    let c = &vq.block_out_channels;
    let per_level: u64 = c.iter().map(|&ch| {
        let ch = ch as u64;
        // each resnet has two 3x3 convolutions; the decoder has one resnet more a level
        9 * ch * ch * 2 * (vq.layers_per_block as u64 * 2 + 1)
    }).sum();
    let last = *c.last().unwrap_or(&0) as u64;
    // mid blocks (2 resnets each side) and the latent convolutions
    per_level + 4 * 2 * 9 * last * last + 2 * 9 * last * vq.latent_channels as u64
}

/// Refuses a request whose estimate is over the budget. `what` names the
/// request ("--width/--height 2048x2048"); `largest` says what would fit.
pub fn check(what: &str, needed: u64, largest: impl FnOnce() -> String) -> Result<()> {
    let b = budget();
    if needed <= b {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "{what} needs about {} of memory, more than the {} this machine allows{}: {}",
        gib(needed),
        gib(b),
        if std::env::var_os("UNMASK_MEMORY_LIMIT").is_some() { " (UNMASK_MEMORY_LIMIT)" } else { "" },
        largest()
    )))
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
    fn the_largest_fitting_value_is_found_on_its_step() {
        assert_eq!(largest_fitting(16, 4096, 16, |v| v * v <= 1_000_000), Some(992));
        assert_eq!(largest_fitting(16, 4096, 16, |_| false), None);
    }
}
