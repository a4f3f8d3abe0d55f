//! The cases issue 29 added to the GPU bench: the forward's parts
//! (projections alone, attention alone fused and reference), the quantized
//! forward against bf16, the agreement with PyTorch on the same weights, and
//! the VQ-VAE at 1024^2. Each prints the fields of one JSON object.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use unmask::model::attention::{self, check, Spans};
use unmask::model::random::random_llada_weights;
use unmask::model::{Llada, LladaConfig};

fn median(mut f: impl FnMut(), device: &Device, reps: usize) -> f64 {
    f();
    device.synchronize().expect("sync");
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            device.synchronize().expect("sync");
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[reps / 2]
}

fn randn(rows: usize, cols: usize, dtype: DType, device: &Device) -> Tensor {
    Tensor::randn(0f32, 1.0, (rows, cols), device).and_then(|t| t.to_dtype(dtype)).expect("randn")
}

/// One layer's attention at `n` tokens with the config's heads: fused and
/// reference (scores materialised), their TFLOP/s, the fused output's error
/// against an f32 reference; the partial (32 rows) and packed (two
/// branches) shapes; and the self-check of every head dim's kernel.
pub fn attention(cfg: &LladaConfig, device: &Device, n: usize) -> String {
    let (h, kv, hd) = (cfg.n_heads, cfg.n_kv_heads, cfg.head_dim);
    let dt = if device.is_cuda() { DType::BF16 } else { DType::F32 };
    let q = randn(n, h * hd, dt, device);
    let k = randn(n, kv * hd, dt, device);
    let v = randn(n, kv * hd, dt, device);
    let scale = 1.0 / (hd as f64).sqrt();
    let full = Spans::packed(&[n], &[n]);
    let flop = |rows: usize, keys: usize| 4.0 * rows as f64 * keys as f64 * (h * hd) as f64;
    let reference_ms = median(|| drop(attention::reference(&q, &k, &v, &full, h, kv, hd, scale).expect("reference")), device, 5);
    let mut out = format!("\"tokens\": {n}, \"heads\": {h}, \"head_dim\": {hd}, \"reference_ms\": {reference_ms:.3}, \"reference_tflops\": {:.1}", flop(n, n) / reference_ms / 1e9);
    let fused = |q: &Tensor, s: &Spans| attention::flash::fused(q, &k, &v, s, h, kv, hd, scale as f32);
    match fused(&q, &full) {
        Err(e) => out += &format!(", \"fused\": \"{}\"", e.to_string().lines().next().unwrap_or_default().replace('"', "'")),
        Ok(got) => {
            let up = |t: &Tensor| t.to_dtype(DType::F32).expect("f32");
            let want = attention::reference(&up(&q), &up(&k), &up(&v), &full, h, kv, hd, scale).expect("f32 reference");
            let a = check::agreement(&up(&got).flatten_all().unwrap().to_vec1().unwrap(), &want.flatten_all().unwrap().to_vec1().unwrap());
            let fused_ms = median(|| drop(fused(&q, &full).expect("fused")), device, 5);
            // a text-cache step: 32 rows against every key
            let q32 = q.narrow(0, 0, 32).unwrap().contiguous().unwrap();
            let part = Spans::packed(&[32], &[n]);
            let partial_ms = median(|| drop(fused(&q32, &part).expect("partial")), device, 5);
            // two guidance branches packed: n and n - 112 keys (a shorter prompt)
            let packed = Spans::packed(&[n - 112 - n / 2, n / 2], &[n - 112 - n / 2, n / 2]);
            let qp = q.narrow(0, 0, n - 112).unwrap().contiguous().unwrap();
            let packed_ms = median(|| drop(fused(&qp, &packed).expect("packed")), device, 5);
            out += &format!(
                ", \"fused_ms\": {fused_ms:.3}, \"fused_tflops\": {:.1}, \"speedup\": {:.2}, \"fused_rel_err\": {:.2e}, \"partial32_ms\": {partial_ms:.3}, \"packed2_ms\": {packed_ms:.3}",
                flop(n, n) / fused_ms / 1e9,
                reference_ms / fused_ms,
                a.rel_err
            );
        }
    }
    // every head dim's module against the reference
    let mut dims = Vec::new();
    for d in (16..=256).step_by(16) {
        let f = |q: &Tensor, k: &Tensor, v: &Tensor, s: &Spans, h, kv, d, sc: f64| attention::flash::fused(q, k, v, s, h, kv, d, sc as f32);
        let r = check::run_cases(&f, device, DType::BF16, d);
        dims.push(format!("\"{d}\": \"{}\"", r.err().unwrap_or_else(|| "ok".into()).replace('"', "'")));
    }
    out + &format!(", \"self_check\": {{{}}}", dims.join(", "))
}

/// The seven projections of every layer as plain matmuls at `n` rows
/// (weights of one layer reused: the same FLOPs and shapes).
pub fn projections(cfg: &LladaConfig, device: &Device, n: usize) -> String {
    let dt = if device.is_cuda() { DType::BF16 } else { DType::F32 };
    let (d, m, kv) = (cfg.d_model, cfg.mlp_hidden, cfg.n_kv_heads * cfg.head_dim);
    let x = randn(n, d, dt, device);
    let xm = randn(n, m, dt, device);
    let ws: Vec<(Tensor, bool)> = [(d, d, false), (kv, d, false), (kv, d, false), (d, d, false), (m, d, false), (m, d, false), (d, m, true)]
        .iter()
        .map(|&(o, i, wide)| (randn(o, i, dt, device), wide))
        .collect();
    let ms = median(
        || {
            for _ in 0..cfg.n_layers {
                for (w, wide) in &ws {
                    let input = if *wide { &xm } else { &x };
                    drop(input.matmul(&w.t().unwrap()).unwrap());
                }
            }
        },
        device,
        3,
    );
    let flop = 2.0 * n as f64 * (cfg.parameter_count() as f64 - 2.0 * (cfg.vocab * d) as f64);
    format!("\"tokens\": {n}, \"projections_ms\": {ms:.2}, \"projections_tflops\": {:.0}", flop / ms / 1e9)
}

/// The whole forward at `n` tokens with the fused attention and with the
/// reference one, same model.
pub fn forward_both(model: &mut Llada, device: &Device, n: usize) -> String {
    let ids: Vec<u32> = (0..n as u32).map(|i| (i * 7919) % model.config().vocab as u32).collect();
    let kind = model.attention_kind();
    let fused_ms = median(|| drop(model.hidden(&ids).expect("forward")), device, 5);
    model.set_fused_attention(false);
    let reference_ms = median(|| drop(model.hidden(&ids).expect("forward")), device, 3);
    model.set_fused_attention(true);
    format!("\"tokens\": {n}, \"attention\": \"{kind}\", \"median_ms\": {fused_ms:.2}, \"reference_attention_ms\": {reference_ms:.2}")
}

/// Every tensor of `cfg` from `vb`, by name.
fn tensors(cfg: &LladaConfig, vb: &VarBuilder) -> HashMap<String, Tensor> {
    cfg.expected_tensors().into_iter().map(|(name, shape)| {
        let t = vb.get(shape.as_slice(), &name).expect("tensor");
        (name, t)
    }).collect()
}

/// The forward of `layers` layers of the config's widths at `n` tokens in
/// bf16 and with q8_0 and q4k projections (quantized here from the same f32
/// weights): time, ratio to bf16, and the error of the final hidden states.
pub fn quantized(cfg: &LladaConfig, device: &Device, n: usize, layers: usize, dir: &Path) -> String {
    let cfg = LladaConfig { n_layers: layers, vocab: 9216, ..cfg.clone() };
    let dt = if device.is_cuda() { DType::BF16 } else { DType::F32 };
    let vb = random_llada_weights(&cfg, DType::F32, &Device::Cpu).expect("weights");
    std::fs::create_dir_all(dir).expect("scratch dir");
    let dense = dir.join("dense.safetensors");
    candle_core::safetensors::save(&tensors(&cfg, &vb), &dense).expect("save");
    // SAFETY: the file was just written by this process and is not changed while mapped.
    let dvb = unsafe { VarBuilder::from_mmaped_safetensors(&[&dense], dt, device) }.expect("load dense");
    let base = Llada::load(&cfg, dvb).expect("dense model");
    let ids: Vec<u32> = (0..n as u32).map(|i| (i * 7919) % cfg.vocab as u32).collect();
    let bf16_ms = median(|| drop(base.hidden(&ids).expect("forward")), device, 5);
    let want = base.hidden(&ids).unwrap().to_dtype(DType::F32).unwrap();
    let mut out = format!("\"layers\": {layers}, \"tokens\": {n}, \"dense_ms\": {bf16_ms:.2}");
    for (name, q) in [("q8_0", unmask::quantize::QuantType::Q8_0), ("q4k", unmask::quantize::QuantType::Q4K)] {
        let path = dir.join(format!("{name}.gguf"));
        let t = Instant::now();
        unmask::quantize::write_gguf(&cfg, &vb, &path, q).expect("quantize");
        let quantize_s = t.elapsed().as_secs_f64();
        let model = Llada::load_gguf(&cfg, &path, device, dt).expect("gguf model");
        let ms = median(|| drop(model.hidden(&ids).expect("forward")), device, 5);
        let got = model.hidden(&ids).unwrap().to_dtype(DType::F32).unwrap();
        let err = ((&got - &want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap())
            / want.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        // one 32-row pass (the quantized kernels' side of DENSE_ROWS)
        let small_ms = median(|| drop(model.hidden(&ids[..32]).expect("forward")), device, 5);
        out += &format!(", \"{name}_ms\": {ms:.2}, \"{name}_ratio\": {:.3}, \"{name}_rel_err\": {err:.3e}, \"{name}_32rows_ms\": {small_ms:.2}, \"{name}_quantize_s\": {quantize_s:.1}", ms / bf16_ms);
    }
    let _ = std::fs::remove_dir_all(dir);
    out
}

/// A random model of the config's widths with `layers` layers, written as a
/// safetensors file in `dir` (bf16) for `gpu_torch.py agreement` to load;
/// our final hidden states (f32, raw little-endian) and top-1 ids over the
/// whole vocabulary beside it.
pub fn agreement(cfg: &LladaConfig, device: &Device, n: usize, layers: usize, dir: &Path) -> String {
    let cfg = LladaConfig { n_layers: layers, ..cfg.clone() };
    let dt = if device.is_cuda() { DType::BF16 } else { DType::F32 };
    std::fs::create_dir_all(dir).expect("dir");
    let vb = random_llada_weights(&cfg, dt, device).expect("weights");
    let path = dir.join("model.safetensors");
    candle_core::safetensors::save(&tensors(&cfg, &vb), &path).expect("save");
    drop(vb);
    // SAFETY: written above by this process, not changed while mapped.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&path], dt, device) }.expect("load");
    let model = Llada::load(&cfg, vb).expect("model");
    let ids: Vec<u32> = (0..n as u32).map(|i| (i * 7919) % cfg.vocab as u32).collect();
    let h = model.hidden(&ids).expect("forward");
    let mut top = Vec::with_capacity(n);
    for r0 in (0..n).step_by(512) {
        let rows: Vec<usize> = (r0..(r0 + 512).min(n)).collect();
        let l = model.head(&h, Some(&rows), 0..cfg.vocab).expect("head");
        top.extend(l.argmax(1).unwrap().to_vec1::<u32>().unwrap());
    }
    let hf: Vec<f32> = h.to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let bytes: Vec<u8> = hf.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(dir.join("hidden.f32"), bytes).expect("hidden");
    std::fs::write(dir.join("top1.json"), serde_json::to_string(&top).unwrap()).expect("top1");
    format!("\"layers\": {layers}, \"tokens\": {n}, \"dir\": \"{}\", \"attention\": \"{}\"", dir.display(), model.attention_kind())
}

/// The release's VQ-VAE (the 8B preset's config, random weights, f32):
/// decode of a `side` x `side` code grid, or encode of the image that size
/// makes, median of 3.
pub fn vq(decode: bool, device: &Device, side: usize) -> String {
    let (_, cfg, _) = unmask::plan::lumina_dimoo_8b();
    let vb = unmask::model::random::random_vq_weights(&cfg, DType::F32, device).expect("random VQ weights");
    let vq = unmask::model::VqModel::load(&cfg, vb).expect("VQ-VAE");
    let px = side * vq.factor();
    let ms = if decode {
        let grid = unmask::model::CodeGrid { height: side, width: side, codes: (0..side * side).map(|i| (i * 31 % 8192) as u32).collect() };
        median(|| drop(vq.decode(&grid).expect("decode")), device, 3)
    } else {
        let img = unmask::model::Rgb { width: px, height: px, data: (0..px * px * 3).map(|i| (i * 7 % 251) as u8).collect() };
        median(|| drop(vq.encode(&img).expect("encode")), device, 3)
    };
    format!("\"grid\": {side}, \"pixels\": {px}, \"ms\": {ms:.1}")
}

/// Decodes `grid` (the text-to-image result) with the release's VQ-VAE, so
/// the case's peak memory includes the step that makes pixels.
pub fn decode_after(grid: &unmask::model::CodeGrid, device: &Device) -> String {
    let (_, cfg, _) = unmask::plan::lumina_dimoo_8b();
    let vb = unmask::model::random::random_vq_weights(&cfg, DType::F32, device).expect("random VQ weights");
    let vq = unmask::model::VqModel::load(&cfg, vb).expect("VQ-VAE");
    let t = Instant::now();
    let codes = unmask::model::CodeGrid { codes: grid.codes.iter().map(|&c| c % 8192).collect(), ..grid.clone() };
    vq.decode(&codes).expect("decode");
    device.synchronize().expect("sync");
    format!("\"decode_ms\": {:.1}", t.elapsed().as_secs_f64() * 1e3)
}
