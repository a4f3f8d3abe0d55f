//! Memory planning before a download or a run (issue 17, item 6): the peak a
//! text-to-image or edit request needs on a model, part by part, from its
//! config alone, with the same estimates that guard every request
//! ([`crate::limits`]). The released 8B model is a preset, so a user can ask
//! "does it fit my 16 GB card?" before fetching 16 GB.

use serde::Serialize;

use crate::limits::{self, Breakdown, ImageRequest};
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
}

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
        t
    }
}
