//! The ML-Cache state of the sampling branches run as one batch (spec section
//! 6): each layer's pre-RoPE K and V for every position of every sequence
//! (packed: sequence `b`'s rows start at `offsets()[b]`), and the logits of every
//! position over one vocabulary slice (the image codebook when sampling
//! images). The text cache keeps K and V only.

use std::ops::Range;

use candle_core::Tensor;

use crate::error::{Error, Result};

pub struct BranchCache {
    vocab: Option<Range<usize>>,
    k: Vec<Option<Tensor>>,
    v: Vec<Option<Tensor>>,
    logits: Option<Tensor>,
    lens: Option<Vec<usize>>,
}

impl BranchCache {
    /// K/V and the logits over `vocab`.
    pub fn new(vocab: Range<usize>) -> Self {
        Self { vocab: Some(vocab), k: Vec::new(), v: Vec::new(), logits: None, lens: None }
    }

    /// K/V only (the text sampler's cache reads logits at a few rows itself).
    pub fn kv_only() -> Self {
        Self { vocab: None, k: Vec::new(), v: Vec::new(), logits: None, lens: None }
    }

    pub fn vocab(&self) -> Option<Range<usize>> {
        self.vocab.clone()
    }

    /// The lengths of the sequences the cache holds, `None` when empty.
    pub fn lens(&self) -> Option<&[usize]> {
        self.lens.as_deref()
    }

    /// Where each sequence's rows start in the packed K/V and logits.
    pub fn offsets(&self) -> Vec<usize> {
        super::packing::starts(self.lens().unwrap_or_default())
    }

    pub fn is_empty(&self) -> bool {
        self.lens.is_none()
    }

    /// Drops everything and expects sequences of `lens` (a full step rebuilds it).
    pub(crate) fn reset(&mut self, layers: usize, lens: Vec<usize>) {
        self.k = vec![None; layers];
        self.v = vec![None; layers];
        self.logits = None;
        self.lens = Some(lens);
    }

    pub fn logits(&self) -> Result<&Tensor> {
        self.logits.as_ref().ok_or_else(|| Error::invalid("ML-Cache: no logits cached yet"))
    }

    pub(crate) fn store_kv(&mut self, layer: usize, k: Tensor, v: Tensor) {
        self.k[layer] = Some(k);
        self.v[layer] = Some(v);
    }

    /// Writes the rows at `index` and returns the whole cached K and V.
    pub(crate) fn update_kv(&mut self, layer: usize, index: &Tensor, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let (Some(ck), Some(cv)) = (&self.k[layer], &self.v[layer]) else {
            return Err(Error::invalid("ML-Cache: partial step before a full one"));
        };
        let ck = write_rows(ck, index, k)?;
        let cv = write_rows(cv, index, v)?;
        self.k[layer] = Some(ck.clone());
        self.v[layer] = Some(cv.clone());
        Ok((ck, cv))
    }

    pub(crate) fn set_logits(&mut self, logits: Tensor) {
        self.logits = Some(logits);
    }

    pub(crate) fn write_logits(&mut self, index: &Tensor, rows: &Tensor) -> Result<Tensor> {
        let merged = write_rows(self.logits()?, index, rows)?;
        self.logits = Some(merged.clone());
        Ok(merged)
    }
}

/// `base` with its rows at `index` replaced by `rows` (exact copy, no arithmetic).
fn write_rows(base: &Tensor, index: &Tensor, rows: &Tensor) -> candle_core::Result<Tensor> {
    let (n, c) = rows.dims2()?;
    let idx = index.unsqueeze(1)?.broadcast_as((n, c))?.contiguous()?;
    base.scatter(&idx, &rows.contiguous()?, 0)
}
