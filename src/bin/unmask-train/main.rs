//! `unmask-train`: trains the embedded default model on the procedural shapes
//! world (the LLaDA transformer on designed codes and, at the same time on
//! another thread, the VQ-VAE that writes and draws them) and writes a bundle
//! in the released layout. Deterministic from `--seed`; checkpoints after
//! every chunk of steps, so an interrupted run resumes with `--resume`.

mod cell_vq;
mod data;
mod init;
mod lm;
mod lm_train;
mod tokenizer;
mod vary;
mod vq_phases;
mod vq_train;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::Device;
use candle_nn::VarMap;
use clap::Parser;
use unmask::model::LladaConfig;
use unmask::sampler::Prompter;
use unmask::{Error, Result};

#[derive(Parser)]
#[command(name = "unmask-train", about = "Train the embedded shapes model")]
struct Args {
    /// Bundle folder to write
    #[arg(long, default_value = "models/unmask-shapes")]
    out: PathBuf,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// VQ-VAE steps (encoder and decoder together, supervised by the scene;
    /// a run at 1100 drew worse: read-back 72% of eval scenes instead of 96%;
    /// seed 7 at 1400 read back 81.5%)
    #[arg(long, default_value_t = 3000)]
    vq_steps: usize,
    /// Steps of decoder-only training after that, edges weighted (at 600
    /// the decoder read back 88% of eval scenes instead of 96%). The VQ-VAE
    /// half runs beside the transformer, so its steps cost no wall time
    /// while it finishes first
    #[arg(long, default_value_t = 3000)]
    vq_polish_steps: usize,
    /// Steps of encoder-only training after that, on drawings that vary as
    /// real ones do (sizes, offsets, edges, colour, JPEG, resizing)
    #[arg(long, default_value_t = 2500)]
    vq_robust_steps: usize,
    /// Start the VQ-VAE from this bundle's (`vqvae/`) and run only the robust
    /// encoder phase on it
    #[arg(long)]
    vq_from: Option<PathBuf>,
    /// Scenes per VQ-VAE step (1 to 1024)
    #[arg(long, default_value_t = 8, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024))]
    vq_batch: usize,
    #[arg(long, default_value_t = 3e-3)]
    vq_lr: f64,
    /// VQ-VAE channels per level, comma-separated (5 levels: 16 px per code)
    #[arg(long, value_delimiter = ',', default_value = "8,16,32,32,64")]
    vq_channels: Vec<usize>,
    /// Transformer steps (at 6200 the run of seed 7 did not bind attributes
    /// to positions: colour 76.7%, edits 9.7%); the run's critical path
    #[arg(long, default_value_t = 12000)]
    lm_steps: usize,
    /// Sequences per transformer step (1 to 1024)
    #[arg(long, default_value_t = 32, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024))]
    lm_batch: usize,
    /// Peak learning rate of the transformer (warm-up, then cosine decay)
    #[arg(long, default_value_t = 2e-3)]
    lm_lr: f64,
    /// Adam's beta2 for the transformer. 0.95 learned faster early in the
    /// earlier recipe (docs/experiments/lm-binding.md); with one code per cell
    /// and 0.95, one-object text-to-image passed the "right cell, unknown
    /// object" floor (image loss 0.43) within 450 steps
    #[arg(long, default_value_t = 0.95)]
    lm_beta2: f64,
    #[arg(long, default_value_t = 128)]
    d_model: usize,
    #[arg(long, default_value_t = 4)]
    layers: usize,
    /// Answer positions during training (and the bundle's default gen length)
    #[arg(long, default_value_t = 8)]
    gen_length: usize,
    /// Continue from the checkpoints in OUT/checkpoints
    #[arg(long)]
    resume: bool,
    /// Take the transformer from this bundle instead of training one: its
    /// image targets are the designed codes, which the VQ-VAE phases keep, so
    /// the two halves train independently (a VQ-VAE-only retrain)
    #[arg(long)]
    keep_transformer: Option<PathBuf>,
    /// CPU threads for each half's math (the transformer and the VQ-VAE
    /// train at once, each on its own thread). One is the fastest here: a
    /// transformer step took 0.17-0.18 s on one thread and 0.22 s on two
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Train the transformer, then the VQ-VAE, instead of both at once
    /// (the same bytes; half the cores)
    #[arg(long)]
    one_at_a_time: bool,
    /// Only measure the trained VQ-VAE: reconstruct N fresh scenes, report
    /// how often the detector reads them back right, save a sheet to OUT/vq-check.png
    #[arg(long)]
    check_vq: Option<usize>,
}

fn err(e: impl std::fmt::Display) -> Error {
    Error::invalid(e.to_string())
}

fn lm_config(a: &Args, text_vocab: usize, codebook: usize) -> LladaConfig {
    LladaConfig {
        d_model: a.d_model,
        n_heads: 4,
        n_kv_heads: 4,
        head_dim: a.d_model / 4,
        n_layers: a.layers,
        mlp_hidden: a.d_model * 3,
        vocab: text_vocab + codebook,
        rope_theta: 10000.0,
        rms_norm_eps: 1e-5,
        weight_tying: false,
    }
}

/// Warm-up then cosine decay.
fn lr_at(step: usize, total: usize, peak: f64) -> f64 {
    let warm = (total / 20).max(1);
    if step < warm {
        peak * (step + 1) as f64 / warm as f64
    } else {
        let t = (step - warm) as f64 / (total - warm).max(1) as f64;
        peak * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))
    }
}

struct Ckpt {
    dir: PathBuf,
}

impl Ckpt {
    fn path(&self, stage: &str) -> PathBuf {
        self.dir.join(format!("{stage}.safetensors"))
    }
    fn step_path(&self, stage: &str) -> PathBuf {
        self.dir.join(format!("{stage}.step"))
    }
    fn load(&self, stage: &str, varmap: &mut VarMap) -> Result<usize> {
        let p = self.path(stage);
        if !p.exists() {
            return Ok(0);
        }
        varmap.load(&p).map_err(err)?;
        Ok(self.load_step(stage))
    }
    /// Steps done in `stage` (also kept for phases that train part of
    /// another stage's weights).
    fn load_step(&self, stage: &str) -> usize {
        std::fs::read_to_string(self.step_path(stage)).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
    }
    fn save_step(&self, stage: &str, step: usize) -> Result<()> {
        std::fs::write(self.step_path(stage), step.to_string()).map_err(|e| Error::io(self.step_path(stage), e))
    }
    fn save(&self, stage: &str, varmap: &VarMap, step: usize) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        varmap.save(self.path(stage)).map_err(err)?;
        self.save_step(stage, step)
    }
}

fn main() {
    unmask::alloc::keep_freed_buffers();
    let a = Args::parse();
    unmask::threads::set(a.threads);
    if let Err(e) = run(a) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// Ends a half between two steps once the other half has failed.
fn check_stop(stop: &AtomicBool) -> Result<()> {
    if stop.load(Ordering::Relaxed) {
        return Err(Error::invalid("stopped: the other half of the training failed (its error follows)"));
    }
    Ok(())
}

/// Runs `half` (a panic counts as a failure), tells the other half to stop
/// if it fails, and says whether this failure was the first (the cause, not
/// a "stopped" that followed it).
fn half<T>(stop: &AtomicBool, half: impl FnOnce() -> Result<T>) -> (Result<T>, bool) {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(half)).unwrap_or_else(|_| Err(Error::invalid("a training thread panicked")));
    let first = r.is_err() && !stop.swap(true, Ordering::Relaxed);
    (r, first)
}

fn run(a: Args) -> Result<()> {
    let started = Instant::now();
    let dev = Device::Cpu;
    std::fs::create_dir_all(a.out.join("vqvae")).map_err(|e| Error::io(&a.out, e))?;
    let ckpt = Ckpt { dir: a.out.join("checkpoints") };

    // 1. tokenizer
    let (tok, text_vocab) = tokenizer::build().map_err(err)?;
    tokenizer::save(&tok, &a.out.join("tokenizer.json")).map_err(err)?;
    let vq_cfg = cell_vq::config(&a.vq_channels);
    let special = tokenizer::special_tokens(text_vocab, vq_cfg.num_vq_embeddings as u32);
    eprintln!("tokenizer: {text_vocab} text tokens");

    if let Some(n) = a.check_vq {
        let mut vq_map = VarMap::new();
        let vq = cell_vq::build(&vq_cfg, &vq_map, &mut init::rng(a.seed, 2), &dev).map_err(err)?;
        if ckpt.load("vq", &mut vq_map)? == 0 {
            return Err(Error::invalid(format!("no VQ-VAE checkpoint in {}: train first", ckpt.dir.display())));
        }
        return check_vq(&vq, n, &a.out.join("vq-check.png"));
    }

    // 2. The two halves. The transformer's image targets are the designed
    // codes of the scenes (cell_vq.rs), so it needs no trained VQ-VAE, and
    // the two train independently: at once on two threads (one each), or one
    // after the other with --one-at-a-time; the same bytes either way.
    let cfg = lm_config(&a, text_vocab as usize, vq_cfg.num_vq_embeddings);
    let mut lm_map = VarMap::new();
    lm::init(&lm_map, &cfg, &mut init::rng(a.seed, 1), &dev).map_err(err)?;
    let lm_start = if a.resume { ckpt.load("lm", &mut lm_map)? } else { 0 };
    let prompter = Prompter::new(&tok, special);
    let mut vq_map = VarMap::new();
    let vq = cell_vq::build(&vq_cfg, &vq_map, &mut init::rng(a.seed, 2), &dev).map_err(err)?;
    let vq_start = if a.resume && a.vq_from.is_none() { ckpt.load("vq", &mut vq_map)? } else { 0 };
    let stop = AtomicBool::new(false);
    let transformer = || -> Result<f64> {
        let t0 = Instant::now();
        if let Some(dir) = &a.keep_transformer {
            eprintln!("transformer: kept from {}", dir.display());
        } else if lm_start < a.lm_steps {
            let sched = lm_train::Schedule { seed: a.seed, steps: a.lm_steps, batch: a.lm_batch, peak_lr: a.lm_lr, beta2: a.lm_beta2, gen_length: a.gen_length };
            lm_train::train(&sched, lm_start, &cfg, &lm_map, &prompter, &stop, &dev, &mut |step| ckpt.save("lm", &lm_map, step))?;
        }
        Ok(t0.elapsed().as_secs_f64())
    };
    let vq_vae = || -> Result<f64> {
        let t0 = Instant::now();
        if let Some(dir) = &a.vq_from {
            load_vq_from(dir, &vq_map)?;
            eprintln!("VQ-VAE: from {} (joint and polish phases skipped)", dir.display());
        } else {
            vq_phases::joint_and_polish(&a, &vq, &vq_map, vq_start, &ckpt, &stop, &dev)?;
        }
        vq_phases::robust_encoder(&a, &vq, &vq_map, &ckpt, &stop, &dev)?;
        Ok(t0.elapsed().as_secs_f64())
    };
    let (lm_secs, vq_secs) = if a.one_at_a_time {
        let lm = transformer()?;
        (lm, vq_vae()?)
    } else {
        std::thread::scope(|scope| {
            let lm = std::thread::Builder::new()
                .name("transformer".into())
                .spawn_scoped(scope, || half(&stop, transformer))
                .map_err(|e| Error::invalid(format!("cannot start the transformer's thread: {e}")))?;
            let (vq, vq_first) = half(&stop, vq_vae);
            let (lm, _) = lm.join().unwrap_or_else(|_| (Err(Error::invalid("the transformer's thread panicked")), false));
            // the failure that stopped the other half is the one to report
            match (lm, vq) {
                (Ok(l), Ok(v)) => Ok((l, v)),
                (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
                (Err(l), Err(v)) => Err(if vq_first { v } else { l }),
            }
        })?
    };
    // The bundle keeps only the codes a scene can have: the spare rows were
    // never a target nor an input, yet under guidance the transformer could
    // still pick one (an edit did), and the decoder draws noise over the
    // whole image for a vector that far out.
    let used = cell_vq::USED;
    let out_cfg = LladaConfig { vocab: text_vocab as usize + used, ..cfg.clone() };
    let out_special = tokenizer::special_tokens(text_vocab, used as u32);
    let lm_rows = match &a.keep_transformer {
        Some(dir) => kept_transformer(dir, &out_cfg)?,
        None => trim_rows(&lm_map, &["model.transformer.wte.weight", "model.transformer.ff_out.weight"], out_cfg.vocab)?,
    };
    let vq_rows = trim_rows(&vq_map, &["quantize.embedding.weight"], used)?;
    write_bundle(&a, &out_cfg, &cell_vq::config_json(&a.vq_channels, used), &out_special, &vq_rows, &lm_rows)?;
    eprintln!(
        "done in {:.0} s (transformer {lm_secs:.0} s, VQ-VAE {vq_secs:.0} s, {}); bundle in {}",
        started.elapsed().as_secs_f64(),
        if a.one_at_a_time { "one after the other" } else { "at once" },
        a.out.display()
    );
    Ok(())
}

/// Sets every VQ-VAE weight but the designed codebook from a bundle's `vqvae/`.
fn load_vq_from(dir: &Path, vq_map: &VarMap) -> Result<()> {
    let file = dir.join("vqvae/diffusion_pytorch_model.safetensors");
    let t = candle_core::safetensors::load(&file, &Device::Cpu).map_err(|e| Error::bundle(&file, e.to_string()))?;
    let data = varmap_data(vq_map).map_err(err)?;
    for (name, var) in data.iter().filter(|(k, _)| k.as_str() != "quantize.embedding.weight") {
        let w = t.get(name).ok_or_else(|| Error::bundle(&file, format!("no tensor `{name}`: not a VQ-VAE of this recipe")))?;
        var.set(w).map_err(|e| Error::bundle(&file, format!("`{name}`: {e}")))?;
    }
    Ok(())
}

type Tensors = std::collections::HashMap<String, candle_core::Tensor>;

/// A var map's variables by name, locked.
fn varmap_data(map: &VarMap) -> candle_core::Result<std::sync::MutexGuard<'_, std::collections::HashMap<String, candle_core::Var>>> {
    map.data().lock().map_err(|_| candle_core::Error::Msg("varmap lock".into()))
}

/// The tensors of `map`, the ones named in `names` cut to their first `rows` rows.
fn trim_rows(map: &VarMap, names: &[&str], rows: usize) -> Result<Tensors> {
    let data = varmap_data(map).map_err(err)?;
    data.iter()
        .map(|(k, v)| {
            let t = v.as_tensor();
            let t = if names.contains(&k.as_str()) { t.narrow(0, 0, rows).and_then(|t| t.contiguous()).map_err(err)? } else { t.clone() };
            Ok((k.clone(), t))
        })
        .collect()
}

/// The transformer of the bundle in `dir`, checked against the config this
/// recipe writes (same tokenizer, same used codes).
fn kept_transformer(dir: &Path, cfg: &LladaConfig) -> Result<Tensors> {
    let file = dir.join("model.safetensors");
    let t = candle_core::safetensors::load(&file, &Device::Cpu).map_err(|e| Error::bundle(&file, e.to_string()))?;
    let rows = t.get("model.transformer.wte.weight").map(|w| w.dims().to_vec());
    if rows.as_deref() != Some(&[cfg.vocab, cfg.d_model][..]) {
        return Err(Error::bundle(&file, format!("wte is {rows:?}, this recipe writes [{}, {}]: keep a transformer of the same recipe", cfg.vocab, cfg.d_model)));
    }
    Ok(t)
}

/// Writes the released layout: config.json, model.safetensors, vqvae/, unmask.json.
fn write_bundle(a: &Args, cfg: &LladaConfig, vq_json: &serde_json::Value, sp: &unmask::SpecialTokens, vq: &Tensors, lm: &Tensors) -> Result<()> {
    let out = &a.out;
    let config = serde_json::json!({
        "architectures": ["LLaDAModelLM"], "model_type": "llada", "activation_type": "silu", "alibi": false,
        "block_type": "llama", "d_model": cfg.d_model, "n_heads": cfg.n_heads, "n_kv_heads": cfg.n_kv_heads,
        "n_layers": cfg.n_layers, "mlp_hidden_size": cfg.mlp_hidden, "mlp_ratio": 3, "vocab_size": cfg.vocab,
        "embedding_size": cfg.vocab, "rope": true, "rope_theta": cfg.rope_theta, "rope_full_precision": true,
        "rms_norm_eps": cfg.rms_norm_eps, "layer_norm_type": "rms", "layer_norm_with_affine": true,
        "include_bias": false, "include_qkv_bias": false, "weight_tying": false, "scale_logits": false,
        "input_emb_norm": false, "max_sequence_length": 1024, "mask_token_id": sp.mask, "eos_token_id": sp.eos,
        "pad_token_id": sp.eos, "torch_dtype": "float32"
    });
    write_json(&out.join("config.json"), &config)?;
    candle_core::safetensors::save(lm, out.join("model.safetensors")).map_err(err)?;
    write_json(&out.join("vqvae/config.json"), vq_json)?;
    candle_core::safetensors::save(vq, out.join("vqvae/diffusion_pytorch_model.safetensors")).map_err(err)?;
    let unmask_json = serde_json::json!({
        "special_tokens": sp,
        "defaults": {
            "name": "unmask-shapes", "width": vq_train::SIDE, "height": vq_train::SIDE,
            "steps": 12, "cfg": 3.0, "edit_cfg": 2.5, "edit_cfg_img": 2.0, "temperature": 0.0, "gen_length": a.gen_length,
            // the shapes world has one scale: retouch crops are never enlarged
            "max_upscale": 1.0,
            // the world knows no free description; two of its questions make a prompt it draws from
            "describe": { "questions": ["what shape is in the image?", "what color is the {1}?"], "prompt": "a large {2} {1}" }
        }
    });
    write_json(&out.join("unmask.json"), &unmask_json)
}

/// Reconstructs fresh scenes through the codes and reads them back with the detector.
fn check_vq(vq: &unmask::model::VqModel, n: usize, sheet: &Path) -> Result<()> {
    use unmask::shapes::{detect::detect, render::render, world::Scene};
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(999);
    let side = vq_train::SIDE;
    let mut ok = 0;
    let mut missed = std::collections::BTreeMap::new();
    let mut img = image::RgbImage::new(side * 2, side * n.min(8) as u32);
    for i in 0..n {
        let scene = Scene::random(&mut rng);
        let rec = unmask::image_io::from_rgb(&vq.decode(&vq_train::encode_scene(vq, &scene)?)?);
        let found = detect(&rec);
        let seen = |o: &unmask::shapes::world::Object| found.iter().any(|f| f.pos == o.pos && f.color == o.color && f.shape == o.shape && f.size == o.size);
        ok += usize::from(found.len() == scene.objects.len() && scene.objects.iter().all(seen));
        for o in scene.objects.iter().filter(|o| !seen(o)) {
            *missed.entry(format!("{} {}", o.size.name(), o.shape.name())).or_insert(0usize) += 1;
        }
        if i < 8 {
            image::imageops::replace(&mut img, &render(&scene, side), 0, (i as u32 * side) as i64);
            image::imageops::replace(&mut img, &rec, side as i64, (i as u32 * side) as i64);
        }
    }
    unmask::image_io::save_png(sheet, &img, None)?;
    println!("VQ-VAE reconstructions read back exactly: {ok}/{n}; sheet in {}", sheet.display());
    println!("objects not read back, by kind: {missed:?}");
    Ok(())
}

fn write_json(path: &Path, v: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(v).map_err(err)?;
    std::fs::write(path, text + "\n").map_err(|e| Error::io(path, e))
}
