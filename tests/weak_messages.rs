//! Messages that used to be weak and values that used to pass silently
//! (issue item 5): EXIF orientation, negative numbers, empty code grids,
//! guidance of `plan`, prompts with nothing printable, NaN weights in
//! `quantize`, mid-grey masks and the flag `plan --quant` names.

mod common;

use std::io::Cursor;
use std::path::Path;
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_unmask")).args(args).output().expect("run unmask")
}

/// Runs `unmask ARGS`, expects failure, returns its one-line message.
fn fails(args: &[&str]) -> String {
    let out = run(args);
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert!(!out.status.success(), "expected failure for {args:?}; stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line, got: {err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

fn model() -> String {
    common::fixture_model().to_str().unwrap().to_string()
}

fn input() -> String {
    common::case("input.png").to_str().unwrap().to_string()
}

// ---- 1. EXIF orientation ----

/// A JPEG of `img` with an EXIF APP1 segment (big-endian TIFF, one IFD
/// entry: Orientation = `orientation`) right after its SOI marker.
fn jpeg_with_orientation(img: &image::RgbImage, orientation: u16) -> Vec<u8> {
    let mut plain = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut Cursor::new(&mut plain), 95).encode_image(img).unwrap();
    assert_eq!(&plain[..2], &[0xFF, 0xD8], "SOI");
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"MM\x00\x2A"); // big-endian TIFF
    tiff.extend_from_slice(&8u32.to_be_bytes()); // first IFD at offset 8
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes()); // one value
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]); // value padded to 4 bytes
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    let mut payload = b"Exif\x00\x00".to_vec();
    payload.extend_from_slice(&tiff);
    let mut out = plain[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&plain[2..]);
    out
}

fn is_red(p: &image::Rgb<u8>) -> bool {
    p[0] > 180 && p[1] < 80 && p[2] < 80
}

fn is_blue(p: &image::Rgb<u8>) -> bool {
    p[2] > 180 && p[0] < 80 && p[1] < 80
}

#[test]
fn exif_orientation_6_turns_a_jpeg_as_viewers_show_it() {
    // 64x32, red in the top-left 32x16 block, blue elsewhere
    let img = image::RgbImage::from_fn(64, 32, |x, y| if x < 32 && y < 16 { image::Rgb([255, 0, 0]) } else { image::Rgb([0, 0, 255]) });
    let bytes = jpeg_with_orientation(&img, 6);
    let dir = common::scratch("exif-orientation");
    let path = dir.join("portrait.jpg");
    std::fs::write(&path, &bytes).unwrap();

    // stored 64x32, shown (rotated 90 degrees clockwise) 32x64: the red
    // block moves to the top-right quarter
    let rgb = unmask::image_io::open_rgb(&path).unwrap();
    assert_eq!(rgb.dimensions(), (32, 64), "width and height swapped");
    assert!(is_red(rgb.get_pixel(24, 8)), "top-right is red: {:?}", rgb.get_pixel(24, 8));
    assert!(is_blue(rgb.get_pixel(8, 8)), "top-left is blue: {:?}", rgb.get_pixel(8, 8));
    assert!(is_blue(rgb.get_pixel(24, 56)), "bottom-right is blue: {:?}", rgb.get_pixel(24, 56));
    assert!(is_blue(rgb.get_pixel(8, 56)), "bottom-left is blue: {:?}", rgb.get_pixel(8, 56));

    // a mask is read the same way
    let m = unmask::image_io::mask_of(&unmask::image_io::open(&path).unwrap());
    assert_eq!(m.dimensions(), (32, 64));

    // without the tag (Orientation = 1) the image stays as stored
    let same = unmask::image_io::decode_bytes(&jpeg_with_orientation(&img, 1), Path::new("a.jpg")).unwrap().to_rgb8();
    assert_eq!(same.dimensions(), (64, 32));
    assert!(is_red(same.get_pixel(8, 4)));
}

// ---- 2. negative numbers ----

#[test]
fn negative_numbers_are_reported_as_numbers_naming_the_flag() {
    let dir = common::scratch("negative");
    let o = dir.join("o.png");
    let o = o.to_str().unwrap();
    let e = fails(&["generate", "--model", &model(), "--prompt", "a red circle", "--width", "-48", "--out", o]);
    assert!(e.contains("--width -48") && e.contains("1 to 16384"), "{e}");
    assert!(!e.contains("unexpected argument"), "{e}");
    let e = fails(&["plan", "--preset", "lumina-dimoo-8b", "--height", "-16"]);
    assert!(e.contains("--height -16") && e.contains("negative"), "{e}");
    let e = fails(&["generate", "--model", &model(), "--prompt", "a red circle", "--steps", "-3", "--out", o]);
    assert!(e.contains("--steps -3"), "{e}");
    let e = fails(&["generate", "--model", &model(), "--prompt", "a red circle", "--seed", "-1", "--out", o]);
    assert!(e.contains("--seed -1"), "{e}");
    let e = fails(&["outpaint", "--model", &model(), "--prompt", "sky", "--image", &input(), "--left", "-8", "--out", o]);
    assert!(e.contains("--left -8"), "{e}");
    let e = fails(&["ask", "--model", &model(), "--image", &input(), "--question", "what?", "--gen-length", "-8"]);
    assert!(e.contains("--gen-length -8"), "{e}");
    // too large is a range, named the same way
    let e = fails(&["generate", "--model", &model(), "--prompt", "a red circle", "--width", "99999", "--out", o]);
    assert!(e.contains("--width 99999") && e.contains("between 1 and 16384"), "{e}");
    assert!(!Path::new(o).exists());
}

// ---- 3. empty code grids ----

#[test]
fn an_empty_codes_grid_is_described_in_words() {
    let dir = common::scratch("empty-codes");
    let read = |name: &str, json: &str| {
        let p = dir.join(name);
        std::fs::write(&p, json).unwrap();
        match unmask::codes::read(&p, 64) {
            Ok(_) => panic!("{name}: refused"),
            Err(e) => e.to_string(),
        }
    };
    let e = read("empty.json", r#"{"height": 0, "width": 0, "codes": []}"#);
    assert!(e.contains("`codes` is empty") && e.contains("0x0 cells") && e.contains("at least one row"), "{e}");
    assert!(!e.contains("0 rows of 0"), "{e}");
    let e = read("declared.json", r#"{"height": 2, "width": 3, "codes": []}"#);
    assert!(e.contains("`codes` is empty") && e.contains("2x3 cells"), "{e}");
    let e = read("rows.json", r#"{"height": 2, "width": 2, "codes": [[1, 2]]}"#);
    assert!(e.contains("1 row(s)") && e.contains("`height` is 2"), "{e}");
    let e = read("row.json", r#"{"height": 2, "width": 2, "codes": [[1, 2], [3]]}"#);
    assert!(e.contains("row 1") && e.contains("`width` is 2"), "{e}");
    let p = dir.join("good.json");
    std::fs::write(&p, r#"{"height": 1, "width": 2, "codes": [[1, 2]]}"#).unwrap();
    assert_eq!(unmask::codes::read(&p, 64).unwrap().codes, vec![1, 2]);
}

// ---- 4. guidance of `plan` ----

#[test]
fn plan_refuses_nan_infinite_and_absurd_guidance() {
    for (flag, v) in [("--cfg", "nan"), ("--cfg", "inf"), ("--cfg", "-1"), ("--cfg", "1e30"), ("--cfg-img", "1e30"), ("--cfg-img", "nan")] {
        let e = fails(&["plan", "--preset", "lumina-dimoo-8b", "--edit", flag, v]);
        assert!(e.contains(&format!("{flag} ")) && e.contains("0 to 50"), "{flag} {v}: {e}");
    }
    let ok = run(&["plan", "--preset", "lumina-dimoo-8b", "--edit", "--cfg", "4", "--cfg-img", "2.5", "--device", "cpu"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
}

// ---- 5. prompts with nothing printable ----

#[test]
fn prompts_with_nothing_printable_are_refused() {
    use unmask::sampler::layout::has_printable;
    for nothing in ["\u{200B}", "\u{200C}\u{200D}", "\u{FEFF} \u{200B}", "\u{7}\u{1b}", " \t\n", "\u{2060}\u{00AD}"] {
        assert!(!has_printable(nothing), "{nothing:?}");
    }
    for text in ["a", "\u{200B}cat", "\u{6f22}", "\u{1f642}\u{FE0F}"] {
        assert!(has_printable(text), "{text:?}");
    }
    let dir = common::scratch("unprintable");
    let o = dir.join("o.png");
    for prompt in ["\u{200B}\u{200C}\u{200D}\u{FEFF}", "\u{1}\u{2}\u{7f}"] {
        let e = fails(&["generate", "--model", &model(), "--prompt", prompt, "--width", "40", "--height", "24", "--steps", "2", "--out", o.to_str().unwrap()]);
        assert!(e.contains("prompt has no printable text"), "{prompt:?}: {e}");
    }
    assert!(!o.exists());
    let e = fails(&["ask", "--model", &model(), "--image", &input(), "--question", "\u{200B}", "--gen-length", "8", "--steps", "8"]);
    assert!(e.contains("question has no printable text"), "{e}");
}

// ---- 6. quantize of damaged weights ----

/// Sets every value of the tensors whose name ends with `suffix` in `file` to NaN.
fn poison(file: &Path, suffix: &str) {
    let st = candle_core::safetensors::load(file, &candle_core::Device::Cpu).unwrap();
    let mut hit = false;
    let tensors: std::collections::HashMap<String, candle_core::Tensor> = st
        .into_iter()
        .map(|(name, t)| {
            if name.ends_with(suffix) {
                hit = true;
                (name, (t.ones_like().unwrap() * f64::NAN).unwrap())
            } else {
                (name, t)
            }
        })
        .collect();
    assert!(hit, "{suffix} in {}", file.display());
    candle_core::safetensors::save(&tensors, file).unwrap();
}

#[test]
fn quantize_refuses_nan_weights_and_writes_nothing() {
    let m = common::bundle_copy("quant-nan");
    poison(&m.join("model-00001-of-00002.safetensors"), "blocks.0.q_proj.weight");
    let dir = common::scratch("quant-nan-out");
    let out = dir.join("q");
    let e = fails(&["quantize", "--model", m.to_str().unwrap(), "--out", out.to_str().unwrap(), "--type", "q8_0"]);
    assert!(e.contains("model.transformer.blocks.0.q_proj.weight") && e.contains("NaN"), "{e}");
    assert!(e.contains("model-00001-of-00002.safetensors"), "names the file: {e}");
    assert!(!out.exists(), "no bundle written");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "no partial folder left");

    // the VQ-VAE, copied unchanged, is checked too
    let m = common::bundle_copy("quant-nan-vq");
    let vq = m.join("vqvae/diffusion_pytorch_model.safetensors");
    let first = candle_core::safetensors::load(&vq, &candle_core::Device::Cpu).unwrap().into_keys().next().unwrap();
    poison(&vq, &first);
    let e = fails(&["quantize", "--model", m.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(e.contains(&first) && e.contains("diffusion_pytorch_model.safetensors"), "{e}");
    assert!(!out.exists());
}

// ---- 7. mid-grey masks ----

#[test]
fn a_mid_grey_mask_is_empty_and_the_message_says_the_threshold() {
    let dir = common::scratch("grey-mask");
    let o = dir.join("o.png");
    let grey = dir.join("grey.png");
    image::GrayImage::from_pixel(40, 24, image::Luma([127])).save(&grey).unwrap();
    let e = fails(&["inpaint", "--model", &model(), "--prompt", "a red circle", "--image", &input(), "--mask", grey.to_str().unwrap(), "--out", o.to_str().unwrap()]);
    assert!(e.contains("mask is empty") && e.contains("above 127 of 255") && e.contains("highest value is 127 of 255"), "{e}");
    assert!(e.contains("brightness") && e.contains("alpha"), "the rule is still stated: {e}");
    let black = dir.join("black.png");
    image::GrayImage::new(40, 24).save(&black).unwrap();
    let e = fails(&["inpaint", "--model", &model(), "--prompt", "a red circle", "--image", &input(), "--mask", black.to_str().unwrap(), "--out", o.to_str().unwrap()]);
    assert!(e.contains("all 0"), "{e}");
    // one step lighter is painted, as the message says
    assert!(unmask::crop::islands(&image::GrayImage::from_pixel(40, 24, image::Luma([128]))).len() == 1);
    assert!(unmask::crop::islands(&image::GrayImage::from_pixel(40, 24, image::Luma([127]))).is_empty());
    assert!(!o.exists());
}

// ---- 8. the flag `plan --quant` names ----

#[test]
fn plan_quant_errors_name_quant() {
    let e = fails(&["plan", "--preset", "lumina-dimoo-8b", "--quant", "q2"]);
    assert!(e.contains("--quant q2") && e.contains("q8_0 or q4k"), "{e}");
    assert!(!e.contains("--type"), "{e}");
    let e = fails(&["quantize", "--model", &model(), "--out", "/nonexistent/x", "--type", "q3"]);
    assert!(e.contains("--type q3"), "{e}");
}
