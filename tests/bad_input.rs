//! Bad input gets a non-zero exit and one line naming the file (or tensor or
//! field) and what was expected. Each case damages a copy of the fixture bundle.

mod common;

use std::path::Path;
use std::process::Command;

/// Runs `unmask ARGS`, expects failure, returns the one-line message.
fn fails(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_unmask")).args(args).output().expect("run unmask");
    assert!(!out.status.success(), "expected failure for {args:?}");
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(err.lines().count(), 1, "one line, got: {err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

fn info(model: &Path) -> String {
    fails(&["info", "--model", model.to_str().unwrap()])
}

fn edit_json(path: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

#[test]
fn missing_shard() {
    let m = common::bundle_copy("missing-shard");
    std::fs::remove_file(m.join("model-00002-of-00002.safetensors")).unwrap();
    let e = info(&m);
    assert!(e.contains("model-00002-of-00002.safetensors") && e.contains("missing"), "{e}");
}

#[test]
fn truncated_shard() {
    let m = common::bundle_copy("truncated-shard");
    let p = m.join("model-00001-of-00002.safetensors");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 1000]).unwrap();
    let e = info(&m);
    assert!(e.contains("model-00001-of-00002.safetensors") && e.contains("truncated"), "{e}");
}

#[test]
fn weight_map_outside_bundle() {
    let m = common::bundle_copy("outside");
    edit_json(&m.join("model.safetensors.index.json"), |v| {
        v["weight_map"]["model.transformer.ln_f.weight"] = "../../etc/passwd".into();
    });
    let e = info(&m);
    assert!(e.contains("model.safetensors.index.json") && e.contains("outside the bundle"), "{e}");
}

#[test]
fn pickle_instead_of_safetensors() {
    let m = common::bundle_copy("pickle");
    for f in ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json"] {
        std::fs::remove_file(m.join(f)).unwrap();
    }
    std::fs::write(m.join("pytorch_model.bin"), b"\x80\x02}q\x00.").unwrap();
    let e = info(&m);
    assert!(e.contains("pytorch_model.bin") && e.contains("pickle"), "{e}");

    // a pickle under a safetensors name is caught by its bytes
    let m = common::bundle_copy("pickle-renamed");
    std::fs::write(m.join("model-00001-of-00002.safetensors"), b"PK\x03\x04 torch zip archive").unwrap();
    let e = info(&m);
    assert!(e.contains("model-00001-of-00002.safetensors") && e.contains("pickle"), "{e}");
}

#[test]
fn tensor_of_wrong_shape() {
    let m = common::bundle_copy("shape");
    edit_json(&m.join("config.json"), |v| v["mlp_hidden_size"] = 96.into());
    let e = info(&m);
    assert!(e.contains("ff_proj.weight") && e.contains("[96, 64]") && e.contains("[128, 64]"), "{e}");
}

#[test]
fn missing_vqvae() {
    let m = common::bundle_copy("novq");
    std::fs::remove_dir_all(m.join("vqvae")).unwrap();
    let e = info(&m);
    assert!(e.contains("vqvae") && e.contains("missing"), "{e}");
}

#[test]
fn unparsable_config() {
    let m = common::bundle_copy("badconfig");
    std::fs::write(m.join("config.json"), "{ \"d_model\": 64, oops").unwrap();
    let e = info(&m);
    assert!(e.contains("config.json") && e.contains("not a LLaDA config"), "{e}");
}

#[test]
fn config_field_out_of_range() {
    let m = common::bundle_copy("heads");
    edit_json(&m.join("config.json"), |v| v["n_heads"] = 5.into());
    let e = info(&m);
    assert!(e.contains("config.json") && e.contains("n_heads"), "{e}");
}

#[test]
fn corrupt_image() {
    let dir = common::scratch("corrupt-image");
    let bad = dir.join("broken.png");
    let good = std::fs::read(common::case("input.png")).unwrap();
    std::fs::write(&bad, &good[..good.len() / 2]).unwrap();
    let model = common::fixture_model();
    let e = fails(&[
        "encode", "--model", model.to_str().unwrap(), "--image", bad.to_str().unwrap(),
        "--tokens-out", dir.join("c.json").to_str().unwrap(),
    ]);
    assert!(e.contains("broken.png") && e.contains("corrupt"), "{e}");
    assert!(!dir.join("c.json").exists());
}

#[test]
fn oversized_image() {
    // a valid PNG header claiming 100000 x 100000 pixels
    let dir = common::scratch("huge-image");
    let huge = dir.join("huge.png");
    let mut png = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png, 100_000, 100_000);
        enc.set_color(png::ColorType::Grayscale);
        let _ = enc.write_header().map(|w| drop(w));
    }
    std::fs::write(&huge, &png).unwrap();
    let model = common::fixture_model();
    let e = fails(&[
        "encode", "--model", model.to_str().unwrap(), "--image", huge.to_str().unwrap(),
        "--tokens-out", dir.join("c.json").to_str().unwrap(),
    ]);
    assert!(e.contains("huge.png") && e.contains("too large"), "{e}");
}

#[test]
fn mask_of_the_wrong_size() {
    let dir = common::scratch("mask-size");
    let mask = dir.join("mask.png");
    image::GrayImage::from_pixel(8, 8, image::Luma([255])).save(&mask).unwrap();
    let model = common::fixture_model();
    let input = common::case("input.png");
    let e = fails(&[
        "inpaint", "--model", model.to_str().unwrap(), "--prompt", "a red circle", "--image", input.to_str().unwrap(),
        "--mask", mask.to_str().unwrap(), "--out", dir.join("o.png").to_str().unwrap(), "--seed", "1",
    ]);
    assert!(e.contains("mask is 8x8") && e.contains("40x24"), "{e}");
}

#[test]
fn prompt_too_long() {
    let dir = common::scratch("long-prompt");
    let model = common::fixture_model();
    let long = "a red circle on the left ".repeat(200);
    let e = fails(&[
        "generate", "--model", model.to_str().unwrap(), "--prompt", &long, "--width", "40", "--height", "24",
        "--out", dir.join("o.png").to_str().unwrap(), "--seed", "1",
    ]);
    assert!(e.contains("prompt too long"), "{e}");
    assert!(!dir.join("o.png").exists());
}
