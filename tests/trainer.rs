//! `unmask-train` is deterministic: the same command and seed write the same
//! bytes, so the embedded model's numbers belong to its recipe, not to a run.
//! Every phase runs here for a few steps (transformer, VQ-VAE joint, decoder
//! polish, robust encoder), from random initial weights, twice (the two
//! halves at once on one thread each, as the recipe runs, and one after the
//! other on two threads: the result depends on neither), and once more from
//! another seed, which must differ (so the comparison can fail).

mod common;

use std::path::Path;
use std::process::Command;

/// Runs every phase for a few steps from `seed` into a scratch bundle.
fn train(name: &str, seed: u64, how: &[&str]) -> std::path::PathBuf {
    let out = common::scratch(name);
    let seed = seed.to_string();
    #[rustfmt::skip]
    let args = [
        "--out", out.to_str().unwrap(), "--seed", &seed,
        "--lm-steps", "6", "--lm-batch", "4",
        "--vq-steps", "4", "--vq-polish-steps", "2", "--vq-robust-steps", "2", "--vq-batch", "2",
    ];
    let run = Command::new(env!("CARGO_BIN_EXE_unmask-train")).args(args).args(how).output().expect("run unmask-train");
    assert!(run.status.success(), "unmask-train {args:?} failed: {}", String::from_utf8_lossy(&run.stderr));
    out
}

fn bytes(dir: &Path, file: &str) -> Vec<u8> {
    std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
}

const WEIGHTS: [&str; 2] = ["model.safetensors", "vqvae/diffusion_pytorch_model.safetensors"];

#[test]
fn the_same_seed_trains_the_same_bytes_and_another_seed_does_not() {
    let a = train("train-a", 7, &[]);
    let b = train("train-b", 7, &["--one-at-a-time", "--threads", "2"]);
    let c = train("train-c", 8, &[]);
    for file in WEIGHTS.iter().chain(&["config.json", "unmask.json", "tokenizer.json", "vqvae/config.json"]) {
        assert!(bytes(&a, file) == bytes(&b, file), "two runs from seed 7 (halves at once, one after the other on 2 threads) wrote different {file}");
    }
    for file in WEIGHTS {
        assert!(bytes(&a, file) != bytes(&c, file), "seeds 7 and 8 wrote the same {file}: the seed is not used");
    }
    for d in [a, b, c] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// The halves train at once: when one fails (here the VQ-VAE, from a bundle
/// that does not exist), the other stops at its next step instead of
/// training on for its whole schedule, and the error names the file.
#[test]
fn a_failing_half_stops_the_other() {
    let out = common::scratch("train-fail");
    let missing = out.join("no-such-bundle");
    #[rustfmt::skip]
    let args = [
        "--out", out.to_str().unwrap(), "--lm-steps", "1000000", "--lm-batch", "4",
        "--vq-from", missing.to_str().unwrap(),
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_unmask-train"))
        .args(args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run unmask-train");
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(120) {
            let _ = child.kill();
            panic!("the transformer kept training after the VQ-VAE half failed");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr).expect("read stderr");
    assert!(!status.success(), "a missing --vq-from bundle must fail the run");
    let last = stderr.lines().last().unwrap_or("");
    assert!(last.starts_with("error:") && last.contains("no-such-bundle"), "the error names the missing file: {last}");
    assert!(!out.join("model.safetensors").exists(), "no bundle is written after a failure");
    let _ = std::fs::remove_dir_all(out);
}

/// A batch of nothing (or of more than memory) is refused by name before
/// any training starts; it used to panic inside a training thread.
#[test]
fn batch_sizes_out_of_range_are_refused_by_flag() {
    for (flag, value) in [("--vq-batch", "0"), ("--lm-batch", "0"), ("--lm-batch", "99999")] {
        let out = common::scratch("train-batch");
        let run = Command::new(env!("CARGO_BIN_EXE_unmask-train")).args(["--out", out.to_str().unwrap(), flag, value]).output().expect("run unmask-train");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "{flag} {value} was accepted");
        assert!(stderr.contains(flag) && stderr.contains("1..=1024") && !stderr.contains("panicked"), "{flag} {value}: {stderr}");
        let _ = std::fs::remove_dir_all(out);
    }
}
