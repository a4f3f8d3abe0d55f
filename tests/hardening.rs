//! One test per cause of issue 16's findings, through the `unmask` binary:
//! outputs all-or-nothing (with a full disk simulated by RLIMIT_FSIZE),
//! request limits naming the flag and the largest value that fits, a run of
//! the largest allowed request under an address-space cap, UTF-8 prompts,
//! damaged weights, the mask rule, and values that used to pass silently.

mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};

fn run(args: &[&str], env: &[(&str, &str)], limits: &[(libc::__rlimit_resource_t, u64)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_unmask"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let limits = limits.to_vec();
    // SAFETY: between fork and exec only async-signal-safe calls (setrlimit, signal)
    unsafe {
        c.pre_exec(move || {
            for &(res, v) in &limits {
                let l = libc::rlimit { rlim_cur: v, rlim_max: v };
                if libc::setrlimit(res, &l) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            // a write past RLIMIT_FSIZE must fail with EFBIG, not kill the process
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    c.output().expect("run unmask")
}

fn fails_with(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = run(args, env, &[]);
    assert!(!out.status.success(), "expected failure for {args:?}");
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(err.lines().count(), 1, "one line, got: {err}");
    err
}

fn fails(args: &[&str]) -> String {
    fails_with(args, &[])
}

fn fixture() -> String {
    common::fixture_model().to_str().unwrap().to_string()
}

fn input() -> String {
    common::case("input.png").to_str().unwrap().to_string()
}

fn s(v: &[String]) -> Vec<&str> {
    v.iter().map(|x| x.as_str()).collect()
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.ends_with(".tmp")).collect()
}

#[test]
fn outputs_are_checked_before_the_run_and_never_replace_non_files() {
    let dir = common::scratch("outputs-checked");
    let out = dir.join("o.png");
    std::fs::write(&out, b"the user's good picture").unwrap();
    let gen = |o: &str, t: Option<&str>| {
        let mut a = vec!["generate", "--prompt", "a large red circle in the center", "--seed", "1", "--out", o];
        if let Some(t) = t {
            a.extend(["--tokens-out", t]);
        }
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    // an unwritable second output fails before anything is written
    let e = fails(&s(&gen(out.to_str().unwrap(), Some("/nonexistent/c.json"))));
    assert!(e.contains("/nonexistent/c.json") && e.contains("output folder does not exist"), "{e}");
    assert_eq!(std::fs::read(&out).unwrap(), b"the user's good picture");
    let e = fails(&s(&gen("/dev/full", None)));
    assert!(e.contains("/dev/full") && e.contains("not a regular file"), "{e}");
    let link = dir.join("link.png");
    std::os::unix::fs::symlink(&out, &link).unwrap();
    let e = fails(&s(&gen(link.to_str().unwrap(), None)));
    assert!(e.contains("symbolic link"), "{e}");
    let e = fails(&s(&gen(dir.join("x.jpg").to_str().unwrap(), None)));
    assert!(e.contains("x.jpg") && e.contains("name it .png"), "{e}");
    let e = fails(&s(&gen(&format!("{}/", dir.display()), None)));
    assert!(e.contains("is a folder"), "{e}");
    let e = fails(&s(&gen(out.to_str().unwrap(), Some(dir.join("c.txt").to_str().unwrap()))));
    assert!(e.contains("name it .json"), "{e}");
    assert_eq!(std::fs::read(&out).unwrap(), b"the user's good picture");
    assert!(leftovers(&dir).is_empty());
}

#[test]
fn a_full_disk_leaves_both_previous_outputs_and_no_temporary_file() {
    let dir = common::scratch("full-disk");
    let (png, json) = (dir.join("o.png"), dir.join("c.json"));
    let args = ["generate", "--prompt", "a large red circle in the center", "--seed", "1", "--out", png.to_str().unwrap(), "--tokens-out", json.to_str().unwrap()];
    assert!(run(&args, &[], &[]).status.success());
    let (good_png, good_json) = (std::fs::read(&png).unwrap(), std::fs::read(&json).unwrap());
    assert!(good_png.len() > 300 && good_json.len() < 300, "sizes {} / {}", good_png.len(), good_json.len());
    // a disk with room for the codes but not the picture: the second write fails
    let other = ["generate", "--prompt", "a small blue square", "--seed", "2", "--out", png.to_str().unwrap(), "--tokens-out", json.to_str().unwrap()];
    let out = run(&other, &[], &[(libc::RLIMIT_FSIZE, 300)]);
    assert!(!out.status.success(), "the write past the limit fails");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("o.png"), "{err}");
    assert_eq!(std::fs::read(&png).unwrap(), good_png, "the old picture is intact");
    assert_eq!(std::fs::read(&json).unwrap(), good_json, "and so are its codes");
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
}

#[test]
fn sizes_past_the_memory_budget_are_refused_with_what_fits() {
    let budget = [("UNMASK_MEMORY_LIMIT", "600M")];
    let dir = common::scratch("budget");
    let o = dir.join("o.png");
    let e = fails_with(&["generate", "--prompt", "a red circle", "--width", "2048", "--height", "2048", "--out", o.to_str().unwrap()], &budget);
    assert!(e.contains("--width 2048 --height 2048") && e.contains("largest square that fits is"), "{e}");
    let e = fails_with(&["generate", "--model", &fixture(), "--prompt", "a red circle", "--out", o.to_str().unwrap()], &budget);
    assert!(e.contains("the default size 1024x1024") && e.contains("--width"), "{e}");
    let e = fails(&["generate", "--prompt", "a red circle", "--width", "100000", "--out", o.to_str().unwrap()]);
    assert!(e.contains("--width 100000") && e.contains("16384"), "{e}");
    let e = fails_with(&["ask", "--model", &fixture(), "--image", &input(), "--question", "what?", "--gen-length", "4096"], &[("UNMASK_MEMORY_LIMIT", "300M")]);
    assert!(e.contains("--gen-length 4096") && e.contains("longest answer that fits"), "{e}");
    let e = fails(&["ask", "--image", &input(), "--question", "what?", "--gen-length", "100000"]);
    assert!(e.contains("--gen-length 100000"), "{e}");
    let grid = dir.join("big.json");
    let codes: Vec<Vec<u32>> = vec![vec![1; 1000]; 1000];
    std::fs::write(&grid, serde_json::json!({"height": 1000, "width": 1000, "codes": codes}).to_string()).unwrap();
    let e = fails_with(&["decode", "--tokens", grid.to_str().unwrap(), "--out", o.to_str().unwrap()], &budget);
    assert!(e.contains("1000 x 1000 grid decodes to 16000x16000 px") && e.contains("largest of this shape"), "{e}");
}

/// The largest square the budget allows, run under an address-space cap a
/// little above the budget: the estimate is an upper bound in practice.
#[test]
fn the_largest_allowed_request_runs_within_its_budget() {
    let dir = common::scratch("largest");
    let o = dir.join("o.png");
    let budget = 600u64 << 20;
    let env = [("UNMASK_MEMORY_LIMIT", "600M")];
    let e = fails_with(&["generate", "--prompt", "a red circle", "--width", "2048", "--height", "2048", "--out", o.to_str().unwrap()], &env);
    let side: usize = e.rsplit("fits is ").next().and_then(|t| t.split('x').next()).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{e}"));
    assert!(side >= 256, "{e}");
    let size = side.to_string();
    // the process's own address space (binary, bundle maps, thread stacks,
    // allocator arenas) is about 1 GiB of reservations before any work
    let cap = budget + (1200 << 20);
    let args = ["generate", "--prompt", "a red circle", "--width", &size, "--height", &size, "--steps", "1", "--seed", "1", "--out", o.to_str().unwrap()];
    let out = run(&args, &env, &[(libc::RLIMIT_AS, cap)]);
    assert!(out.status.success(), "{side}x{side} under {} MiB: {}", cap >> 20, String::from_utf8_lossy(&out.stderr));
    assert_eq!(image::open(&o).unwrap().width() as usize, side);

    // the same for the VQ-VAE: the largest decode the budget allows
    let grid = |n: usize, path: &Path| {
        let codes: Vec<Vec<u32>> = vec![vec![1; n]; n];
        std::fs::write(path, serde_json::json!({"height": n, "width": n, "codes": codes}).to_string()).unwrap();
    };
    let big = dir.join("big.json");
    grid(400, &big);
    let e = fails_with(&["decode", "--tokens", big.to_str().unwrap(), "--out", o.to_str().unwrap()], &env);
    let px: usize = e.rsplit("about ").next().and_then(|t| t.split('x').next()).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{e}"));
    let n = px / 16;
    assert!(n >= 16, "{e}");
    grid(n, &big);
    let out = run(&["decode", "--tokens", big.to_str().unwrap(), "--out", o.to_str().unwrap()], &env, &[(libc::RLIMIT_AS, cap)]);
    assert!(out.status.success(), "{n} x {n} grid under {} MiB: {}", cap >> 20, String::from_utf8_lossy(&out.stderr));
    assert_eq!(image::open(&o).unwrap().width() as usize, n * 16);
}

#[test]
fn prompts_in_any_script_run_and_are_kept_in_the_png() {
    let dir = common::scratch("utf8");
    let o = dir.join("o.png");
    let prompt = "一个红色的圆 🙂 €5 café";
    let out = run(&["generate", "--prompt", prompt, "--seed", "1", "--out", o.to_str().unwrap()], &[], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let params = unmask::image_io::png_parameters(&std::fs::read(&o).unwrap()).expect("parameters chunk");
    assert!(params.starts_with(prompt), "{params}");
    // a Latin-1 prompt stays in the tEXt chunk other tools read most
    let out = run(&["generate", "--prompt", "a red circle, café", "--seed", "1", "--out", o.to_str().unwrap()], &[], &[]);
    assert!(out.status.success());
    assert!(unmask::image_io::png_parameters(&std::fs::read(&o).unwrap()).unwrap().starts_with("a red circle, café"));
}

#[test]
fn damaged_weights_fail_the_run_and_verify_names_the_tensor() {
    let m = common::bundle_copy("nan-weights");
    // every value of the final norm becomes NaN
    let shard = m.join("model-00002-of-00002.safetensors");
    let st = candle_core::safetensors::load(&shard, &candle_core::Device::Cpu).unwrap();
    let mut tensors: Vec<(String, candle_core::Tensor)> = st.into_iter().collect();
    let mut hit = false;
    for (name, t) in tensors.iter_mut() {
        if name.ends_with("ln_f.weight") {
            *t = (t.ones_like().unwrap() * f64::NAN).unwrap();
            hit = true;
        }
    }
    assert!(hit, "ln_f.weight is in the second shard");
    candle_core::safetensors::save(&tensors.into_iter().collect(), &shard).unwrap();
    let dir = common::scratch("nan-out");
    let o = dir.join("o.png");
    let e = fails(&["generate", "--model", m.to_str().unwrap(), "--prompt", "a red circle", "--width", "40", "--height", "24", "--steps", "2", "--out", o.to_str().unwrap()]);
    assert!(e.contains("NaN or infinite logits") && e.contains("--verify"), "{e}");
    assert!(!o.exists());
    let e = fails(&["ask", "--model", m.to_str().unwrap(), "--image", &input(), "--question", "what?", "--gen-length", "8", "--steps", "8"]);
    assert!(e.contains("NaN or infinite logits"), "{e}");
    let out = run(&["info", "--model", m.to_str().unwrap(), "--verify"], &[], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("ln_f.weight") && err.contains("NaN"), "{err}");
}

#[test]
fn masks_follow_one_rule_and_an_empty_selection_says_it() {
    let dir = common::scratch("mask-rule");
    let o = dir.join("o.png");
    // an RGBA mask: black and opaque where it should regenerate, clear elsewhere
    let rgba = image::RgbaImage::from_fn(40, 24, |x, _| image::Rgba([0, 0, 0, if x < 20 { 255 } else { 0 }]));
    let m = dir.join("alpha.png");
    rgba.save(&m).unwrap();
    let args = ["inpaint", "--model", &fixture(), "--prompt", "a red circle", "--image", &input(), "--mask", m.to_str().unwrap(), "--context", "whole", "--steps", "2", "--feather", "0", "--seed", "1", "--out", o.to_str().unwrap()];
    let out = run(&args, &[], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (a, b) = (image::open(&o).unwrap().to_rgb8(), image::open(input()).unwrap().to_rgb8());
    assert!((20..40).all(|x| (0..24).all(|y| a.get_pixel(x, y) == b.get_pixel(x, y))), "the clear half is kept");
    assert!((0..20).any(|x| (0..24).any(|y| a.get_pixel(x, y) != b.get_pixel(x, y))), "the opaque half regenerated");
    // a black opaque RGB mask selects nothing, and the message says how masks are read
    let black = dir.join("black.png");
    image::RgbImage::new(40, 24).save(&black).unwrap();
    let e = fails(&["inpaint", "--model", &fixture(), "--prompt", "a red circle", "--image", &input(), "--mask", black.to_str().unwrap(), "--out", o.to_str().unwrap()]);
    assert!(e.contains("brightness") && e.contains("alpha"), "{e}");
}

#[test]
fn values_that_used_to_pass_silently_are_refused() {
    let dir = common::scratch("silent");
    let o = dir.join("o.png");
    let o = o.to_str().unwrap();
    let e = fails(&["generate", "--prompt", "a red circle", "--cfg", "-1", "--out", o]);
    assert!(e.contains("cfg = -1") && e.contains("0 to 50"), "{e}");
    let e = fails(&["generate", "--prompt", "a red circle", "--cfg", "3.4e38", "--out", o]);
    assert!(e.contains("0 to 50"), "{e}");
    let e = fails(&["generate", "--prompt", "a red circle", "--cache-ratio", "0.5", "--out", o]);
    assert!(e.contains("add --cache"), "{e}");
    for bad in ["nan", "-2", "1e30"] {
        let e = fails(&["inpaint", "--prompt", "a red circle", "--image", &input(), "--mask", &common::case("mask.png").to_string_lossy(), "--feather", bad, "--out", o]);
        assert!(e.contains("--feather"), "{bad}: {e}");
    }
    let e = fails(&["eval", "--n", "0"]);
    assert!(e.contains("--n 0"), "{e}");
    let e = fails(&["ask", "--image", &input(), "--question", ""]);
    assert!(e.contains("question is empty"), "{e}");
    let e = fails(&["ask", "--image", &input(), "--question", "what?", "--block-length", "0"]);
    assert!(e.contains("--block-length 0"), "{e}");
    // codes of another image
    let codes = dir.join("c.json");
    std::fs::write(&codes, r#"{"height": 2, "width": 2, "codes": [[1, 2], [3, 4]]}"#).unwrap();
    let e = fails(&["inpaint", "--model", &fixture(), "--prompt", "a red circle", "--image", &input(), "--mask", &common::case("mask.png").to_string_lossy(), "--tokens", codes.to_str().unwrap(), "--out", o]);
    assert!(e.contains("2 x 2 grid") && e.contains("6 x 10 cells"), "{e}");
    // a truncated JPEG is refused, not read with a grey lower part
    let jpg = dir.join("cut.jpg");
    let mut bytes = Vec::new();
    image::open(input()).unwrap().write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Jpeg).unwrap();
    std::fs::write(&jpg, &bytes[..bytes.len() * 6 / 10]).unwrap();
    let e = fails(&["ask", "--image", jpg.to_str().unwrap(), "--question", "what?"]);
    assert!(e.contains("cut.jpg") && e.contains("truncated JPEG"), "{e}");
    // a 1 x 1 image holds nothing to edit or ask about
    let tiny = dir.join("tiny.png");
    image::RgbImage::new(1, 1).save(&tiny).unwrap();
    let e = fails(&["edit", "--prompt", "make it blue", "--image", tiny.to_str().unwrap(), "--out", o]);
    assert!(e.contains("1x1") && e.contains("smaller than one"), "{e}");
}

#[test]
fn special_ids_must_be_distinct_and_outside_the_image_codes() {
    let m = common::bundle_copy("special-same");
    let path = m.join("unmask.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["special_tokens"]["mask"] = v["special_tokens"]["eos"].clone();
    std::fs::write(&path, v.to_string()).unwrap();
    let e = fails(&["info", "--model", m.to_str().unwrap()]);
    assert!(e.contains("unmask.json") && e.contains("`mask`") && e.contains("`eos`"), "{e}");
    let m = common::bundle_copy("special-in-codes");
    let path = m.join("unmask.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["special_tokens"]["mask"] = (v["special_tokens"]["image_offset"].as_u64().unwrap() + 3).into();
    std::fs::write(&path, v.to_string()).unwrap();
    let e = fails(&["info", "--model", m.to_str().unwrap()]);
    assert!(e.contains("among the image codes"), "{e}");
}

#[test]
fn hostile_gguf_headers_are_refused_in_one_line_under_a_memory_cap() {
    // a quantized copy of the fixture, then its model.gguf replaced by headers
    // that claim huge counts, names and shapes in a few bytes
    let dir = common::scratch("hostile-gguf").join("q");
    unmask::quantize::quantize(&common::fixture_model(), &dir, unmask::quantize::QuantType::Q8_0).unwrap();
    let hdr = |tensors: u64, meta: u64| [0x4655_4747u32.to_le_bytes().as_slice(), &2u32.to_le_bytes(), &tensors.to_le_bytes(), &meta.to_le_bytes()].concat();
    let name = b"model.transformer.wte.weight";
    let tensor = |dims: &[u64]| {
        let mut t = (name.len() as u64).to_le_bytes().to_vec();
        t.extend_from_slice(name);
        t.extend_from_slice(&(dims.len() as u32).to_le_bytes());
        dims.iter().for_each(|d| t.extend_from_slice(&d.to_le_bytes()));
        t.extend_from_slice(&0u32.to_le_bytes());
        t.extend_from_slice(&0u64.to_le_bytes());
        t
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("tensor count", hdr(1 << 40, 0)),
        ("metadata count", hdr(0, 1 << 40)),
        ("tensor count under candle's cap", hdr(1 << 29, 0)),
        ("name length", [hdr(1, 0), (1u64 << 40).to_le_bytes().to_vec()].concat()),
        ("shape", [hdr(1, 0), tensor(&[1 << 40, 1 << 40]), vec![0; 64]].concat()),
    ];
    let m = dir.to_str().unwrap();
    for (what, bytes) in cases {
        std::fs::write(dir.join("model.gguf"), &bytes).unwrap();
        let out = run(&["info", "--model", m], &[("RUST_BACKTRACE", "1")], &[(libc::RLIMIT_AS, 2 << 30)]);
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        assert!(!out.status.success() && out.status.code() == Some(1), "{what}: a clean refusal, not a crash: {err}");
        assert_eq!(err.lines().count(), 1, "{what}: one line: {err}");
        assert!(err.contains("model.gguf"), "{what}: names the file: {err}");
    }
}

/// Issue 30: an outpaint that grows a 48 x 48 image to 16048 x 16048 px is
/// refused in one line before the canvas exists, under an address-space cap
/// it used to abort in (SIGABRT at a 772 MB allocation), with borders that fit.
#[test]
fn an_outpaint_too_large_for_memory_is_refused_before_any_work() {
    let dir = common::scratch("outpaint-huge");
    let (i, o) = (dir.join("in.png"), dir.join("o.png"));
    image::RgbImage::from_pixel(48, 48, image::Rgb([90, 140, 200])).save(&i).unwrap();
    let b = "8000";
    let args = ["outpaint", "--image", i.to_str().unwrap(), "--prompt", "grass", "--left", b, "--right", b, "--top", b, "--bottom", b, "--out", o.to_str().unwrap()];
    let out = run(&args, &[], &[(libc::RLIMIT_AS, 3 << 30)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].starts_with("error: a 48x48 image extended to 16048x16048 px needs about"), "{err}");
    assert!(lines[0].contains("add at most left "), "{err}");
    assert!(!o.exists());
}

/// Issue 30: `--out` in a folder that takes no new files fails before the
/// run, and a read-only existing output is refused and kept.
#[test]
fn unwritable_outputs_are_refused_before_the_run() {
    let dir = common::scratch("out-checks");
    let e = fails_with(&["generate", "--prompt", "a red circle", "--out", "/proc/unmask-test.png"], &[]);
    assert!(e.contains("/proc/unmask-test.png") && e.contains("cannot be written"), "{e}");
    let ro = dir.join("kept.png");
    std::fs::write(&ro, b"the user's picture").unwrap();
    let mut p = std::fs::metadata(&ro).unwrap().permissions();
    p.set_readonly(true);
    std::fs::set_permissions(&ro, p).unwrap();
    let e = fails_with(&["generate", "--prompt", "a red circle", "--out", ro.to_str().unwrap()], &[]);
    assert!(e.contains("kept.png") && e.contains("read-only"), "{e}");
    assert_eq!(std::fs::read(&ro).unwrap(), b"the user's picture");
}
