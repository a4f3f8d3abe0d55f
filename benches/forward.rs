//! One transformer forward on CPU at the mid-size config, 1100 tokens, random
//! weights; PyTorch eager (f32, same thread count) as the baseline in the same
//! run when `python3 -c "import torch"` works.
//!
//! `cargo bench --bench forward`

mod common;

use std::process::Command;

fn main() {
    let tokens = 1100;
    let model = common::mid_model();
    let ids: Vec<u32> = (0..tokens as u32).map(|i| (i * 7919) % 9216).collect();
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let ms = common::median_ms(5, || {
        model.hidden(&ids).expect("forward");
    });
    println!("unmask (candle f32, {threads} threads): forward of {tokens} tokens: {ms:.1} ms, {:.0} tokens/s", tokens as f64 / ms * 1e3);
    // two guidance branches (the second 12 tokens shorter): one after the
    // other vs one packed forward (`-- batch-only` stops after this)
    // (`-- quant-only`: skips to the quantized comparison below)
    let quant_only = std::env::args().any(|a| a == "quant-only");
    if !quant_only {
        let short = &ids[12..];
        let seq_ms = common::median_ms(3, || {
            model.hidden(&ids).expect("forward");
            model.hidden(short).expect("forward");
        });
        let batch_ms = common::median_ms(3, || {
            model.hidden_batch(&[&ids, short]).expect("forward");
        });
        println!("two branches: one after the other {seq_ms:.1} ms, batched {batch_ms:.1} ms, ratio x{:.2}", seq_ms / batch_ms);
    }
    if std::env::args().any(|a| a == "batch-only") {
        return;
    }
    // issue 18: the same weights quantized (GGUF, QMatMul on the CPU)
    let cfg = common::mid_config();
    let vb = unmask::model::random::random_llada_weights(&cfg, candle_core::DType::F32, &candle_core::Device::Cpu).expect("weights");
    let dense = unmask::model::Llada::load(&cfg, vb.clone()).expect("model");
    let f32_ms = common::median_ms(3, || drop(dense.hidden(&ids).expect("forward")));
    let mut line = format!("mid-size forward of {tokens} tokens: f32 {f32_ms:.0} ms");
    for q in [unmask::quantize::QuantType::Q8_0, unmask::quantize::QuantType::Q4K] {
        let path = std::env::temp_dir().join(format!("unmask-bench-{}-{q:?}.gguf", std::process::id()));
        unmask::quantize::write_gguf(&cfg, &vb, &path, q).expect("quantize");
        let m = unmask::model::Llada::load_gguf(&cfg, &path, &candle_core::Device::Cpu, candle_core::DType::F32).expect("load");
        let _ = std::fs::remove_file(&path);
        let ms = common::median_ms(3, || drop(m.hidden(&ids).expect("forward")));
        line += &format!(", {q:?} {ms:.0} ms (x{:.2} of f32's time)", ms / f32_ms);
    }
    println!("{line}");
    if quant_only {
        return;
    }

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/forward_torch.py");
    match Command::new("python3").arg(script).arg(tokens.to_string()).arg(threads.to_string()).output() {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            print!("{text}");
            if let Some(torch_ms) = text.lines().find_map(|l| l.strip_prefix("torch_ms ")).and_then(|v| v.trim().parse::<f64>().ok()) {
                println!("ratio unmask / torch = {:.2} (below 1: unmask is faster)", ms / torch_ms);
            }
        }
        Ok(o) => println!("PyTorch baseline skipped: {}", String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("")),
        Err(e) => println!("PyTorch baseline skipped: {e}"),
    }
}
