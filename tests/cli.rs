//! Each task once through the `unmask` binary with its documented flags,
//! checked against the golden cases.

mod common;

use std::path::Path;
use std::process::Command;

fn unmask(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_unmask")).args(args).output().expect("run unmask");
    assert!(out.status.success(), "unmask {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn codes_of(path: &Path) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["codes"].clone()
}

fn worst_png_diff(a: &Path, b: &Path) -> i32 {
    let a = image::open(a).unwrap().to_rgb8();
    let b = image::open(b).unwrap().to_rgb8();
    assert_eq!(a.dimensions(), b.dimensions());
    a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| (*x as i32 - *y as i32).abs()).max().unwrap()
}

fn model() -> String {
    common::fixture_model().to_str().unwrap().to_string()
}

#[test]
fn info_prints_a_correct_summary() {
    let out = unmask(&["info", "--model", &model()]);
    for want in ["133184", "F32", "d_model 64, 2 layers, 4 heads", "398 logits = 334 text + 64 image", "factor 4", "mask 323"] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    let json: serde_json::Value = serde_json::from_str(&unmask(&["info", "--model", &model(), "--json"])).unwrap();
    assert_eq!(json["vocab"], 398);
    assert_eq!(json["special_tokens"]["image_offset"], 334);
    assert_eq!(json["vq_factor"], 4);
}

#[test]
fn encode_then_decode_gives_golden_png() {
    let dir = common::scratch("cli-vq");
    let codes = dir.join("codes.json");
    let out = dir.join("out.png");
    let input = common::case("input.png");
    unmask(&["encode", "--model", &model(), "--image", input.to_str().unwrap(), "--tokens-out", codes.to_str().unwrap()]);
    unmask(&["decode", "--model", &model(), "--tokens", codes.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(worst_png_diff(&out, &common::case("vq_decoded.png")) <= 1);
}

fn generate_case(name: &str, extra: &[&str]) {
    let cases = common::cases_json();
    let case = &cases[name];
    let dir = common::scratch(&format!("cli-{name}"));
    let (png, codes) = (dir.join("o.png"), dir.join("c.json"));
    let steps = case["steps"].to_string();
    let cfg = case["cfg"].to_string();
    let mut args = vec![
        "generate", "--model", &model(), "--prompt", case["prompt"].as_str().unwrap(), "--width", "40", "--height", "24",
        "--steps", &steps, "--cfg", &cfg, "--temperature", "0", "--seed", "0",
        "--out", png.to_str().unwrap(), "--tokens-out", codes.to_str().unwrap(),
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    unmask(&refs);
    assert_eq!(codes_of(&codes), case["codes"], "{name} codes");
    assert!(worst_png_diff(&png, &common::case(case["png"].as_str().unwrap())) <= 1);
    let params = unmask::image_io::png_parameters(&std::fs::read(&png).unwrap()).expect("parameters chunk");
    assert!(params.starts_with(case["prompt"].as_str().unwrap()), "{params}");
    assert!(params.contains(&format!("Steps: {steps}")) && params.contains("Seed: 0") && params.contains("Size: 40x24"), "{params}");
}


#[test]
fn generate_t2i() {
    generate_case("t2i", &[]);
}

#[test]
fn generate_t2i_nocfg() {
    generate_case("t2i_nocfg", &[]);
}

#[test]
fn generate_t2i_cache() {
    generate_case("t2i_cache", &["--cache", "--cache-ratio", "0.7", "--warmup-ratio", "0.3", "--refresh-interval", "3"]);
}

#[test]
fn inpaint_case() {
    let cases = common::cases_json();
    let case = &cases["inpaint"];
    let dir = common::scratch("cli-inpaint");
    let (png, codes) = (dir.join("o.png"), dir.join("c.json"));
    unmask(&[
        "inpaint", "--model", &model(), "--prompt", case["prompt"].as_str().unwrap(),
        "--image", common::case("input.png").to_str().unwrap(), "--mask", common::case("mask.png").to_str().unwrap(),
        "--steps", "5", "--cfg", "4", "--temperature", "0", "--seed", "0", "--feather", "0",
        // the golden case is the whole image at scale 1
        "--context", "whole",
        "--out", png.to_str().unwrap(), "--tokens-out", codes.to_str().unwrap(),
    ]);
    assert_eq!(codes_of(&codes), case["codes"]);
    // outside the mask the output is the input, pixel for pixel
    let out = image::open(&png).unwrap().to_rgb8();
    let input = image::open(common::case("input.png")).unwrap().to_rgb8();
    let mask = image::open(common::case("mask.png")).unwrap().to_luma8();
    for (x, y, m) in mask.enumerate_pixels() {
        if m[0] == 0 {
            assert_eq!(out.get_pixel(x, y), input.get_pixel(x, y));
        }
    }
}

#[test]
fn edit_case() {
    let cases = common::cases_json();
    let case = &cases["edit"];
    let dir = common::scratch("cli-edit");
    let (png, codes) = (dir.join("o.png"), dir.join("c.json"));
    unmask(&[
        "edit", "--model", &model(), "--prompt", case["prompt"].as_str().unwrap(),
        "--image", common::case("input.png").to_str().unwrap(), "--fit", "native",
        "--steps", "5", "--cfg", "2.5", "--cfg-img", "4", "--temperature", "0", "--seed", "0",
        "--out", png.to_str().unwrap(), "--tokens-out", codes.to_str().unwrap(),
    ]);
    assert_eq!(codes_of(&codes), case["codes"]);
    assert!(worst_png_diff(&png, &common::case("edit.png")) <= 1);
}

#[test]
fn ask_case_json() {
    let cases = common::cases_json();
    let case = &cases["mmu"];
    let out = unmask(&[
        "ask", "--model", &model(), "--image", common::case("input.png").to_str().unwrap(),
        "--question", case["question"].as_str().unwrap(), "--gen-length", "16", "--block-length", "8", "--steps", "8",
        "--temperature", "0", "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["answer"], case["answer"]);
    assert_eq!(v["answer_ids"], case["answer_ids"]);
}

fn unmask_full(args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_unmask")).args(args).output().expect("run unmask");
    assert!(out.status.success(), "unmask {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn inpaint_and_outpaint_print_the_crop_and_store_it_in_the_png() {
    let dir = common::scratch("cli-crop");
    // a 640 x 480 photo and a small round mask, embedded model (48 x 48 working area)
    let photo = image::RgbImage::from_fn(640, 480, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 128]));
    let mask = image::GrayImage::from_fn(640, 480, |x, y| {
        let (dx, dy) = (x as i32 - 400, y as i32 - 300);
        image::Luma([if dx * dx + dy * dy < 900 { 255 } else { 0 }])
    });
    let (img, m, out) = (dir.join("photo.png"), dir.join("mask.png"), dir.join("o.png"));
    photo.save(&img).unwrap();
    mask.save(&m).unwrap();
    let (_, err) = unmask_full(&[
        "inpaint", "--prompt", "a large red circle in the center", "--image", img.to_str().unwrap(), "--mask", m.to_str().unwrap(),
        "--seed", "1", "--out", out.to_str().unwrap(),
    ]);
    assert!(err.contains("crop 1:") && err.contains("-> 48x48"), "{err}");
    let bytes = std::fs::read(&out).unwrap();
    let params = unmask::image_io::png_parameters(&bytes).unwrap();
    assert!(params.contains("Working size: 48x48") && params.contains("Crop 1:"), "{params}");
    assert_eq!(image::load_from_memory(&bytes).unwrap().to_rgb8().dimensions(), (640, 480));

    let out2 = dir.join("wide.png");
    let (_, err) = unmask_full(&[
        "outpaint", "--prompt", "a small blue square", "--image", img.to_str().unwrap(), "--left", "0", "--right", "160",
        "--top", "0", "--bottom", "0", "--seed", "1", "--out", out2.to_str().unwrap(),
    ]);
    assert!(err.contains("800x480 px canvas") && err.contains("crop 1:"), "{err}");
    let wide = image::open(&out2).unwrap().to_rgb8();
    assert_eq!(wide.dimensions(), (800, 480));
    // far from the new border the photo is unchanged
    for (x, y) in [(0, 0), (300, 200), (639 - 80, 479)] {
        assert_eq!(wide.get_pixel(x, y), photo.get_pixel(x, y), "pixel {x},{y}");
    }
}

#[test]
fn plan_prints_the_parts_of_the_peak() {
    let json = unmask(&["plan", "--preset", "lumina-dimoo-8b", "--width", "1024", "--height", "1024", "--cfg", "4", "--cache", "--dtype", "bf16", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let parts = &v["parts"];
    let get = |k: &str| parts[k].as_u64().unwrap();
    // 8.08 B parameters in bf16
    assert_eq!(get("weights"), v["parameters"].as_u64().unwrap() * 2);
    assert!(get("weights") > 16_000_000_000 && get("weights") < 16_300_000_000);
    assert_eq!(v["tokens"], 128 + 64 * 65 + 2);
    assert_eq!(v["branches"], 2);
    let sampling = get("activations") + get("attention") + get("logits") + get("cache");
    assert_eq!(v["peak_bytes"].as_u64().unwrap(), get("weights") + get("vq_weights") + sampling.max(get("vq_pass")));
    assert!(get("attention") <= 3 * (256 << 20) / 2, "attention chunked under its bound");
    // without the cache the ML-Cache part is gone; on the embedded bundle the plan reads its config
    let off: serde_json::Value = serde_json::from_str(&unmask(&["plan", "--preset", "lumina-dimoo-8b", "--json"])).unwrap();
    assert_eq!(off["parts"]["cache"], 0);
    let small: serde_json::Value = serde_json::from_str(&unmask(&["plan", "--json"])).unwrap();
    assert_eq!((small["width"].as_u64(), small["model"].as_str()), (Some(48), Some("unmask-shapes")));
    // compared with this machine's memory: GPU 0's free memory when the model would run there, else host RAM
    let memory = v["fit"]["memory"].as_str().unwrap();
    assert!(memory == "host RAM" || memory.starts_with("GPU 0"), "{memory}");
    assert!(v["fit"]["fits"].is_boolean() && v["fit"]["budget_bytes"].as_u64().is_some());
    let cpu = unmask(&["plan", "--preset", "lumina-dimoo-8b", "--device", "cpu", "--cache"]);
    assert!(cpu.contains("compared with host RAM: ") && (cpu.contains("\nfits: ") || cpu.contains("\ndoes not fit: ")), "{cpu}");
    let limited = Command::new(env!("CARGO_BIN_EXE_unmask")).args(["plan", "--preset", "lumina-dimoo-8b", "--cache"]).env("UNMASK_MEMORY_LIMIT", "1G").output().unwrap();
    let limited = String::from_utf8_lossy(&limited.stdout);
    assert!(limited.contains("a run may use 1.0 GiB (UNMASK_MEMORY_LIMIT)") && limited.contains("the largest square that fits is"), "{limited}");
    let out = Command::new(env!("CARGO_BIN_EXE_unmask")).args(["plan", "--preset", "sdxl"]).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("lumina-dimoo-8b"));
}

#[test]
fn profile_reports_phases_forwards_and_device_copies() {
    let dir = common::scratch("cli-profile");
    let o = dir.join("o.png");
    let out = Command::new(env!("CARGO_BIN_EXE_unmask"))
        .args(["generate", "--model", &model(), "--prompt", "a red circle on the left", "--width", "40", "--height", "24"])
        .args(["--steps", "7", "--cfg", "4", "--temperature", "0", "--seed", "0", "--profile", "--out", o.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let v: serde_json::Value = serde_json::from_str(err.lines().last().unwrap()).unwrap();
    let n = |k: &str| v[k].as_u64().unwrap();
    // guidance: one batched forward a step for both branches (conditional and
    // text-free), each over its whole sequence
    assert_eq!(n("steps"), 7);
    assert_eq!(n("forwards"), 7);
    assert_eq!(n("tokens") % 7, 0, "the same two sequence lengths every step");
    assert!(n("tokens") / 7 > 2 * 6 * 11, "two sequences, each holding the 6 x 10 grid and its newlines");
    // greedy sampling runs on the device: a code and a confidence per masked cell come back
    // (8 bytes), not its 64 codebook logits per branch (512 bytes)
    let per_step = v["device_to_host_bytes_per_step"].as_f64().unwrap();
    assert!(per_step > 0.0 && per_step <= 64.0 * 60.0, "{per_step} bytes a step for at most 60 masked cells");
    assert!(n("device_to_host_bytes") <= 7 * (60 * 8 + 4));
    for phase in ["sampling", "forwards", "decode"] {
        assert!(v["phases_ms"][phase].as_f64().is_some(), "{phase}: {v}");
    }
    assert_eq!(v["ok"], true);
}

#[test]
fn ask_with_the_text_cache_copies_picks_not_logits() {
    // the fixture's vocabulary is 398 ids: a block's logits would be 8 x 398 x 4 bytes
    let cases = common::cases_json();
    let (out, err) = unmask_full(&[
        "ask", "--model", &model(), "--image", common::case("input.png").to_str().unwrap(),
        "--question", cases["mmu"]["question"].as_str().unwrap(), "--gen-length", "16", "--block-length", "8", "--steps", "8",
        "--temperature", "0", "--cache", "--profile",
    ]);
    assert!(!out.trim().is_empty() || err.contains("no answer"));
    let v: serde_json::Value = serde_json::from_str(err.lines().last().unwrap()).unwrap();
    let per_step = v["device_to_host_bytes_per_step"].as_f64().unwrap();
    // each step: an id (u32) and a probability (f64) per masked row of the block, and one sum
    assert!(per_step > 0.0 && per_step <= (8 * 12 + 4) as f64, "{per_step} bytes a step");
    assert_eq!(v["steps"], 8);
}
