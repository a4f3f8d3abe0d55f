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
    let short = &ids[12..];
    let seq_ms = common::median_ms(3, || {
        model.hidden(&ids).expect("forward");
        model.hidden(short).expect("forward");
    });
    let batch_ms = common::median_ms(3, || {
        model.hidden_batch(&[&ids, short]).expect("forward");
    });
    println!("two branches: one after the other {seq_ms:.1} ms, batched {batch_ms:.1} ms, ratio x{:.2}", seq_ms / batch_ms);
    if std::env::args().any(|a| a == "batch-only") {
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
