//! Memory planning before a download or a run (issue 17, item 6): the peak a
//! text-to-image or edit request needs on a model, part by part, from its
//! config alone, with the same estimates that guard every request
//! ([`crate::limits`]). The released 8B model is a preset, so a user can ask
//! "does it fit my 16 GB card?" before fetching 16 GB.

use serde::Serialize;

use crate::limits::{self, Breakdown, ImageRequest, Memory};
use crate::model::{LladaConfig, VqConfig};

/// Tokens of the system prompt and a typical user prompt around the image.
pub const PROMPT_TOKENS: usize = 128;

/// Lumina-DiMOO as released (spec sections 1-3): LLaDA-8B and the aMUSEd VQ-VAE.
pub fn lumina_dimoo_8b() -> (LladaConfig, VqConfig, usize) {
    let cfg = LladaConfig {
        d_model: 4096,
        n_heads: 32,
        n_kv_heads: 32,
        head_dim: 128,
        n_layers: 32,
        mlp_hidden: 12288,
        vocab: 134_548,
        rope_theta: 500_000.0,
        rms_norm_eps: 1e-5,
        weight_tying: false,
    };
    let vq = VqConfig {
        block_out_channels: vec![128, 256, 256, 512, 768],
        layers_per_block: 2,
        latent_channels: 64,
        num_vq_embeddings: 8192,
        norm_num_groups: 32,
        in_channels: 3,
        out_channels: 3,
        norm_type: Some("group".into()),
        mid_block_add_attention: Some(false),
        vq_embed_dim: None,
        act_fn: Some("silu".into()),
    };
    (cfg, vq, 8192)
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub model: String,
    pub width: usize,
    pub height: usize,
    pub tokens: usize,
    pub branches: usize,
    pub cache: bool,
    pub dtype: String,
    pub parameters: u64,
    pub attention_bytes: u64,
    pub parts: Breakdown,
    pub peak_bytes: u64,
    /// Quantized projections (`q8_0`, `q4k`), when planned for.
    pub quantization: Option<String>,
    /// The plan against this machine's memory, when compared.
    pub fit: Option<Fit>,
}

/// A plan against the memory of the device it would run on: the check a run
/// makes once the weights are loaded, made before anything is loaded.
#[derive(Debug, Clone, Serialize)]
pub struct Fit {
    /// What was compared with: "host RAM" or "GPU 0 (NAME)".
    pub memory: String,
    /// Free (GPU) or available (host) bytes now; `None` when unreadable.
    pub free_bytes: Option<u64>,
    /// What a request may use once the weights are in: 80% of the rest, or `UNMASK_MEMORY_LIMIT`.
    pub budget_bytes: u64,
    pub limit: bool,
    pub fits: bool,
    /// The largest square of the same request that fits, when this one does not.
    pub largest_square: Option<usize>,
}

/// Compares `plan` (and the same request at other square sizes, `at(side)`)
/// with `free` bytes of `memory`, by the run's own rule ([`limits::budget_from`]).
pub fn fit(plan: &Plan, memory: Memory, free: Option<u64>, limit: Option<u64>, factor: usize, at: impl Fn(usize) -> Plan) -> Fit {
    let weights = plan.parts.weights + plan.parts.vq_weights;
    let budget = limits::budget_from(limit, free.map(|f| f.saturating_sub(weights)), None);
    let weights_fit = free.is_none_or(|f| weights <= f);
    let fits = |p: &Plan| weights_fit && p.parts.working() <= budget;
    let ok = fits(plan);
    let largest_square = if ok { None } else { limits::largest_fitting(factor, 16384, factor, |side| fits(&at(side))) };
    Fit { memory: memory.describe(), free_bytes: free, budget_bytes: budget, limit: limit.is_some(), fits: ok, largest_square }
}

#[derive(Debug, Clone, Copy)]
pub struct Request {
    pub width: usize,
    pub height: usize,
    pub cfg: f32,
    pub cfg_img: f32,
    /// An edit carries the input image in its prefix (and a third branch with `cfg_img`).
    pub edit: bool,
    pub cache: bool,
    pub dtype_bytes: u64,
    pub attention_bytes: u64,
}

/// The plan of `req` on a model of `cfg` / `vq` whose weights take
/// `weights` / `vq_weights` bytes in memory.
pub fn plan(name: &str, cfg: &LladaConfig, vq: &VqConfig, codebook: usize, req: &Request, weights: u64, vq_weights: u64) -> Plan {
    let f = vq.factor();
    let (gh, gw) = (req.height / f, req.width / f);
    let image = gh * (gw + 1) + 2;
    let branches = 1 + usize::from(req.cfg > 0.0) + usize::from(req.edit && req.cfg_img > 0.0);
    let prefix = PROMPT_TOKENS + if req.edit { image } else { 0 };
    let r = ImageRequest { prefix, grid_h: gh, grid_w: gw, branches, cache: req.cache };
    let mut parts = limits::image_breakdown(cfg, vq, &r, codebook, req.dtype_bytes, req.attention_bytes);
    parts.weights = weights;
    parts.vq_weights = vq_weights;
    Plan {
        model: name.into(),
        width: req.width,
        height: req.height,
        tokens: r.tokens(),
        branches,
        cache: req.cache,
        dtype: if req.dtype_bytes == 2 { "bf16".into() } else { "f32".into() },
        parameters: cfg.parameter_count() as u64,
        attention_bytes: req.attention_bytes,
        peak_bytes: parts.peak(),
        parts,
        quantization: None,
        fit: None,
    }
}

impl Plan {
    /// The plan as the table `unmask plan` prints.
    pub fn table(&self) -> String {
        let g = limits::gib;
        let p = &self.parts;
        let mut t = format!(
            "plan: {} at {}x{}: {} tokens, {} guidance branch(es), ML-Cache {}, {}\n",
            self.model,
            self.width,
            self.height,
            self.tokens,
            self.branches,
            if self.cache { "on" } else { "off" },
            self.dtype
        );
        let rows = [
            ("transformer weights", p.weights, match &self.quantization {
                Some(q) => format!("{:.2} B parameters, {q} projections (+ one unpacked f32)", self.parameters as f64 / 1e9),
                None => format!("{:.2} B parameters", self.parameters as f64 / 1e9),
            }),
            ("VQ-VAE weights", p.vq_weights, "f32".into()),
            ("activations", p.activations, "one step's hidden states and MLP, branches batched".into()),
            ("attention workspace", p.attention, format!("scores + softmax, chunked under {}", g(self.attention_bytes))),
            ("logits", p.logits, "codebook logits of the masked cells, all branches".into()),
            ("ML-Cache", p.cache, "K/V of every layer and logits rows, all branches".into()),
            ("VQ-VAE pass", p.vq_pass, "decode at full size (not during sampling)".into()),
        ];
        for (name, bytes, why) in rows {
            t += &format!("  {name:<20} {:>10}  {why}\n", g(bytes));
        }
        t += &format!("  {:<20} {:>10}  weights + the larger of sampling and the VQ pass", "peak", g(self.peak_bytes));
        if let Some(f) = &self.fit {
            t += &format!("\n{}", f.line(self));
        }
        t
    }
}

impl Fit {
    /// "fits GPU 0 (...): ..." as `unmask plan` prints it.
    pub fn line(&self, plan: &Plan) -> String {
        let g = limits::gib;
        let free = match self.free_bytes {
            Some(b) => format!("{} {}", g(b), if self.memory == "host RAM" { "available" } else { "free" }),
            None => "free memory unreadable".into(),
        };
        let rule = if self.limit { "UNMASK_MEMORY_LIMIT" } else { "80% of what the weights leave" };
        let head = format!("compared with {}: {free}; a run may use {} ({rule})", self.memory, g(self.budget_bytes));
        let weights = plan.parts.weights + plan.parts.vq_weights;
        let verdict = if self.fits {
            format!("fits: {} needed", g(plan.parts.working()))
        } else if self.free_bytes.is_some_and(|f| weights > f) {
            format!("does not fit: the weights alone take {}", g(weights))
        } else {
            let largest = match self.largest_square {
                Some(s) => format!("; the largest square that fits is {s}x{s}"),
                None => String::new(),
            };
            format!("does not fit: {} needed{largest}", g(plan.parts.working()))
        };
        let f32_note = if self.memory == "host RAM" && plan.dtype == "bf16" && plan.quantization.is_none() {
            "\n  (the CPU computes in f32: --dtype f32 plans what runs here)"
        } else {
            ""
        };
        format!("{head}\n{verdict}{f32_note}")
    }
}

/// The peak of a guided (4) text-to-image on the released 8B model with the
/// ML-Cache, bf16 or `quant`: what the Studio quotes before a download.
pub fn lumina_dimoo_8b_peak(side: usize, quant: Option<crate::quantize::QuantType>) -> u64 {
    let (cfg, vq, codebook) = lumina_dimoo_8b();
    let req = Request {
        width: side,
        height: side,
        cfg: 4.0,
        cfg_img: 0.0,
        edit: false,
        cache: true,
        dtype_bytes: 2,
        attention_bytes: crate::model::llada::ATTENTION_BYTES as u64,
    };
    let weights = crate::quantize::weight_bytes(&cfg, quant, 2);
    plan("lumina-dimoo-8b", &cfg, &vq, codebook, &req, weights, limits::vq_parameters(&vq) * 4).peak_bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(side: usize) -> Plan {
        let (cfg, vq, k) = lumina_dimoo_8b();
        let req = Request { width: side, height: side, cfg: 4.0, cfg_img: 0.0, edit: false, cache: true, dtype_bytes: 2, attention_bytes: 256 << 20 };
        plan("8b", &cfg, &vq, k, &req, 15 << 30, 0)
    }

    #[test]
    fn a_plan_fits_the_free_memory_after_its_weights() {
        let p = at(1024);
        let work = p.parts.working();
        // the run's rule: 80% of what the weights leave
        let enough = (15u64 << 30) + work / 8 * 10 + (1 << 20);
        let f = fit(&p, Memory::Gpu(0), Some(enough), None, 16, at);
        assert!(f.fits && f.largest_square.is_none(), "{f:?}");
        assert!(f.memory.starts_with("GPU 0"), "{}", f.memory);
        let f = fit(&p, Memory::Gpu(0), Some(enough - (2 << 20)), None, 16, at);
        assert!(!f.fits, "{f:?}");
        let side = f.largest_square.unwrap();
        assert!(side < 1024 && side >= 960 && side % 16 == 0, "{side}");
        assert!(f.line(&p).contains(&format!("the largest square that fits is {side}x{side}")), "{}", f.line(&p));
        // too little for the weights: said so; UNMASK_MEMORY_LIMIT replaces the 80% rule
        let f = fit(&p, Memory::Gpu(0), Some(8 << 30), None, 16, at);
        assert!(!f.fits && f.line(&p).contains("the weights alone"), "{}", f.line(&p));
        let f = fit(&p, Memory::Host, None, Some(work), 16, at);
        assert!(f.fits && f.line(&p).contains("UNMASK_MEMORY_LIMIT") && f.line(&p).contains("host RAM"), "{}", f.line(&p));
    }
}
