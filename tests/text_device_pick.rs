//! The text sampler picks on the model's device at temperature 0: what comes
//! back to the host each step does not grow with the vocabulary (issue 29).

use candle_core::{DType, Device};
use unmask::bundle::SpecialTokens;
use unmask::model::random::random_llada_weights;
use unmask::model::{Llada, LladaConfig};
use unmask::sampler::{sample_text, Quiet, TextLayout, TextSettings};

fn model(vocab: usize) -> Llada {
    let cfg = LladaConfig {
        d_model: 32,
        n_heads: 2,
        n_kv_heads: 2,
        head_dim: 16,
        n_layers: 1,
        mlp_hidden: 64,
        vocab,
        rope_theta: 10000.0,
        rms_norm_eps: 1e-5,
        weight_tying: false,
    };
    Llada::load(&cfg, random_llada_weights(&cfg, DType::F32, &Device::Cpu).unwrap()).unwrap()
}

/// Device-to-host bytes per step of a 16-token answer in blocks of 8, with
/// and without the text cache.
fn bytes_per_step(vocab: usize, cache: bool, temperature: f32) -> f64 {
    let sp = SpecialTokens { mask: 3, answer_end: 9, eos: 1, ..Default::default() };
    let mut seq: Vec<u32> = (0..40).map(|i| 20 + (i * 7) % 200).collect();
    let answer_start = seq.len();
    seq.extend(std::iter::repeat_n(sp.mask, 16));
    let layout = TextLayout { seq, answer_start, gen_length: 16 };
    let s = TextSettings { steps: 16, block_length: 8, temperature, seed: 1, cache };
    unmask::profile::start();
    sample_text(&model(vocab), &sp, &layout, &s, &mut Quiet).unwrap();
    let p = unmask::profile::finish().unwrap();
    p.device_to_host_bytes_per_step
}

#[test]
fn greedy_picks_copy_the_same_bytes_for_any_vocabulary() {
    for cache in [false, true] {
        let (small, large) = (bytes_per_step(300, cache, 0.0), bytes_per_step(3000, cache, 0.0));
        assert!(small > 0.0);
        assert_eq!(small, large, "cache {cache}: bytes a step must not depend on the vocabulary");
        assert!(small <= (8 * 12 + 4) as f64, "at most 8 rows of (id, probability) and one sum: {small}");
    }
}

#[test]
fn sampling_with_temperature_still_reads_whole_rows() {
    // the seeded Gumbel noise is drawn on the host, one draw per vocabulary
    // entry, so the rows come back; this pins that the host path is the one taken
    assert!(bytes_per_step(3000, true, 0.7) > 3000.0 * 4.0);
}
