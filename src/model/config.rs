//! `config.json` of a LLaDA checkpoint (OLMo-style field names), validated into
//! the plain [`LladaConfig`] the model code uses.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// Field for field what the released `config.json` holds (the ones we use).
#[derive(Debug, Clone, Deserialize)]
pub struct LladaConfigFile {
    pub d_model: usize,
    pub n_heads: usize,
    pub n_kv_heads: Option<usize>,
    pub n_layers: usize,
    pub mlp_hidden_size: Option<usize>,
    pub mlp_ratio: Option<usize>,
    pub vocab_size: usize,
    pub embedding_size: Option<usize>,
    pub rope_theta: Option<f64>,
    pub rms_norm_eps: Option<f64>,
    pub include_bias: Option<bool>,
    pub include_qkv_bias: Option<bool>,
    pub weight_tying: Option<bool>,
    pub block_type: Option<String>,
    pub alibi: Option<bool>,
    pub rope: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LladaConfig {
    pub d_model: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub n_layers: usize,
    pub mlp_hidden: usize,
    /// Rows of `wte` and of the output head (the logit width).
    pub vocab: usize,
    pub rope_theta: f64,
    pub rms_norm_eps: f64,
    pub weight_tying: bool,
}

/// A bundle's JSON file with the size cap; a missing one is named as such.
pub fn read_bundle_json(path: &Path, what: &str) -> Result<String> {
    if !path.exists() {
        return Err(Error::bundle(path, format!("missing: a Lumina-DiMOO bundle needs {what}")));
    }
    crate::input::read_text_capped(path, crate::input::JSON_FILE, what).map_err(|e| match e {
        Error::Image { path, msg } => Error::Bundle { path, msg },
        other => other,
    })
}

impl LladaConfig {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = read_bundle_json(path, "config.json")?;
        let raw: LladaConfigFile = serde_json::from_str(&text)
            .map_err(|e| Error::bundle(path, format!("not a LLaDA config.json: {e}")))?;
        Self::from_raw(raw).map_err(|msg| Error::bundle(path, msg))
    }

    pub fn from_raw(raw: LladaConfigFile) -> std::result::Result<Self, String> {
        let bad = |field: &str, why: String| Err(format!("field `{field}`: {why}"));
        if raw.include_bias == Some(true) || raw.include_qkv_bias == Some(true) {
            return bad("include_bias", "biases are not supported (LLaDA has none)".into());
        }
        if raw.alibi == Some(true) || raw.rope == Some(false) {
            return bad("rope", "only RoPE position encoding is supported".into());
        }
        if let Some(b) = &raw.block_type {
            if b != "llama" {
                return bad("block_type", format!("expected \"llama\", found \"{b}\""));
            }
        }
        // sizes far past any real model are refused before anything is built
        // from them (a list of 10^7 layers' tensors alone is gigabytes)
        for (field, v, max) in [
            ("d_model", raw.d_model, 1 << 16),
            ("n_heads", raw.n_heads, 1 << 10),
            ("n_layers", raw.n_layers, 1 << 10),
            ("vocab_size", raw.vocab_size, 1 << 22),
            ("embedding_size", raw.embedding_size.unwrap_or(1), 1 << 22),
            ("mlp_hidden_size", raw.mlp_hidden_size.unwrap_or(1), 1 << 18),
            ("mlp_ratio", raw.mlp_ratio.unwrap_or(1), 64),
            ("n_kv_heads", raw.n_kv_heads.unwrap_or(1), 1 << 10),
        ] {
            if v == 0 {
                return bad(field, "must be positive".into());
            }
            if v > max {
                return bad(field, format!("{v} is past the largest supported value {max}"));
            }
        }
        if raw.d_model % raw.n_heads != 0 {
            return bad("n_heads", format!("d_model {} is not divisible by n_heads {}", raw.d_model, raw.n_heads));
        }
        let head_dim = raw.d_model / raw.n_heads;
        if head_dim % 2 != 0 {
            return bad("n_heads", format!("head dim {head_dim} must be even for RoPE"));
        }
        let n_kv_heads = raw.n_kv_heads.unwrap_or(raw.n_heads);
        if n_kv_heads == 0 || raw.n_heads % n_kv_heads != 0 {
            return bad("n_kv_heads", format!("{n_kv_heads} does not divide n_heads {}", raw.n_heads));
        }
        let mlp_hidden = match (raw.mlp_hidden_size, raw.mlp_ratio) {
            (Some(h), _) => h,
            (None, Some(r)) => r * raw.d_model,
            (None, None) => return bad("mlp_hidden_size", "missing (and no mlp_ratio)".into()),
        };
        let vocab = raw.embedding_size.unwrap_or(raw.vocab_size).max(raw.vocab_size);
        Ok(Self {
            d_model: raw.d_model,
            n_heads: raw.n_heads,
            n_kv_heads,
            head_dim,
            n_layers: raw.n_layers,
            mlp_hidden,
            vocab,
            rope_theta: raw.rope_theta.unwrap_or(10_000.0),
            rms_norm_eps: raw.rms_norm_eps.unwrap_or(1e-5),
            weight_tying: raw.weight_tying.unwrap_or(false),
        })
    }

    /// Every tensor the checkpoint must hold, with its shape, in load order.
    pub fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let (d, m, kv) = (self.d_model, self.mlp_hidden, self.n_kv_heads * self.head_dim);
        let p = "model.transformer.";
        let mut out = vec![(format!("{p}wte.weight"), vec![self.vocab, d])];
        for i in 0..self.n_layers {
            let b = format!("{p}blocks.{i}.");
            out.push((format!("{b}attn_norm.weight"), vec![d]));
            out.push((format!("{b}q_proj.weight"), vec![d, d]));
            out.push((format!("{b}k_proj.weight"), vec![kv, d]));
            out.push((format!("{b}v_proj.weight"), vec![kv, d]));
            out.push((format!("{b}attn_out.weight"), vec![d, d]));
            out.push((format!("{b}ff_norm.weight"), vec![d]));
            out.push((format!("{b}ff_proj.weight"), vec![m, d]));
            out.push((format!("{b}up_proj.weight"), vec![m, d]));
            out.push((format!("{b}ff_out.weight"), vec![d, m]));
        }
        out.push((format!("{p}ln_f.weight"), vec![d]));
        if !self.weight_tying {
            out.push((format!("{p}ff_out.weight"), vec![self.vocab, d]));
        }
        out
    }

    pub fn parameter_count(&self) -> usize {
        self.expected_tensors().iter().map(|(_, s)| s.iter().product::<usize>()).sum()
    }
}
