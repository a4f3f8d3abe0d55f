//! Shared by the benchmarks: a mid-size random model and a timer.
#![allow(dead_code)]

use std::time::Instant;

use candle_core::{DType, Device};
use unmask::model::random::random_llada_weights;
use unmask::model::{Llada, LladaConfig};

/// The mid-size configuration: d_model 1024, 8 layers, 16 heads, MLP 2816;
/// 1024 text ids + 8192 image codes.
pub fn mid_config() -> LladaConfig {
    LladaConfig {
        d_model: 1024,
        n_heads: 16,
        n_kv_heads: 16,
        head_dim: 64,
        n_layers: 8,
        mlp_hidden: 2816,
        vocab: 1024 + 8192,
        rope_theta: 500000.0,
        rms_norm_eps: 1e-5,
        weight_tying: false,
    }
}

pub fn mid_model() -> Llada {
    let cfg = mid_config();
    let vb = random_llada_weights(&cfg, DType::F32, &Device::Cpu).expect("random weights");
    Llada::load(&cfg, vb).expect("build model")
}

/// Median of `reps` timed runs after one warm-up, in milliseconds.
pub fn median_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(|a, b| a.total_cmp(b));
    t[t.len() / 2]
}
