//! The MaskGIT-style image sampler every image task uses (spec section 5), with
//! classifier-free guidance and the ML-Cache (section 6). Pure and cancellable:
//! it reads the model, calls back after every step and writes nothing else.

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::layout::ImageLayout;
use super::schedule::{is_full_step, keep_masked, quantile};
use super::pick::{choose, gumbel};
use super::Control;
use crate::bundle::SpecialTokens;
use crate::error::{Error, Result};
use crate::model::{BranchCache, CodeGrid, Llada};
use candle_core::Tensor;

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSettings {
    /// Share of positions served from the cache at a partial step.
    pub ratio: f64,
    pub warmup_ratio: f64,
    pub refresh_interval: usize,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self { ratio: 0.9, warmup_ratio: 0.3, refresh_interval: 5 }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSettings {
    pub steps: usize,
    /// Text guidance scale (0 = none).
    pub cfg: f32,
    /// Image guidance scale of editing tasks (0 = none).
    pub cfg_img: f32,
    /// 0 = greedy and deterministic; > 0 samples with Gumbel noise from `seed`.
    pub temperature: f32,
    pub seed: u64,
    pub cache: Option<CacheSettings>,
}

impl Default for ImageSettings {
    fn default() -> Self {
        Self { steps: 64, cfg: 4.0, cfg_img: 0.0, temperature: 1.0, seed: 0, cache: None }
    }
}

impl ImageSettings {
    pub fn check(&self) -> Result<()> {
        if self.steps == 0 || self.steps > 1000 {
            return Err(Error::invalid(format!("steps = {}: use 1 to 1000", self.steps)));
        }
        // finite but huge guidance overflows the logits into a blank image
        for (name, v, max) in [("cfg", self.cfg, MAX_GUIDANCE), ("cfg_img", self.cfg_img, MAX_GUIDANCE), ("temperature", self.temperature, 10.0)] {
            if !v.is_finite() || !(0.0..=max).contains(&v) {
                return Err(Error::invalid(format!("{name} = {v}: use a number from 0 to {max}")));
            }
        }
        if let Some(c) = &self.cache {
            if !(c.ratio > 0.0 && c.ratio < 1.0) {
                return Err(Error::invalid(format!("cache ratio = {}: must be strictly between 0 and 1", c.ratio)));
            }
            if !(0.0..=1.0).contains(&c.warmup_ratio) {
                return Err(Error::invalid(format!("warmup ratio = {}: must be in [0, 1]", c.warmup_ratio)));
            }
            if c.refresh_interval == 0 {
                return Err(Error::invalid("refresh interval must be at least 1"));
            }
        }
        Ok(())
    }
}

/// The error for logits that are NaN or infinite.
pub fn non_finite() -> Error {
    Error::invalid(
        "the model produced NaN or infinite logits: its weights are damaged or overflow in this precision; \
         check them with `unmask info --verify`, or download the model again",
    )
}

/// Guidance past this only amplifies noise (the release uses 2.5 to 7).
pub const MAX_GUIDANCE: f32 = 50.0;

/// The grid after one step, as the caller sees it.
pub struct ImageStep<'a> {
    /// 0-based index of the step just finished.
    pub step: usize,
    pub total: usize,
    /// Row-major cells: `Some(code)` decided (or kept), `None` still masked.
    pub cells: &'a [Option<u32>],
    /// The model's current best code for every cell (decided cells: their code).
    pub guess: &'a [u32],
    pub unmasked: usize,
}

/// How the guidance branches run; the default is what every task uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplerOptions {
    /// All branches as one batched forward per step (true), or one forward a
    /// branch (the old order, kept to compare against).
    pub batch_branches: bool,
    /// Greedy picks on the host from every masked cell's codebook logits
    /// (the old path, kept to compare against); false picks on the device.
    pub host_pick: bool,
}

impl Default for SamplerOptions {
    fn default() -> Self {
        Self { batch_branches: true, host_pick: false }
    }
}

/// Guidance branches that run as one forward and share one ML-Cache.
struct Group {
    /// Indexes into the branch list (0 conditional, then the unconditionals).
    members: Vec<usize>,
    cache: Option<BranchCache>,
    /// Each member's positions to recompute at the next partial step.
    recompute: Vec<Vec<usize>>,
}

/// Every branch of a run: their prefixes and how they are grouped.
struct Branches {
    prefixes: Vec<Vec<u32>>,
    groups: Vec<Group>,
}

impl Branches {
    fn new(prefixes: Vec<Vec<u32>>, cached: bool, codebook: std::ops::Range<usize>, batched: bool) -> Self {
        let n = prefixes.len();
        let sets: Vec<Vec<usize>> = if batched { vec![(0..n).collect()] } else { (0..n).map(|i| vec![i]).collect() };
        let groups = sets
            .into_iter()
            .map(|members| Group { recompute: vec![Vec::new(); members.len()], members, cache: cached.then(|| BranchCache::new(codebook.clone())) })
            .collect();
        Self { prefixes, groups }
    }

    /// Every branch's codebook logits at the masked cells (`[masked, K]`,
    /// in branch order), plus (with a cache) each branch's max-logit of every
    /// position for choosing what to recompute.
    fn logits(&mut self, llada: &Llada, target: &[u32], masked: &[usize], full: bool, cb: std::ops::Range<usize>) -> Result<(Vec<Tensor>, Vec<Option<Vec<f32>>>)> {
        let n = self.prefixes.len();
        let mut logits: Vec<Option<Tensor>> = vec![None; n];
        let mut maxes: Vec<Option<Vec<f32>>> = vec![None; n];
        for g in &mut self.groups {
            let seqs: Vec<Vec<u32>> = g.members.iter().map(|&b| [&self.prefixes[b][..], target].concat()).collect();
            let refs: Vec<&[u32]> = seqs.iter().map(|s| &s[..]).collect();
            // sequence j's masked cells, as rows of the packed batch
            let at = crate::model::packing::starts(&refs.iter().map(|s| s.len()).collect::<Vec<_>>());
            let rows: Vec<usize> = g.members.iter().enumerate().flat_map(|(j, &b)| {
                let p = at[j] + self.prefixes[b].len();
                masked.iter().map(move |&m| p + m)
            }).collect();
            let picked = match &mut g.cache {
                None => {
                    let (h, _) = llada.hidden_batch(&refs)?;
                    llada.head(&h, Some(&rows), cb.clone())?
                }
                Some(cache) => {
                    let all = if full {
                        llada.forward_fill_batch(&refs, cache)?
                    } else {
                        let pos: Vec<&[usize]> = g.recompute.iter().map(|r| &r[..]).collect();
                        llada.forward_partial_batch(&refs, &pos, cache)?
                    };
                    // each position's max logit chooses what the cache recomputes (host side)
                    let m = all.max(1)?.to_vec1::<f32>()?;
                    crate::profile::device_to_host(m.len() * 4);
                    for (j, &b) in g.members.iter().enumerate() {
                        maxes[b] = Some(m[at[j]..at[j] + refs[j].len()].to_vec());
                    }
                    let idx = Tensor::from_vec(rows.iter().map(|&r| r as u32).collect::<Vec<_>>(), rows.len(), all.device())?;
                    all.index_select(&idx, 0)?
                }
            };
            for (j, &b) in g.members.iter().enumerate() {
                logits[b] = Some(picked.narrow(0, j * masked.len(), masked.len())?);
            }
        }
        let logits = logits.into_iter().map(|l| l.ok_or_else(|| Error::invalid("a guidance branch ran in no group"))).collect::<Result<Vec<_>>>()?;
        Ok((logits, maxes))
    }

    /// Sets what branch `b` recomputes at the next partial step.
    fn set_recompute(&mut self, b: usize, idx: Vec<usize>) {
        for g in &mut self.groups {
            if let Some(j) = g.members.iter().position(|&m| m == b) {
                g.recompute[j] = idx;
                return;
            }
        }
    }
}

/// Runs the sampler to the end (or until `control` cancels) and returns the grid.
pub fn sample_image(
    llada: &Llada,
    special: &SpecialTokens,
    layout: &ImageLayout,
    settings: &ImageSettings,
    control: &mut dyn Control,
) -> Result<CodeGrid> {
    sample_image_with(llada, special, layout, settings, SamplerOptions::default(), control)
}

/// [`sample_image`] with the branches run as `options` says.
pub fn sample_image_with(
    llada: &Llada,
    special: &SpecialTokens,
    layout: &ImageLayout,
    settings: &ImageSettings,
    options: SamplerOptions,
    control: &mut dyn Control,
) -> Result<CodeGrid> {
    settings.check()?;
    let cb = special.codebook();
    let k = cb.len();
    let mut cells = layout.cells.clone();
    if cells.len() != layout.height * layout.width {
        return Err(Error::invalid("layout cells do not match its grid size"));
    }
    let n_start = cells.iter().filter(|c| c.is_none()).count();
    let total = settings.steps;
    let cached = settings.cache.is_some();
    let use_text = settings.cfg > 0.0 && layout.text_free.is_some();
    let use_image = settings.cfg_img > 0.0 && layout.image_free.is_some();
    let edit_form = layout.image_free.is_some();

    // branch order: conditional, text-free (if guided), image-free (if guided)
    let mut prefixes = vec![layout.cond.clone()];
    if use_text {
        prefixes.extend(layout.text_free.clone());
    }
    if use_image {
        prefixes.extend(layout.image_free.clone());
    }
    let text_at = use_text.then_some(1);
    let image_at = use_image.then_some(prefixes.len() - 1);
    let mut branches = Branches::new(prefixes, cached, cb.clone(), options.batch_branches);

    let mut rng = StdRng::seed_from_u64(settings.seed);
    let mut guess: Vec<u32> = cells.iter().map(|c| c.unwrap_or(0)).collect();

    for s in 0..total {
        if control.cancelled() {
            return Err(Error::Cancelled);
        }
        let masked_cells: Vec<usize> = (0..cells.len()).filter(|&i| cells[i].is_none()).collect();
        if masked_cells.is_empty() {
            break;
        }
        crate::profile::step();
        let keep = keep_masked(n_start, s, total);
        let full = match settings.cache {
            Some(c) => is_full_step(s, total, c.warmup_ratio, c.refresh_interval),
            None => true,
        };
        let target = layout.target(special, &cells);
        let masked_pos: Vec<usize> = masked_cells.iter().map(|&i| layout.cell_offset(i)).collect();

        // guidance on the model's device, in the release's f32 order
        let (all, maxes) = branches.logits(llada, &target, &masked_pos, full, cb.clone())?;
        let c = &all[0];
        let mut logits = c.clone();
        if let Some(i) = text_at {
            let u = &all[i];
            let g = settings.cfg;
            logits = if edit_form {
                (&logits + ((c - u)? * g as f64)?)?
            } else {
                // the release's text-to-image form, (1+g)c - gu
                ((c * (1.0 + g) as f64)? - (u * g as f64)?)?
            };
        }
        if let Some(i) = image_at {
            logits = (&logits + ((c - &all[i])? * settings.cfg_img as f64)?)?;
        }

        // choose a code and its confidence for every masked cell
        let (picks, confs) = if settings.temperature > 0.0 || options.host_pick {
            pick_on_host(&logits, k, settings.temperature, &mut rng)?
        } else {
            pick_on_device(&logits)?
        };
        for (j, &cell) in masked_cells.iter().enumerate() {
            guess[cell] = picks[j];
            cells[cell] = Some(picks[j]);
        }
        // re-mask the `keep` least confident: exactly those below the keep-th smallest
        let mut sorted = confs.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let cut = sorted[keep.min(sorted.len() - 1)];
        for (j, &cell) in masked_cells.iter().enumerate() {
            if confs[j] < cut {
                cells[cell] = None;
            }
        }

        // choose what the next (partial) step recomputes
        if let Some(cs) = settings.cache {
            if s + 1 < total && !is_full_step(s + 1, total, cs.warmup_ratio, cs.refresh_interval) {
                let q = (1.0 - cs.ratio) as f32;
                for (b, m) in maxes.into_iter().enumerate() {
                    let Some(m) = m else { continue };
                    let thr = quantile(&m, q);
                    branches.set_recompute(b, (0..m.len()).filter(|&i| m[i] <= thr).collect());
                }
            }
        }

        let unmasked = cells.iter().filter(|c| c.is_some()).count();
        control.image_step(&ImageStep { step: s, total, cells: &cells, guess: &guess, unmasked });
    }
    if cells.iter().any(|c| c.is_none()) {
        return Err(Error::invalid("sampler ended with masked cells left (too few steps?)"));
    }
    Ok(CodeGrid { height: layout.height, width: layout.width, codes: cells.into_iter().map(|c| c.unwrap_or(0)).collect() })
}


/// Greedy choice on the model's device: the argmax and its log-softmax come
/// back, one code and one confidence per masked cell (8 bytes), not the
/// cell's codebook logits (4 K bytes per branch).
fn pick_on_device(logits: &Tensor) -> Result<(Vec<u32>, Vec<f32>)> {
    // damaged weights (NaN or Inf) would pick code 0 everywhere and exit 0
    let total = logits.sum_all()?.to_dtype(candle_core::DType::F32)?.to_scalar::<f32>()?;
    if !total.is_finite() {
        return Err(non_finite());
    }
    let picks = logits.argmax_keepdim(1)?;
    let conf = candle_nn::ops::log_softmax(logits, 1)?.gather(&picks, 1)?;
    let picks = picks.flatten_all()?.to_vec1::<u32>()?;
    let floor = 1e-20f32.ln();
    let confs: Vec<f32> = conf.flatten_all()?.to_vec1::<f32>()?.into_iter().map(|c| c.max(floor)).collect();
    crate::profile::device_to_host(picks.len() * 8 + 4);
    Ok((picks, confs))
}

/// Gumbel-max at temperature > 0, on the host: the noise comes from the
/// seeded generator, so a seed gives the same image on every device.
fn pick_on_host(logits: &Tensor, k: usize, temperature: f32, rng: &mut StdRng) -> Result<(Vec<u32>, Vec<f32>)> {
    let host = logits.flatten_all()?.to_vec1::<f32>()?;
    crate::profile::device_to_host(host.len() * 4);
    if host.iter().any(|v| !v.is_finite()) {
        return Err(non_finite());
    }
    let (mut picks, mut confs) = (Vec::with_capacity(host.len() / k), Vec::with_capacity(host.len() / k));
    for row in host.chunks_exact(k) {
        let pick = choose(row, temperature, rng);
        let conf = log_softmax_at(row, pick).max(1e-20f32.ln()) + temperature * gumbel(rng);
        picks.push(pick as u32);
        confs.push(conf);
    }
    Ok((picks, confs))
}

/// `log(softmax(row)[i])`.
fn log_softmax_at(row: &[f32], i: usize) -> f32 {
    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = row.iter().map(|&v| (v - m).exp()).sum();
    ((row[i] - m).exp() / sum).ln()
}
