//! The transformer's training forward: the same math as `unmask::model::Llada`
//! (spec section 2) on a padded batch, built from differentiable candle ops
//! (the fused inference kernels have no backward pass). A test in this file
//! checks it against the inference model.

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::VarMap;
use unmask::model::LladaConfig;

/// Random initial weights in the checkpoint's names: N(0, 0.02) matrices
/// drawn from `rng` in the order of their names, unit norms.
pub fn init(varmap: &VarMap, cfg: &LladaConfig, rng: &mut rand::rngs::StdRng, dev: &Device) -> candle_core::Result<()> {
    let mut data = crate::varmap_data(varmap)?;
    let mut expected = cfg.expected_tensors();
    expected.sort();
    for (name, shape) in expected {
        if data.contains_key(&name) {
            continue;
        }
        let v = if shape.len() == 1 { Var::from_tensor(&Tensor::ones(shape[0], DType::F32, dev)?)? } else { crate::init::normal_matrix(rng, shape[0], shape[1], 0.02, dev)? };
        data.insert(name, v);
    }
    Ok(())
}

pub struct Weights {
    map: std::collections::HashMap<String, Tensor>,
}

impl Weights {
    pub fn from_varmap(varmap: &VarMap) -> candle_core::Result<Self> {
        let data = crate::varmap_data(varmap)?;
        Ok(Self { map: data.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect() })
    }
    fn w(&self, name: &str) -> candle_core::Result<&Tensor> {
        self.map.get(&format!("model.transformer.{name}")).ok_or_else(|| candle_core::Error::Msg(format!("no weight {name}")))
    }
}

fn rms(x: &Tensor, w: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    let v = x.sqr()?.mean_keepdim(D::Minus1)?;
    x.broadcast_div(&(v + eps)?.sqrt()?)?.broadcast_mul(w)
}

/// `x @ w^T` over the last dim; as one 2-D matmul, because a broadcast batched
/// matmul's backward pass is several times slower on the CPU.
fn linear(x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    let mut dims = x.dims().to_vec();
    let last = dims.pop().unwrap_or(1);
    let rows: usize = dims.iter().product();
    dims.push(w.dim(0)?);
    x.reshape((rows, last))?.matmul(&w.t()?)?.reshape(dims)
}

/// cos/sin `[T, head_dim]` (angles duplicated, rotate-half layout).
pub fn rope_tables(cfg: &LladaConfig, t: usize, dev: &Device) -> candle_core::Result<(Tensor, Tensor)> {
    let hd = cfg.head_dim;
    let inv: Vec<f32> = (0..hd / 2).map(|i| (1.0 / cfg.rope_theta.powf(2.0 * i as f64 / hd as f64)) as f32).collect();
    let mut cos = Vec::with_capacity(t * hd);
    let mut sin = Vec::with_capacity(t * hd);
    for p in 0..t {
        // [angles, angles]: the rotate-half layout
        for _ in 0..2 {
            for &f in &inv {
                let a = p as f32 * f;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
    }
    Ok((Tensor::from_vec(cos, (t, hd), dev)?, Tensor::from_vec(sin, (t, hd), dev)?))
}

fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
    let hd = x.dim(D::Minus1)?;
    let x1 = x.narrow(D::Minus1, 0, hd / 2)?;
    let x2 = x.narrow(D::Minus1, hd / 2, hd / 2)?;
    let rot = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
    x.broadcast_mul(cos)? + rot.broadcast_mul(sin)?
}

/// Final-norm hidden states `[B, T, d]` of a padded batch `ids` `[B, T]`;
/// `key_bias` `[B, 1, 1, T]` is 0 for real tokens and -1e9 for padding, so a
/// real token's output equals the unpadded inference forward.
pub fn forward(w: &Weights, cfg: &LladaConfig, ids: &Tensor, key_bias: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
    let (b, t) = ids.dims2()?;
    let (nh, nkv, hd, d) = (cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.d_model);
    let eps = cfg.rms_norm_eps;
    let mut x = w.w("wte.weight")?.index_select(&ids.flatten_all()?, 0)?.reshape((b, t, d))?;
    for l in 0..cfg.n_layers {
        let p = |n: &str| format!("blocks.{l}.{n}");
        let a = rms(&x, w.w(&p("attn_norm.weight"))?, eps)?;
        let q = linear(&a, w.w(&p("q_proj.weight"))?)?.reshape((b, t, nh, hd))?.transpose(1, 2)?;
        let k = linear(&a, w.w(&p("k_proj.weight"))?)?.reshape((b, t, nkv, hd))?.transpose(1, 2)?;
        let v = linear(&a, w.w(&p("v_proj.weight"))?)?.reshape((b, t, nkv, hd))?.transpose(1, 2)?.contiguous()?;
        let q = rope(&q.contiguous()?, cos, sin)?;
        let k = rope(&k.contiguous()?, cos, sin)?;
        let scores = (q.matmul(&k.t()?)? / (hd as f64).sqrt())?.broadcast_add(key_bias)?;
        let probs = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let o = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, t, nh * hd))?;
        x = (x + linear(&o, w.w(&p("attn_out.weight"))?)?)?;
        let f = rms(&x, w.w(&p("ff_norm.weight"))?, eps)?;
        let g = linear(&f, w.w(&p("ff_proj.weight"))?)?.silu()?;
        let u = linear(&f, w.w(&p("up_proj.weight"))?)?;
        x = (x + linear(&(g * u)?, w.w(&p("ff_out.weight"))?)?)?;
    }
    rms(&x, w.w("ln_f.weight")?, eps)
}

/// Cross-entropy `[N]` of each of `hidden`'s rows `[N, d]` against `targets`
/// (indices into the head slice starting at `offset` of width `width`).
pub fn ce(w: &Weights, hidden: &Tensor, targets: &[u32], offset: usize, width: usize) -> candle_core::Result<Tensor> {
    let head = w.w("ff_out.weight")?.narrow(0, offset, width)?;
    let logits = hidden.matmul(&head.t()?)?;
    let lsm = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
    let idx = Tensor::from_slice(targets, (targets.len(), 1), hidden.device())?;
    lsm.gather(&idx, 1)?.neg()?.squeeze(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::VarBuilder;
    use unmask::model::Llada;

    /// The training forward on a padded batch equals the inference model on
    /// each unpadded sequence.
    #[test]
    fn training_forward_matches_inference() {
        let dev = Device::Cpu;
        let cfg = LladaConfig {
            d_model: 32,
            n_heads: 4,
            n_kv_heads: 4,
            head_dim: 8,
            n_layers: 2,
            mlp_hidden: 48,
            vocab: 50,
            rope_theta: 10000.0,
            rms_norm_eps: 1e-5,
            weight_tying: false,
        };
        let map = VarMap::new();
        init(&map, &cfg, &mut crate::init::rng(1, 1), &dev).unwrap();
        // larger weights than the init, so differences would show
        for v in map.all_vars() {
            let t = v.as_tensor();
            if t.rank() == 2 {
                v.set(&Tensor::randn(0f32, 0.3, t.shape(), &dev).unwrap()).unwrap();
            }
        }
        let w = Weights::from_varmap(&map).unwrap();
        let infer = Llada::load(&cfg, VarBuilder::from_varmap(&map, DType::F32, &dev)).unwrap();
        let a: Vec<u32> = vec![1, 5, 9, 13, 2, 40, 7];
        let b: Vec<u32> = vec![3, 4, 22];
        let t = a.len();
        let mut ids = a.clone();
        ids.extend(b.iter().copied().chain(std::iter::repeat_n(0, t - b.len())));
        let ids = Tensor::from_vec(ids, (2, t), &dev).unwrap();
        let bias: Vec<f32> = (0..2 * t).map(|i| if i < t || i - t < b.len() { 0.0 } else { -1e9 }).collect();
        let bias = Tensor::from_vec(bias, (2, 1, 1, t), &dev).unwrap();
        let (cos, sin) = rope_tables(&cfg, t, &dev).unwrap();
        let h = forward(&w, &cfg, &ids, &bias, &cos, &sin).unwrap();
        for (i, seq) in [a, b].iter().enumerate() {
            let want = infer.hidden(seq).unwrap();
            let got = h.get(i).unwrap().narrow(0, 0, seq.len()).unwrap();
            let d = (got - want).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
            assert!(d < 1e-4, "sequence {i}: max diff {d}");
        }
    }
}
