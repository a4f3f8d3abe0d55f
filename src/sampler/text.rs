//! LLaDA's semi-autoregressive text sampler for understanding answers (spec
//! section 7): blocks of masked positions unmasked by confidence, stopping once
//! the answer has ended.

use candle_core::{DType, Tensor};
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::layout::TextLayout;
use super::schedule::text_block_schedule;
use super::pick::choose;
use super::Control;
use crate::bundle::SpecialTokens;
use crate::error::{Error, Result};
use crate::model::{BranchCache, Llada};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextSettings {
    /// Total steps over all blocks (a multiple of the number of blocks).
    pub steps: usize,
    pub block_length: usize,
    pub temperature: f32,
    pub seed: u64,
    /// The text cache (a dual cache, as Fast-dLLM's): each block's first step
    /// runs the whole sequence and keeps every layer's K/V; its later steps
    /// run only the block's positions against them. Approximate: the image,
    /// the prompt and the later blocks keep the K/V of the block's start.
    pub cache: bool,
}

impl Default for TextSettings {
    fn default() -> Self {
        Self { steps: 32, block_length: 32, temperature: 0.0, seed: 0, cache: false }
    }
}

pub struct TextStep<'a> {
    pub step: usize,
    pub total: usize,
    /// The answer region: `Some(id)` decided, `None` still masked.
    pub answer: &'a [Option<u32>],
}

/// The answer: ids before the first `answer_end`, masks dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub ids: Vec<u32>,
}

pub fn answer_ids(region: &[Option<u32>], special: &SpecialTokens) -> Vec<u32> {
    region.iter().take_while(|t| **t != Some(special.answer_end)).filter_map(|t| *t).collect()
}

pub fn sample_text(
    llada: &Llada,
    special: &SpecialTokens,
    layout: &TextLayout,
    settings: &TextSettings,
    control: &mut dyn Control,
) -> Result<Answer> {
    let (g, b) = (layout.gen_length, settings.block_length);
    if b == 0 {
        return Err(Error::invalid("block length 0: it must be at least 1 (and divide the answer length)"));
    }
    if g % b != 0 {
        return Err(Error::invalid(format!("gen_length {g} must be a multiple of block_length {b}")));
    }
    let blocks = g / b;
    if settings.steps == 0 || settings.steps % blocks != 0 {
        return Err(Error::invalid(format!(
            "steps {} must be a positive multiple of the number of blocks {blocks} (gen_length / block_length)",
            settings.steps
        )));
    }
    if !settings.temperature.is_finite() || settings.temperature < 0.0 {
        return Err(Error::invalid("temperature must be a finite number >= 0"));
    }
    let per_block = settings.steps / blocks;
    let start = layout.answer_start;
    let mut x = layout.seq.clone();
    let mut rng = StdRng::seed_from_u64(settings.seed);
    let mut step = 0;
    let region = |x: &[u32]| -> Vec<Option<u32>> {
        x[start..start + g].iter().map(|&t| (t != special.mask).then_some(t)).collect()
    };

    let mut cache = settings.cache.then(BranchCache::kv_only);
    for blk in 0..blocks {
        let (lo, hi) = (start + blk * b, start + (blk + 1) * b);
        let n_masked = x[lo..hi].iter().filter(|&&t| t == special.mask).count();
        let block: Vec<usize> = (lo..hi).collect();
        let mut filled = false;
        for count in text_block_schedule(n_masked, per_block) {
            if control.cancelled() {
                return Err(Error::Cancelled);
            }
            // only masked positions inside this block can be chosen
            let rows: Vec<usize> = (start..hi).filter(|&i| x[i] == special.mask).collect();
            if count > 0 && !rows.is_empty() {
                let vocab = 0..llada.config().vocab;
                let logits = match cache.as_mut() {
                    None => llada.head(&llada.hidden(&x)?, Some(&rows), vocab)?,
                    // (a mask left before the block, never by the schedule: run it all)
                    Some(c) if !filled || rows[0] < lo => {
                        filled = true;
                        llada.head(&llada.hidden_fill(&x, c)?, Some(&rows), vocab)?
                    }
                    Some(c) => {
                        // rows are inside the block: their index in its hidden states
                        let at: Vec<usize> = rows.iter().map(|&r| r - lo).collect();
                        llada.head(&llada.hidden_partial(&x, &block, c)?, Some(&at), vocab)?
                    }
                };
                crate::profile::step();
                let picked = if settings.temperature > 0.0 {
                    pick_on_host(&logits, settings.temperature, &mut rng)?
                } else {
                    pick_on_device(&logits)?
                };
                let mut cands: Vec<(f64, usize, u32)> = picked.into_iter().zip(&rows).map(|((p, id), &pos)| (p, pos, id)).collect();
                cands.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                for &(_, pos, tok) in cands.iter().take(count) {
                    x[pos] = tok;
                }
            }
            control.text_step(&TextStep { step, total: settings.steps, answer: &region(&x) });
            step += 1;
        }
        let done = x[start..hi].iter().any(|&t| t == special.answer_end || t == special.eos);
        if done {
            break;
        }
    }
    Ok(Answer { ids: answer_ids(&region(&x), special) })
}


/// Greedy choice on the model's device: each row's argmax and its
/// probability come back (12 bytes a row), not its vocabulary's logits. The
/// probability of the argmax is `1 / sum(exp(l - max))`, summed in f64 as
/// the reference computes confidences.
fn pick_on_device(logits: &Tensor) -> Result<Vec<(f64, u32)>> {
    // damaged weights (NaN or Inf) would otherwise answer token 0 everywhere
    let total = logits.sum_all()?.to_scalar::<f32>()?;
    if !total.is_finite() {
        return Err(super::image::non_finite());
    }
    let picks = logits.argmax_keepdim(1)?;
    let m = logits.max_keepdim(1)?.to_dtype(DType::F64)?;
    let sum = logits.to_dtype(DType::F64)?.broadcast_sub(&m)?.exp()?.sum_keepdim(1)?;
    let picks = picks.flatten_all()?.to_vec1::<u32>()?;
    let sums = sum.flatten_all()?.to_vec1::<f64>()?;
    crate::profile::device_to_host(picks.len() * 12 + 4);
    Ok(sums.into_iter().zip(picks).map(|(s, id)| (1.0 / s, id)).collect())
}

/// Gumbel-max at temperature > 0, on the host: the noise comes from the
/// seeded generator, one draw per vocabulary entry, so the whole rows come
/// back.
fn pick_on_host(logits: &Tensor, temperature: f32, rng: &mut StdRng) -> Result<Vec<(f64, u32)>> {
    let v = logits.dim(1)?;
    let flat = logits.flatten_all()?.to_vec1::<f32>()?;
    crate::profile::device_to_host(flat.len() * 4);
    if flat.iter().any(|v| !v.is_finite()) {
        return Err(super::image::non_finite());
    }
    Ok(flat
        .chunks_exact(v)
        .map(|row| {
            let pick = choose(row, temperature, rng);
            (prob_f64(row, pick), pick as u32)
        })
        .collect())
}

/// `softmax(row)[i]` in f64, as the reference computes confidences.
fn prob_f64(row: &[f32], i: usize) -> f64 {
    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = row.iter().map(|&v| (v as f64 - m).exp()).sum();
    (row[i] as f64 - m).exp() / sum
}
