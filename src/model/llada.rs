//! LLaDA transformer (the Lumina-DiMOO backbone): a Llama-style block stack with
//! bidirectional attention, RoPE in the rotate-half layout, RMSNorm and SwiGLU.
//! See spec section 2. Tensor names follow the released checkpoint
//! (`model.transformer.*`).

use std::ops::Range;

use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;

use super::attention::{self, Spans};
use super::cache::BranchCache;
use super::packing::starts;
use super::config::LladaConfig;
use crate::error::{Error, Result};

struct Block {
    attn_norm: Tensor,
    q_proj: QMatMul,
    k_proj: QMatMul,
    v_proj: QMatMul,
    attn_out: QMatMul,
    ff_norm: Tensor,
    ff_proj: QMatMul,
    up_proj: QMatMul,
    ff_out: QMatMul,
}

/// Where a model's tensors come from: dense (safetensors) or a GGUF file
/// whose projections may be quantized.
trait Source {
    /// A tensor in the compute dtype (norms, embeddings, the head).
    fn dense(&self, name: &str, shape: &[usize]) -> candle_core::Result<Tensor>;
    /// A `[out, in]` projection: dense, or quantized for `QMatMul`.
    fn proj(&self, name: &str, shape: &[usize]) -> candle_core::Result<QMatMul>;
}

impl Source for VarBuilder<'_> {
    fn dense(&self, name: &str, shape: &[usize]) -> candle_core::Result<Tensor> {
        self.get(shape, name)
    }
    fn proj(&self, name: &str, shape: &[usize]) -> candle_core::Result<QMatMul> {
        Ok(QMatMul::Tensor(self.get(shape, name)?))
    }
}

/// A GGUF file (see `crate::quantize`): quantized projections stay quantized,
/// everything else is dequantized into the compute dtype.
struct Gguf {
    content: gguf_file::Content,
    file: std::cell::RefCell<std::fs::File>,
    device: Device,
    dtype: DType,
}

impl Gguf {
    fn qtensor(&self, name: &str, shape: &[usize]) -> candle_core::Result<QTensor> {
        let info = self.content.tensor_infos.get(name).ok_or_else(|| candle_core::Error::Msg(format!("missing tensor `{name}`")))?;
        if info.shape.dims() != shape {
            candle_core::bail!("tensor `{name}` has shape {:?}, config.json implies {shape:?}", info.shape.dims());
        }
        info.read(&mut *self.file.borrow_mut(), self.content.tensor_data_offset, &self.device)
    }
}

impl Source for Gguf {
    fn dense(&self, name: &str, shape: &[usize]) -> candle_core::Result<Tensor> {
        self.qtensor(name, shape)?.dequantize(&self.device)?.to_dtype(self.dtype)
    }
    fn proj(&self, name: &str, shape: &[usize]) -> candle_core::Result<QMatMul> {
        let q = self.qtensor(name, shape)?;
        match q.dtype() {
            GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16 => Ok(QMatMul::Tensor(q.dequantize(&self.device)?.to_dtype(self.dtype)?)),
            _ => QMatMul::from_qtensor(q),
        }
    }
}

impl Block {
    fn load(cfg: &LladaConfig, src: &dyn Source, at: &str) -> candle_core::Result<Self> {
        let (d, m, kv) = (cfg.d_model, cfg.mlp_hidden, cfg.n_kv_heads * cfg.head_dim);
        let n = |s: &str| format!("{at}.{s}");
        Ok(Self {
            attn_norm: src.dense(&n("attn_norm.weight"), &[d])?,
            q_proj: src.proj(&n("q_proj.weight"), &[d, d])?,
            k_proj: src.proj(&n("k_proj.weight"), &[kv, d])?,
            v_proj: src.proj(&n("v_proj.weight"), &[kv, d])?,
            attn_out: src.proj(&n("attn_out.weight"), &[d, d])?,
            ff_norm: src.dense(&n("ff_norm.weight"), &[d])?,
            ff_proj: src.proj(&n("ff_proj.weight"), &[m, d])?,
            up_proj: src.proj(&n("up_proj.weight"), &[m, d])?,
            ff_out: src.proj(&n("ff_out.weight"), &[d, m])?,
        })
    }
}

/// Rows from which a quantized projection on a GPU runs as a dense product:
/// candle's quantized kernels re-read the weights per few rows and were 1.8x
/// slower than bf16 at 4,160 rows on an H200, while dequantizing one
/// projection costs about one read of it. Small passes (text-cache steps,
/// ML-Cache partial steps of a few rows) keep the quantized kernels.
pub const DENSE_ROWS: usize = 64;

/// `x @ w^T` through a projection; quantized kernels take f32 input.
fn mm(p: &QMatMul, x: &Tensor) -> candle_core::Result<Tensor> {
    match p {
        QMatMul::QTensor(q) if x.device().is_cuda() && x.rank() == 2 && x.dims()[0] > DENSE_ROWS => {
            // one projection's dense copy at a time, dropped after its product
            let w = q.dequantize_f16(x.device())?;
            let w = if x.dtype() == DType::F16 { w } else { w.to_dtype(x.dtype())? };
            x.matmul(&w.t()?)
        }
        QMatMul::QTensor(_) if x.dtype() != DType::F32 => p.forward(&x.to_dtype(DType::F32)?)?.to_dtype(x.dtype()),
        _ => p.forward(x),
    }
}

/// `x @ w^T` for a `[out, in]` weight, as the checkpoint stores it.
fn linear(x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    x.matmul(&w.t()?)
}

pub struct Llada {
    cfg: LladaConfig,
    wte: Tensor,
    blocks: Vec<Block>,
    ln_f: Tensor,
    head: Tensor,
    inv_freq: Vec<f32>,
    device: Device,
    dtype: DType,
    /// The most bytes one layer's attention scores may take; queries run in
    /// chunks of rows that keep under it (see [`Llada::set_attention_bytes`]).
    attention_bytes: usize,
    /// The fused CUDA kernel passed its self-check on this device (bf16 only).
    fused_ok: bool,
    /// ... and is in use (see [`Llada::set_fused_attention`]).
    fused: bool,
    /// cos/sin for positions `0..n`, built once per length on the model's
    /// device and grown when a longer sequence comes.
    rope: std::sync::Mutex<Option<(usize, Tensor, Tensor)>>,
}

/// Default bound on one layer's score tensor: 32 heads x 4,160^2 bf16 scores
/// would be 1.1 GB per layer (twice with the softmax) unchunked.
pub const ATTENTION_BYTES: usize = 256 << 20;

impl Llada {
    /// Builds the model from a var builder rooted at the checkpoint's top level.
    pub fn load(cfg: &LladaConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let (device, dtype) = (vb.device().clone(), vb.dtype());
        Self::build(cfg, &vb, device, dtype)
    }

    /// Builds the model from a GGUF file written by `unmask quantize` (the
    /// same tensor names), computing in `dtype` on `device`.
    pub fn load_gguf(cfg: &LladaConfig, path: &std::path::Path, device: &Device, dtype: DType) -> candle_core::Result<Self> {
        let mut file = std::fs::File::open(path)?;
        let content = gguf_file::Content::read(&mut file)?;
        let src = Gguf { content, file: std::cell::RefCell::new(file), device: device.clone(), dtype };
        Self::build(cfg, &src, device.clone(), dtype)
    }

    fn build(cfg: &LladaConfig, src: &dyn Source, device: Device, dtype: DType) -> candle_core::Result<Self> {
        let at = "model.transformer";
        let blocks = (0..cfg.n_layers)
            .map(|i| Block::load(cfg, src, &format!("{at}.blocks.{i}")))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let wte = src.dense(&format!("{at}.wte.weight"), &[cfg.vocab, cfg.d_model])?;
        let head = if cfg.weight_tying { wte.clone() } else { src.dense(&format!("{at}.ff_out.weight"), &[cfg.vocab, cfg.d_model])? };
        let hd = cfg.head_dim;
        // Computed in f64 then rounded: the reference's f32 pow agrees to an ulp.
        let inv_freq = (0..hd / 2)
            .map(|i| (1.0 / cfg.rope_theta.powf(2.0 * i as f64 / hd as f64)) as f32)
            .collect();
        Ok(Self {
            cfg: cfg.clone(),
            wte,
            blocks,
            ln_f: src.dense(&format!("{at}.ln_f.weight"), &[cfg.d_model])?,
            head,
            inv_freq,
            attention_bytes: ATTENTION_BYTES,
            fused_ok: dtype == DType::BF16 && attention::check::self_check(&device, hd),
            fused: true,
            rope: std::sync::Mutex::new(None),
            device,
            dtype,
        })
    }

    /// Which attention runs: `"fused"` (the CUDA kernel) or `"reference"`.
    pub fn attention_kind(&self) -> &'static str {
        if self.fused && self.fused_ok {
            "fused"
        } else {
            "reference"
        }
    }

    /// Uses the reference attention even where the fused kernel passed its
    /// check (benchmarks compare the two).
    pub fn set_fused_attention(&mut self, on: bool) {
        self.fused = on;
    }

    /// Bounds each layer's score tensor (scores and their softmax, in the
    /// compute dtype) to about `bytes`: queries run in chunks of rows. Each
    /// row's softmax is its own, so chunking changes no result beyond
    /// summation order.
    pub fn set_attention_bytes(&mut self, bytes: usize) {
        self.attention_bytes = bytes.max(1);
    }

    pub fn attention_bytes(&self) -> usize {
        self.attention_bytes
    }

    /// How one layer's attention is split for `n` queries over `t` keys:
    /// (heads per chunk, query rows per chunk). Whole heads first: each head's
    /// product is computed exactly as unchunked, so results are identical;
    /// only when one head's scores alone pass the bound are its rows split
    /// too (equal then up to summation order).
    pub fn attention_split(&self, n: usize, t: usize) -> (usize, usize) {
        let b = self.dtype.size_in_bytes();
        let per_head = 2 * n * t * b;
        let heads = self.attention_bytes / per_head.max(1);
        if heads >= 1 {
            return (heads.min(self.cfg.n_heads), n);
        }
        (1, (self.attention_bytes / (2 * t * b).max(1)).clamp(1, n))
    }

    /// Softmax attention of `q` `[1, H, n, D]` over `k`, `v` `[1, H, t, D]`,
    /// in chunks (see [`Llada::attention_split`]) so that no score tensor
    /// passes the bound.
    fn attention(&self, q: &Tensor, k: &Tensor, v: &Tensor) -> candle_core::Result<Tensor> {
        let (_, nh, n, _) = q.dims4()?;
        let t = k.dim(2)?;
        let (hc, rc) = self.attention_split(n, t);
        let one = |q: &Tensor, k: &Tensor, v: &Tensor| -> candle_core::Result<Tensor> {
            let probs = candle_nn::ops::softmax_last_dim(&q.matmul(&k.t()?)?)?;
            probs.matmul(v)
        };
        if hc >= nh {
            return one(q, k, v);
        }
        let mut heads = Vec::with_capacity(nh.div_ceil(hc));
        for h0 in (0..nh).step_by(hc) {
            let w = hc.min(nh - h0);
            let (qh, kh, vh) = (q.narrow(1, h0, w)?, k.narrow(1, h0, w)?.contiguous()?, v.narrow(1, h0, w)?.contiguous()?);
            if rc >= n {
                heads.push(one(&qh.contiguous()?, &kh, &vh)?);
                continue;
            }
            let mut rows = Vec::with_capacity(n.div_ceil(rc));
            for r0 in (0..n).step_by(rc) {
                rows.push(one(&qh.narrow(2, r0, rc.min(n - r0))?.contiguous()?, &kh, &vh)?);
            }
            heads.push(Tensor::cat(&rows, 2)?);
        }
        Tensor::cat(&heads, 1)
    }

    pub fn config(&self) -> &LladaConfig {
        &self.cfg
    }
    pub fn device(&self) -> &Device {
        &self.device
    }
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Full forward without a cache: logits `[T, vocab]` in f32.
    pub fn logits(&self, ids: &[u32]) -> Result<Tensor> {
        let h = self.hidden(ids)?;
        self.head(&h, None, 0..self.cfg.vocab)
    }

    /// Final-norm hidden states of every position, `[T, d_model]`.
    pub fn hidden(&self, ids: &[u32]) -> Result<Tensor> {
        Ok(self.run(&[ids], None, None)?.0)
    }

    /// Final-norm hidden states of a batch of sequences run as one forward,
    /// packed: `[sum of lengths, d_model]`, sequence `b`'s rows starting at
    /// `offsets[b]` (the second value). Every matrix product with the weights
    /// runs once over all rows; attention runs per sequence over its own keys,
    /// so no padding is computed and each sequence gets what
    /// [`Llada::hidden`] gives it alone (up to summation order).
    pub fn hidden_batch(&self, seqs: &[&[u32]]) -> Result<(Tensor, Vec<usize>)> {
        self.run(seqs, None, None)
    }

    /// The output head restricted to `rows` of `hidden` (all when `None`) and to
    /// the vocabulary slice `vocab`: `[rows, vocab.len()]` in f32. Computing only
    /// the image-codebook slice at masked positions is exact and far cheaper.
    pub fn head(&self, hidden: &Tensor, rows: Option<&[usize]>, vocab: Range<usize>) -> Result<Tensor> {
        if vocab.end > self.cfg.vocab || vocab.is_empty() {
            return Err(Error::invalid(format!("vocabulary slice {vocab:?} outside 0..{}", self.cfg.vocab)));
        }
        let h = match rows {
            Some(r) => hidden.index_select(&self.index_tensor(r)?, 0)?,
            None => hidden.clone(),
        };
        let w = self.head.narrow(0, vocab.start, vocab.len())?;
        Ok(linear(&h, &w)?.to_dtype(DType::F32)?)
    }

    /// ML-Cache full step: runs every position, stores each layer's pre-RoPE
    /// K/V and the logits over the cache's vocabulary slice; returns those logits.
    pub fn forward_fill(&self, ids: &[u32], cache: &mut BranchCache) -> Result<Tensor> {
        self.forward_fill_batch(&[ids], cache)
    }

    /// ML-Cache partial step: runs only `positions` (sorted, current token ids,
    /// RoPE at their absolute positions) against all cached K/V, writes their
    /// K/V and logits into the cache and returns the merged logits `[T, slice]`.
    pub fn forward_partial(&self, ids: &[u32], positions: &[usize], cache: &mut BranchCache) -> Result<Tensor> {
        self.forward_partial_batch(&[ids], &[positions], cache)
    }

    /// [`Llada::forward_fill`] for a batch (one cache holds every sequence):
    /// logits `[sum of lengths, slice]`, packed as in [`Llada::hidden_batch`]
    /// (the offsets: [`BranchCache::offsets`]).
    pub fn forward_fill_batch(&self, seqs: &[&[u32]], cache: &mut BranchCache) -> Result<Tensor> {
        let vocab = cache.vocab().ok_or_else(|| Error::invalid("ML-Cache: this cache keeps no logits"))?;
        cache.reset(self.cfg.n_layers, seqs.iter().map(|s| s.len()).collect());
        let h = self.run(seqs, None, Some(cache))?.0;
        let logits = self.head(&h, None, vocab)?;
        cache.set_logits(logits.clone());
        Ok(logits)
    }

    /// [`Llada::forward_partial`] for a batch: `positions[b]` are sequence
    /// `b`'s (any may be empty); the merged logits `[sum of lengths, slice]`.
    pub fn forward_partial_batch(&self, seqs: &[&[u32]], positions: &[&[usize]], cache: &mut BranchCache) -> Result<Tensor> {
        let vocab = cache.vocab().ok_or_else(|| Error::invalid("ML-Cache: this cache keeps no logits"))?;
        self.check_partial(seqs, positions, cache)?;
        if positions.iter().all(|p| p.is_empty()) {
            return Ok(cache.logits()?.clone());
        }
        let h = self.run(seqs, Some(positions), Some(cache))?.0;
        let logits = self.head(&h, None, vocab)?;
        let rows = cache_rows(positions, &cache.offsets());
        cache.write_logits(&self.index_tensor(&rows)?, &logits)
    }

    /// Text cache full pass: like [`Llada::forward_fill`] but keeps only K/V
    /// (a cache from [`BranchCache::kv_only`]); the hidden states `[T, d]`.
    pub fn hidden_fill(&self, ids: &[u32], cache: &mut BranchCache) -> Result<Tensor> {
        cache.reset(self.cfg.n_layers, vec![ids.len()]);
        Ok(self.run(&[ids], None, Some(cache))?.0)
    }

    /// Text cache partial pass: runs `positions` against the cached K/V of
    /// every other position, updates theirs, returns their hidden states `[n, d]`.
    pub fn hidden_partial(&self, ids: &[u32], positions: &[usize], cache: &mut BranchCache) -> Result<Tensor> {
        self.check_partial(&[ids], &[positions], cache)?;
        if positions.is_empty() {
            return Err(Error::invalid("text cache: a partial pass needs at least one position"));
        }
        Ok(self.run(&[ids], Some(&[positions]), Some(cache))?.0)
    }

    /// Checks a partial pass against the cache.
    fn check_partial(&self, seqs: &[&[u32]], positions: &[&[usize]], cache: &BranchCache) -> Result<()> {
        let lens: Vec<usize> = seqs.iter().map(|s| s.len()).collect();
        if cache.lens() != Some(&lens[..]) || positions.len() != seqs.len() {
            return Err(Error::invalid("ML-Cache: partial step on sequences the cache was not filled for"));
        }
        for (p, s) in positions.iter().zip(seqs) {
            if p.iter().any(|&i| i >= s.len()) || p.windows(2).any(|w| w[0] >= w[1]) {
                return Err(Error::invalid("ML-Cache: positions must be sorted, distinct and inside the sequence"));
            }
        }
        Ok(())
    }

    fn index_tensor(&self, idx: &[usize]) -> candle_core::Result<Tensor> {
        let v: Vec<u32> = idx.iter().map(|&i| i as u32).collect();
        Tensor::from_vec(v, idx.len(), &self.device)
    }

    /// cos/sin tables `[t, head_dim/2]` for positions `0..t`, from the tables
    /// kept on the device (rebuilt only when a longer sequence comes; each
    /// entry is computed alone, so a longer table holds the same values).
    fn rope_prefix(&self, t: usize) -> candle_core::Result<(Tensor, Tensor)> {
        let mut kept = self.rope.lock().unwrap_or_else(|e| e.into_inner());
        if kept.as_ref().is_none_or(|(n, _, _)| *n < t) {
            let n = t.next_multiple_of(1024);
            let (cos, sin) = self.rope_tables(&(0..n).collect::<Vec<_>>())?;
            *kept = Some((n, cos, sin));
        }
        let (_, cos, sin) = kept.as_ref().expect("set above");
        Ok((cos.narrow(0, 0, t)?, sin.narrow(0, 0, t)?))
    }

    /// cos/sin tables `[n, head_dim/2]` for the given absolute positions.
    fn rope_tables(&self, positions: &[usize]) -> candle_core::Result<(Tensor, Tensor)> {
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(positions.len() * half);
        let mut sin = Vec::with_capacity(positions.len() * half);
        for &p in positions {
            for &f in &self.inv_freq {
                let a = p as f32 * f; // f32 product, as the reference computes it
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
        let n = positions.len();
        let cos = Tensor::from_vec(cos, (n, half), &self.device)?.to_dtype(self.dtype)?;
        let sin = Tensor::from_vec(sin, (n, half), &self.device)?.to_dtype(self.dtype)?;
        Ok((cos, sin))
    }

    /// The block stack over a batch of sequences, packed one after the
    /// other. `compute`: each sequence's positions to run (all when `None`;
    /// any may be empty); with a cache, a full run fills it and a partial run
    /// reads and updates it. Returns the hidden states of the computed rows,
    /// packed, and where each sequence's rows start.
    fn run(&self, seqs: &[&[u32]], compute: Option<&[&[usize]]>, mut cache: Option<&mut BranchCache>) -> Result<(Tensor, Vec<usize>)> {
        if seqs.is_empty() || seqs.iter().any(|s| s.is_empty()) {
            return Err(Error::invalid("empty token sequence"));
        }
        for ids in seqs {
            if let Some(&bad) = ids.iter().find(|&&i| i as usize >= self.cfg.vocab) {
                return Err(Error::invalid(format!("token id {bad} outside the vocabulary of {}", self.cfg.vocab)));
            }
        }
        let lens: Vec<usize> = seqs.iter().map(|s| s.len()).collect();
        let t = lens.iter().copied().max().unwrap_or(0);
        let rows: Vec<Vec<usize>> = match compute {
            None => lens.iter().map(|&l| (0..l).collect()).collect(),
            Some(p) => p.iter().map(|r| r.to_vec()).collect(),
        };
        // where each sequence starts among the keys (all positions) and the computed rows
        let key_at = starts(&lens);
        let row_at = starts(&rows.iter().map(|r| r.len()).collect::<Vec<_>>());
        let n: usize = rows.iter().map(|r| r.len()).sum();
        let _timer = crate::profile::phase("forwards");
        crate::profile::forward(n);
        let row_ids: Vec<u32> = rows.iter().zip(seqs).flat_map(|(r, s)| r.iter().map(|&i| s[i])).collect();
        let mut x = self.wte.index_select(&Tensor::from_vec(row_ids, n, &self.device)?, 0)?;

        let (cos, sin) = self.rope_prefix(t)?;
        // each sequence's tables: keys at 0..len, queries at its rows
        let mut tables = Vec::with_capacity(seqs.len());
        for (b, r) in rows.iter().enumerate() {
            let k = (cos.narrow(0, 0, lens[b])?, sin.narrow(0, 0, lens[b])?);
            let q = match compute {
                Some(_) if !r.is_empty() => {
                    let idx = self.index_tensor(r)?;
                    (cos.index_select(&idx, 0)?, sin.index_select(&idx, 0)?)
                }
                _ => k.clone(),
            };
            tables.push((q, k));
        }
        let writes = match compute {
            Some(p) => Some(self.index_tensor(&cache_rows(p, &key_at))?),
            None => None,
        };
        let (nh, nkv, hd) = (self.cfg.n_heads, self.cfg.n_kv_heads, self.cfg.head_dim);
        let scale = 1.0 / (hd as f64).sqrt();
        let eps = self.cfg.rms_norm_eps as f32;
        let fused = match self.fused && self.fused_ok && seqs.len() <= attention::flash::MAX_SEQS {
            true => Some(Fused::new(&tables, &rows, &lens)?),
            false => None,
        };

        for (layer, blk) in self.blocks.iter().enumerate() {
            let a = candle_nn::ops::rms_norm(&x, &blk.attn_norm, eps)?;
            let q = mm(&blk.q_proj, &a)?;
            let mut k = mm(&blk.k_proj, &a)?;
            let mut v = mm(&blk.v_proj, &a)?;
            if let Some(c) = cache.as_deref_mut() {
                (k, v) = match &writes {
                    None => {
                        c.store_kv(layer, k.clone(), v.clone());
                        (k, v)
                    }
                    Some(rows) => c.update_kv(layer, rows, &k, &v)?,
                };
            }
            if let Some(f) = &fused {
                let o = f.attend(&q, &k, &v, nh, nkv, hd, scale)?;
                x = (x + mm(&blk.attn_out, &o)?)?;
                x = self.feed_forward(blk, x, eps)?;
                continue;
            }
            let mut outs = Vec::with_capacity(seqs.len());
            for (b, ((cos_q, sin_q), (cos_k, sin_k))) in tables.iter().enumerate() {
                let nb = rows[b].len();
                if nb == 0 {
                    continue;
                }
                let q = heads(&q.narrow(0, row_at[b], nb)?, nb, nh, hd)?;
                let k = heads(&k.narrow(0, key_at[b], lens[b])?, lens[b], nkv, hd)?;
                let v = heads(&v.narrow(0, key_at[b], lens[b])?, lens[b], nkv, hd)?;
                // the 1/sqrt(d) scale goes on q (n x d values), not on the n x T scores
                let q = (candle_nn::rotary_emb::rope(&q, cos_q, sin_q)? * scale)?;
                let k = candle_nn::rotary_emb::rope(&k, cos_k, sin_k)?;
                let (k, v) = (repeat_kv(k, nh / nkv)?, repeat_kv(v, nh / nkv)?);
                let o = self.attention(&q, &k, &v)?; // [1, H, nb, D]
                outs.push(o.squeeze(0)?.transpose(0, 1)?.reshape((nb, nh * hd))?);
            }
            let o = if outs.len() == 1 { outs.remove(0) } else { Tensor::cat(&outs, 0)? };
            x = (x + mm(&blk.attn_out, &o)?)?;
            x = self.feed_forward(blk, x, eps)?;
        }
        Ok((candle_nn::ops::rms_norm(&x, &self.ln_f, eps)?, row_at))
    }

    /// The SwiGLU half of a block, residual included.
    fn feed_forward(&self, blk: &Block, x: Tensor, eps: f32) -> candle_core::Result<Tensor> {
        let f = candle_nn::ops::rms_norm(&x, &blk.ff_norm, eps)?;
        let gate = candle_nn::Activation::Silu.forward(&mm(&blk.ff_proj, &f)?)?;
        let up = mm(&blk.up_proj, &f)?;
        x + mm(&blk.ff_out, &(gate * up)?)?
    }
}

/// One forward's attention through the fused kernel: the packed RoPE tables
/// of its query rows and keys (built once, used by every layer) and the
/// sequences' spans. Q, K and V stay in the projections' `[rows, heads*hd]`
/// layout: no per-head transposes, no repeated KV heads, no score tensor.
struct Fused {
    cos_q: Tensor,
    sin_q: Tensor,
    cos_k: Tensor,
    sin_k: Tensor,
    spans: Spans,
}

type Table = (Tensor, Tensor);

impl Fused {
    fn new(tables: &[(Table, Table)], rows: &[Vec<usize>], lens: &[usize]) -> candle_core::Result<Self> {
        let cat = |parts: Vec<&Tensor>| -> candle_core::Result<Tensor> {
            if parts.len() == 1 {
                parts[0].contiguous()
            } else {
                Tensor::cat(&parts, 0)
            }
        };
        let with_rows = || tables.iter().zip(rows).filter(|(_, r)| !r.is_empty()).map(|(t, _)| t);
        Ok(Self {
            cos_q: cat(with_rows().map(|t| &t.0 .0).collect())?,
            sin_q: cat(with_rows().map(|t| &t.0 .1).collect())?,
            cos_k: cat(tables.iter().map(|t| &t.1 .0).collect())?,
            sin_k: cat(tables.iter().map(|t| &t.1 .1).collect())?,
            spans: Spans::packed(&rows.iter().map(|r| r.len()).collect::<Vec<_>>(), lens),
        })
    }

    /// `q` `[rows, nh*hd]`, `k`, `v` `[keys, nkv*hd]` before RoPE; `[rows, nh*hd]`.
    #[allow(clippy::too_many_arguments)]
    fn attend(&self, q: &Tensor, k: &Tensor, v: &Tensor, nh: usize, nkv: usize, hd: usize, scale: f64) -> candle_core::Result<Tensor> {
        let (n, t) = (q.dim(0)?, k.dim(0)?);
        let q = candle_nn::rotary_emb::rope_thd(&q.reshape((1, n, nh, hd))?, &self.cos_q, &self.sin_q)?.reshape((n, nh * hd))?;
        let k = candle_nn::rotary_emb::rope_thd(&k.reshape((1, t, nkv, hd))?, &self.cos_k, &self.sin_k)?.reshape((t, nkv * hd))?;
        attention::flash::fused(&q, &k, v, &self.spans, nh, nkv, hd, scale as f32)
    }
}

/// The cache rows (packed over every sequence's positions) of a partial
/// run's computed rows, in their order.
fn cache_rows(positions: &[&[usize]], key_at: &[usize]) -> Vec<usize> {
    positions.iter().zip(key_at).flat_map(|(p, &at)| p.iter().map(move |&i| at + i)).collect()
}

/// `[n, heads*hd]` -> `[1, heads, n, hd]`, contiguous for the fused RoPE kernel.
fn heads(x: &Tensor, n: usize, heads: usize, hd: usize) -> candle_core::Result<Tensor> {
    x.reshape((n, heads, hd))?.transpose(0, 1)?.unsqueeze(0)?.contiguous()
}

/// Grouped-query attention: query head h reads kv head h / rep.
fn repeat_kv(x: Tensor, rep: usize) -> candle_core::Result<Tensor> {
    if rep == 1 {
        return Ok(x);
    }
    let (b, h, t, d) = x.dims4()?;
    x.unsqueeze(2)?.broadcast_as((b, h, rep, t, d))?.reshape((b, h * rep, t, d))
}

