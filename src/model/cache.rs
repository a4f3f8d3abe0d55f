//! The ML-Cache state of one sampling branch (spec section 6): each layer's
//! pre-RoPE K and V for every position, and the logits of every position over
//! one vocabulary slice (the image codebook when sampling images).

use std::ops::Range;

use candle_core::Tensor;

use crate::error::{Error, Result};

pub struct BranchCache {
    vocab: Range<usize>,
    k: Vec<Option<Tensor>>,
    v: Vec<Option<Tensor>>,
    logits: Option<Tensor>,
    len: Option<usize>,
}

impl BranchCache {
    pub fn new(vocab: Range<usize>) -> Self {
        Self { vocab, k: Vec::new(), v: Vec::new(), logits: None, len: None }
    }

    pub fn vocab(&self) -> Range<usize> {
        self.vocab.clone()
    }

    /// Sequence length the cache holds, `None` when empty.
    pub fn len(&self) -> Option<usize> {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len.is_none()
    }

    /// Drops everything (a full refresh step rebuilds it).
    pub fn reset(&mut self, layers: usize) {
        self.k = vec![None; layers];
        self.v = vec![None; layers];
        self.logits = None;
        self.len = None;
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

    pub(crate) fn set_logits(&mut self, logits: Tensor, len: usize) {
        self.logits = Some(logits);
        self.len = Some(len);
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
