//! Attention over packed sequences, the one shape every pass of ours needs:
//! the guidance branches run as one batch (each query row attends only to its
//! own sequence's keys) and partial passes (ML-Cache, the text cache: some
//! query rows against all of their sequence's keys), with grouped-query heads.
//!
//! Two implementations: [`reference`] (candle ops, scores materialised; any
//! device and dtype) and [`flash::fused`] (the CUDA kernel, bf16). The model
//! uses the fused one only after [`check::self_check`] has compared the two
//! on the device it runs on. The CPU keeps the model's exact attention
//! (`Llada`'s own chunked path), so golden tokens do not move.

pub mod check;
pub mod flash;

use candle_core::Tensor;

/// One sequence of a packed batch: its query rows `q_start..q_start + q_len`
/// and its keys `k_start..k_start + k_len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub q_start: usize,
    pub q_len: usize,
    pub k_start: usize,
    pub k_len: usize,
}

/// The sequences of one call, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spans(Vec<Span>);

impl Spans {
    /// Spans from each sequence's computed rows and key count, both packed in
    /// order (query rows and keys each start where the last sequence's end).
    pub fn packed(q_lens: &[usize], k_lens: &[usize]) -> Self {
        let (mut q, mut k) = (0, 0);
        Self(
            q_lens
                .iter()
                .zip(k_lens)
                .map(|(&ql, &kl)| {
                    let s = Span { q_start: q, q_len: ql, k_start: k, k_len: kl };
                    (q, k) = (q + ql, k + kl);
                    s
                })
                .collect(),
        )
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Span> {
        self.0.iter()
    }

    /// The query spans cover `0..q_rows` in order, each non-empty one has
    /// keys, and every key span lies in `0..k_rows`: the kernel writes every
    /// output row and reads nothing outside its inputs.
    pub fn check(&self, q_rows: usize, k_rows: usize) -> candle_core::Result<()> {
        let mut next = 0;
        for s in &self.0 {
            if s.q_start != next || (s.q_len > 0 && s.k_len == 0) || s.k_start + s.k_len > k_rows {
                candle_core::bail!("attention spans {:?} do not fit {q_rows} query rows and {k_rows} keys", self.0);
            }
            next += s.q_len;
        }
        if next != q_rows {
            candle_core::bail!("attention spans {:?} cover {next} of {q_rows} query rows", self.0);
        }
        Ok(())
    }
}

/// Softmax attention with the scores materialised, per sequence: `q`
/// `[rows, heads*hd]`, `k`, `v` `[keys, kv_heads*hd]`, RoPE already applied,
/// `scale` the softmax scale; returns `[rows, heads*hd]` in the inputs' dtype.
#[allow(clippy::too_many_arguments)]
pub fn reference(q: &Tensor, k: &Tensor, v: &Tensor, spans: &Spans, heads: usize, kv_heads: usize, hd: usize, scale: f64) -> candle_core::Result<Tensor> {
    spans.check(q.dim(0)?, k.dim(0)?)?;
    let mut outs = Vec::with_capacity(spans.len());
    for s in spans.iter().filter(|s| s.q_len > 0) {
        let qh = (q.narrow(0, s.q_start, s.q_len)?.reshape((s.q_len, heads, hd))?.transpose(0, 1)?.contiguous()? * scale)?;
        let kv = |x: &Tensor| -> candle_core::Result<Tensor> {
            let x = x.narrow(0, s.k_start, s.k_len)?.reshape((s.k_len, kv_heads, hd))?.transpose(0, 1)?;
            // query head h reads kv head h / (heads / kv_heads)
            let rep = heads / kv_heads;
            x.unsqueeze(1)?.broadcast_as((kv_heads, rep, s.k_len, hd))?.reshape((heads, s.k_len, hd))
        };
        let (kh, vh) = (kv(k)?, kv(v)?);
        let probs = candle_nn::ops::softmax_last_dim(&qh.matmul(&kh.t()?)?)?;
        outs.push(probs.matmul(&vh)?.transpose(0, 1)?.reshape((s.q_len, heads * hd))?);
    }
    match outs.len() {
        0 => Tensor::zeros((0, heads * hd), q.dtype(), q.device()),
        1 => Ok(outs.remove(0)),
        _ => Tensor::cat(&outs, 0),
    }
}
