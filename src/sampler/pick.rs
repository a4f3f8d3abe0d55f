//! Token choice shared by the samplers.

use rand::rngs::StdRng;
use rand::Rng;

/// Index of the first maximum (torch's argmax tie rule).
pub fn argmax(it: impl Iterator<Item = f32>) -> usize {
    let mut best = (0, f32::NEG_INFINITY);
    for (i, v) in it.enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

/// Greedy at temperature 0, else `argmax(logits / temperature + gumbel)`.
pub fn choose(row: &[f32], temperature: f32, rng: &mut StdRng) -> usize {
    if temperature > 0.0 {
        argmax(row.iter().map(|&l| l / temperature + gumbel(rng)))
    } else {
        argmax(row.iter().copied())
    }
}

/// Standard Gumbel noise from a seeded generator.
pub fn gumbel(rng: &mut StdRng) -> f32 {
    let u: f64 = rng.random_range(1e-12..1.0);
    (-(-u.ln()).ln()) as f32
}
