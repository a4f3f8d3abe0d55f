//! Retouch cost against photo size (issue 15): the same 300 x 300 px round
//! mask inpainted on a 6000 x 4000 photo and on a 512 x 512 one, with the
//! embedded model (48 x 48 working area) and the fixture model (run with a
//! 128 x 128 working area: its release default of 1024 x 1024 at VQ factor 4
//! is 65,536 tokens, beyond any CPU). Each case runs in a child process so its
//! peak memory (max RSS, photo included) is its own. Prints time, peak memory
//! and the large / small ratios.
//!
//! `cargo bench --bench photo_inpaint`

use std::process::Command;
use std::time::Instant;

use image::{GrayImage, RgbImage};
use unmask::crop::{Context, WorkArea};
use unmask::sampler::{ImageSettings, Quiet};
use unmask::tasks::{self, Job};
use unmask::{DeviceChoice, Engine};

const CASE: &str = "UNMASK_PHOTO_BENCH_CASE";

fn peak_rss_mib() -> f64 {
    // SAFETY: getrusage only writes the struct we pass
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    u.ru_maxrss as f64 / 1024.0
}

fn child(model: &str, side: &str) {
    let (w, h): (u32, u32) = match side {
        "large" => (6000, 4000),
        _ => (512, 512),
    };
    let (dir, work) = match model {
        "embedded" => (unmask::bundle::default_model_dir().expect("embedded model"), None),
        _ => (
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/tiny-dimoo/model"),
            Some(WorkArea { area: 128 * 128, max_upscale: 4.0 }),
        ),
    };
    let mut engine = Engine::load(&dir, DeviceChoice::Cpu).expect("model");
    if let Some(w) = work {
        engine.info.work_area = w;
    }
    let image = RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 251) as u8, (y % 241) as u8, ((x + y) % 239) as u8]));
    let (cx, cy) = (w as i64 / 2, h as i64 / 2);
    let mask = GrayImage::from_fn(w, h, |x, y| {
        let (dx, dy) = (x as i64 - cx, y as i64 - cy);
        image::Luma([if dx * dx + dy * dy < 150 * 150 { 255 } else { 0 }])
    });
    let steps = engine.info.default_steps.unwrap_or(12);
    let settings = ImageSettings { steps, cfg: 3.0, cfg_img: 0.0, temperature: 0.0, seed: 1, cache: None };
    let job = Job::Inpaint { regions: vec![unmask::tasks::Region::new(mask, "a large red circle in the center")], image, codes: None, grow: 0, cover: Default::default(), feather: 8.0, context: Context::Auto, content: None, settings };
    let mut best = f64::MAX;
    let mut crop = String::new();
    for _ in 0..3 {
        let t = Instant::now();
        let out = tasks::run(&engine, &job, &mut Quiet).expect("inpaint");
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
        if let tasks::Output::Image { work, .. } = out {
            crop = work.crops.iter().map(|c| c.describe()).collect::<Vec<_>>().join("; ");
        }
    }
    println!("{best:.1} {:.0} {crop}", peak_rss_mib());
}

fn main() {
    // as every binary of ours does first thing (see src/alloc.rs)
    unmask::alloc::keep_freed_buffers();
    if let Ok(case) = std::env::var(CASE) {
        let (m, s) = case.split_once(':').expect("model:size");
        return child(m, s);
    }
    let exe = std::env::current_exe().expect("own path");
    for model in ["embedded", "fixture"] {
        let mut res = Vec::new();
        for side in ["small", "large"] {
            let out = Command::new(&exe).env(CASE, format!("{model}:{side}")).output().expect("run case");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let mut it = text.splitn(3, ' ');
            let ms: f64 = it.next().unwrap().parse().unwrap();
            let mib: f64 = it.next().unwrap().parse().unwrap();
            let crop = it.next().unwrap_or("").to_string();
            println!("{model:8} {side:5} ({}): {ms:8.1} ms, peak {mib:6.0} MiB; crop {crop}", if side == "large" { "6000x4000" } else { "512x512" });
            res.push((ms, mib));
        }
        println!("{model:8} large / small: time x{:.2}, peak memory x{:.2}", res[1].0 / res[0].0, res[1].1 / res[0].1);
    }
}
