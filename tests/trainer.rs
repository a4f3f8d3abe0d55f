//! `unmask-train` is deterministic: the same command and seed write the same
//! bytes, so the embedded model's numbers belong to its recipe, not to a run.
//! Every phase runs here for a few steps (transformer, VQ-VAE joint, decoder
//! polish, robust encoder), from random initial weights, twice (on two CPU
//! threads and on one: the result does not depend on the thread count), and
//! once more from another seed, which must differ (so the comparison can fail).

mod common;

use std::path::Path;
use std::process::Command;

/// Runs every phase for a few steps from `seed` into a scratch bundle.
fn train(name: &str, seed: u64, threads: &str) -> std::path::PathBuf {
    let out = common::scratch(name);
    let seed = seed.to_string();
    #[rustfmt::skip]
    let args = [
        "--out", out.to_str().unwrap(), "--seed", &seed,
        "--lm-steps", "6", "--lm-batch", "4",
        "--vq-steps", "4", "--vq-polish-steps", "2", "--vq-robust-steps", "2", "--vq-batch", "2",
    ];
    let run = Command::new(env!("CARGO_BIN_EXE_unmask-train")).args(args).env("RAYON_NUM_THREADS", threads).output().expect("run unmask-train");
    assert!(run.status.success(), "unmask-train {args:?} failed: {}", String::from_utf8_lossy(&run.stderr));
    out
}

fn bytes(dir: &Path, file: &str) -> Vec<u8> {
    std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
}

const WEIGHTS: [&str; 2] = ["model.safetensors", "vqvae/diffusion_pytorch_model.safetensors"];

#[test]
fn the_same_seed_trains_the_same_bytes_and_another_seed_does_not() {
    let a = train("train-a", 7, "2");
    let b = train("train-b", 7, "1");
    let c = train("train-c", 8, "2");
    for file in WEIGHTS.iter().chain(&["config.json", "unmask.json", "tokenizer.json", "vqvae/config.json"]) {
        assert!(bytes(&a, file) == bytes(&b, file), "two runs from seed 7 (2 threads, 1 thread) wrote different {file}");
    }
    for file in WEIGHTS {
        assert!(bytes(&a, file) != bytes(&c, file), "seeds 7 and 8 wrote the same {file}: the seed is not used");
    }
    for d in [a, b, c] {
        let _ = std::fs::remove_dir_all(d);
    }
}
