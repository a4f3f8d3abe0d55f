//! The GPU measurements of issue 17 (item 7), one case per process so that
//! `scripts/gpu-bench.sh` can read each case's peak device memory from
//! `nvidia-smi` while it runs. Random weights in the released 8B layout
//! (`--config 8b`) or the benches' mid-size config (`--config mid`, for a
//! dry run on the CPU). Prints one JSON object per case.
//!
//! `cargo bench --bench gpu -- CASE [--config 8b|mid] [--device cuda|cpu] [--steps N] [--side N]`
//! with CASE one of `forward`, `t2i`, `t2i-cache`, `answer`, `answer-cache`,
//! `attention`, `projections`, `quant`, `agreement --dir DIR`, `vq-decode`,
//! `vq-encode` (the last six: issue 29, in gpu_cases/);
//! `golden --fixtures DIR` runs the golden cases of `DIR/cases/cases.json` on
//! the device (bf16 on CUDA) and reports their agreement with the f32 codes.

mod common;
mod gpu_cases;

use std::time::Instant;

use candle_core::{DType, Device};
use unmask::bundle::SpecialTokens;
use unmask::model::random::random_llada_weights;
use unmask::model::Llada;
use unmask::sampler::{sample_image, sample_text, CacheSettings, ImageLayout, ImageSettings, Quiet, TextLayout, TextSettings};

fn arg(name: &str) -> Option<String> {
    let a: Vec<String> = std::env::args().collect();
    a.iter().position(|x| x == name).and_then(|i| a.get(i + 1).cloned())
}

/// The release's special tokens where the 8B vocabulary puts them (image
/// codes after the text ids); the mid-size config's otherwise.
fn special(vocab: usize) -> SpecialTokens {
    let image_offset = vocab - 8192 - 100;
    let image_offset = if vocab > 100_000 { image_offset } else { 1024 };
    SpecialTokens {
        mask: 3, newline: 4, boi: 5, eoi: 6, uncondition: 7, answer_start: 8, answer_end: 9, eos: 1, bos: 0,
        answer_pad: 10, image_offset: image_offset as u32, codebook_size: 8192,
    }
}

fn main() {
    let case = std::env::args().nth(1).filter(|c| !c.starts_with('-')).unwrap_or_else(|| "forward".into());
    if case == "golden" {
        return golden(&std::path::PathBuf::from(arg("--fixtures").expect("--fixtures DIR (the tiny-dimoo folder)")));
    }
    let config = arg("--config").unwrap_or_else(|| "8b".into());
    let device = match arg("--device").as_deref() {
        Some("cpu") => Device::Cpu,
        _ => Device::new_cuda(0).expect("a CUDA device (build with --features cuda), or --device cpu"),
    };
    let dtype = if device.is_cuda() { DType::BF16 } else { DType::F32 };
    let (cfg, side) = match config.as_str() {
        "mid" => (common::mid_config(), 32),
        _ => (unmask::plan::lumina_dimoo_8b().0, 64),
    };
    let tokens = if config == "mid" { 1040 } else { 4160 };
    // the cases without the whole model
    let standalone = |detail: String| {
        println!("{{\"case\": \"{case}\", \"config\": \"{config}\", \"device\": \"{}\", {detail}}}", if device.is_cuda() { "cuda" } else { "cpu" });
    };
    match case.as_str() {
        "attention" => return standalone(gpu_cases::attention(&cfg, &device, tokens)),
        "projections" => return standalone(gpu_cases::projections(&cfg, &device, tokens)),
        "quant" => return standalone(gpu_cases::quantized(&cfg, &device, tokens, 2, &scratch("quant"))),
        "vq-decode" | "vq-encode" => return standalone(gpu_cases::vq(case == "vq-decode", &device, if config == "mid" { 16 } else { 64 })),
        "agreement" => return standalone(gpu_cases::agreement(&cfg, &device, tokens, 2, &arg("--dir").map(Into::into).unwrap_or_else(|| scratch("agreement")))),
        _ => {}
    }
    let t0 = Instant::now();
    let vb = random_llada_weights(&cfg, dtype, &device).expect("random weights");
    let mut model = Llada::load(&cfg, vb).expect("build model");
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let sp = special(cfg.vocab);
    let steps: usize = arg("--steps").and_then(|s| s.parse().ok()).unwrap_or(64);
    // the grid's side in cells: 64 (1024 px) at 8B; 32 is a 512^2 retouch region
    let side: usize = arg("--side").and_then(|s| s.parse().ok()).unwrap_or(side);
    // a prompt of the preset's length around a side x side grid (1024 px at 8B)
    let prompt: Vec<u32> = (0..unmask::plan::PROMPT_TOKENS as u32).map(|i| 20 + i * 13 % 900).collect();
    let uncond: Vec<u32> = prompt[..16].to_vec();
    unmask::profile::start();
    let t1 = Instant::now();
    let detail = match case.as_str() {
        "forward" => gpu_cases::forward_both(&mut model, &device, tokens),
        "t2i" | "t2i-cache" => {
            let layout = ImageLayout { cond: prompt, text_free: Some(uncond), image_free: None, height: side, width: side, cells: vec![None; side * side] };
            let cache = (case == "t2i-cache").then_some(CacheSettings { ratio: 0.9, warmup_ratio: 0.3, refresh_interval: 5 });
            let s = ImageSettings { steps, cfg: 4.0, temperature: 0.0, cache, ..Default::default() };
            let g = sample_image(&model, &sp, &layout, &s, &mut Quiet).expect("sample");
            sync(&device);
            let decoded = match std::env::args().any(|a| a == "--decode") {
                true => format!("{}, ", gpu_cases::decode_after(&g, &device)),
                false => String::new(),
            };
            format!("{decoded}\"grid\": {side}, \"steps\": {steps}, \"cfg\": 4, \"attention\": \"{}\", \"codes_checksum\": {}", model.attention_kind(), g.codes.iter().map(|&c| c as u64).sum::<u64>())
        }
        "answer" | "answer-cache" => {
            let g = 256;
            let mut seq = prompt.clone();
            seq.extend((0..side * (side + 1)).map(|i| sp.image_offset + (i as u32 * 31) % 8192));
            seq.push(sp.answer_start);
            let answer_start = seq.len();
            seq.extend(std::iter::repeat_n(sp.mask, g));
            let layout = TextLayout { seq, answer_start, gen_length: g };
            let s = TextSettings { steps: g, block_length: 32, temperature: 0.0, seed: 0, cache: case == "answer-cache" };
            let a = sample_text(&model, &sp, &layout, &s, &mut Quiet).expect("answer");
            sync(&device);
            format!("\"gen_length\": {g}, \"block_length\": 32, \"answer_ids\": {}", a.ids.len())
        }
        other => panic!("unknown case {other}: forward, t2i, t2i-cache, answer, answer-cache, attention, projections, quant, agreement"),
    };
    let wall_ms = t1.elapsed().as_secs_f64() * 1e3;
    let profile = serde_json::to_string(&unmask::profile::finish()).unwrap_or_default();
    println!(
        "{{\"case\": \"{case}\", \"config\": \"{config}\", \"device\": \"{}\", \"load_ms\": {load_ms:.0}, \"wall_ms\": {wall_ms:.1}, {detail}, \"profile\": {profile}}}",
        if device.is_cuda() { "cuda" } else { "cpu" }
    );
}

/// The golden cases on the device: the share of each case's cells whose code
/// equals the f32 reference's (1.0 = exact), and the answer's ids.
fn golden(dir: &std::path::Path) {
    use unmask::tasks::{self, Job, Output};
    let choice = if arg("--device").as_deref() == Some("cpu") { unmask::DeviceChoice::Cpu } else { unmask::DeviceChoice::Cuda(0) };
    let e = unmask::Engine::load(dir.join("model"), choice).expect("fixture model");
    let cases: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("cases/cases.json")).unwrap()).unwrap();
    let grid = |v: &serde_json::Value| -> Vec<u32> { v.as_array().unwrap().iter().flat_map(|r| r.as_array().unwrap().iter().map(|c| c.as_u64().unwrap() as u32)).collect() };
    let settings = |c: &serde_json::Value| ImageSettings {
        steps: c["steps"].as_u64().unwrap() as usize,
        cfg: c["cfg"].as_f64().unwrap() as f32,
        cfg_img: c["cfg_img"].as_f64().unwrap() as f32,
        temperature: 0.0,
        seed: 0,
        cache: c.get("cache").map(|k| CacheSettings {
            ratio: k["cache_ratio"].as_f64().unwrap(),
            warmup_ratio: k["warmup_ratio"].as_f64().unwrap(),
            refresh_interval: k["refresh_interval"].as_u64().unwrap() as usize,
        }),
    };
    let input = unmask::image_io::open_rgb(&dir.join("cases/input.png")).unwrap();
    let mut parts = Vec::new();
    for name in ["t2i", "t2i_nocfg", "t2i_cache", "inpaint", "edit"] {
        let c = &cases[name];
        let prompt = c["prompt"].as_str().unwrap().to_string();
        let job = match name {
            "inpaint" => Job::Inpaint {
                regions: vec![unmask::tasks::Region::new(unmask::image_io::open(&dir.join("cases/mask.png")).unwrap().to_luma8(), prompt)], image: input.clone(), codes: None,
                grow: 0, cover: unmask::tasks::Cover::Half, feather: 0.0, context: unmask::crop::Context::Whole, content: None, settings: settings(c),
            },
            "edit" => Job::Edit { instruction: prompt, image: input.clone(), fit: tasks::FitMode::Native, settings: settings(c) },
            _ => Job::Generate { prompt, width: 40, height: 24, settings: settings(c) },
        };
        let want = grid(&c["codes"]);
        let agree = match tasks::run(&e, &job, &mut Quiet) {
            Ok(Output::Image { codes: Some(g), .. }) => g.codes.iter().zip(&want).filter(|(a, b)| a == b).count() as f64 / want.len() as f64,
            Ok(_) => -1.0,
            Err(err) => {
                eprintln!("{name}: {err}");
                -1.0
            }
        };
        parts.push(format!("\"{name}\": {agree:.4}"));
    }
    let mmu = &cases["mmu"];
    let job = Job::Ask {
        question: mmu["question"].as_str().unwrap().into(),
        image: input,
        fit: tasks::FitMode::Native,
        gen_length: mmu["gen_length"].as_u64().unwrap() as usize,
        settings: TextSettings { steps: mmu["steps"].as_u64().unwrap() as usize, block_length: mmu["block_length"].as_u64().unwrap() as usize, temperature: 0.0, seed: 0, cache: false },
    };
    let same = match tasks::run(&e, &job, &mut Quiet) {
        Ok(Output::Answer { ids, .. }) => ids.iter().map(|&i| i as u64).collect::<Vec<_>>() == mmu["answer_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect::<Vec<_>>(),
        _ => false,
    };
    println!("{{\"case\": \"golden\", \"device\": \"{}\", \"code_agreement\": {{{}}}, \"mmu_answer_exact\": {same}}}", unmask::engine::device_name(e.llada.device()), parts.join(", "));
}

/// A scratch folder for the case's files (removed by the case).
fn scratch(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("unmask-gpu-bench-{name}-{}", std::process::id()))
}

/// Waits for the device's queued work, so a timer reads the work, not its launch.
fn sync(device: &Device) {
    device.synchronize().expect("synchronize");
}
