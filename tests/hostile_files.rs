//! Files no image tool should trust (issue 16): devices, FIFOs, sparse giants,
//! links to /dev/zero, configs with absurd sizes. Each is refused in one line
//! naming the file (and field) before its contents are read or anything is
//! built from them.

mod common;

use std::path::Path;
use std::process::Command;

fn fails(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_unmask")).args(args).output().expect("run unmask");
    assert!(!out.status.success(), "expected failure for {args:?}");
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(err.lines().count(), 1, "one line, got: {err}");
    err
}

fn edit_json(path: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

fn model() -> String {
    common::fixture_model().to_str().unwrap().to_string()
}

#[test]
fn inputs_that_are_not_regular_files_are_refused_unread() {
    let dir = common::scratch("hostile-inputs");
    let out = dir.join("o.png");
    let e = fails(&["encode", "--model", &model(), "--image", "/dev/zero", "--tokens-out", dir.join("c.json").to_str().unwrap()]);
    assert!(e.contains("/dev/zero") && e.contains("not a regular file"), "{e}");
    let e = fails(&["decode", "--model", &model(), "--tokens", "/dev/zero", "--out", out.to_str().unwrap()]);
    assert!(e.contains("/dev/zero") && e.contains("not a regular file"), "{e}");
    // a 3 GB sparse "photo": refused by its size, in no time and no memory
    let sparse = dir.join("sparse.png");
    std::fs::File::create(&sparse).unwrap().set_len(3 << 30).unwrap();
    let e = fails(&["ask", "--model", &model(), "--image", sparse.to_str().unwrap(), "--question", "what?"]);
    assert!(e.contains("sparse.png") && e.contains("limit for the image"), "{e}");
    let e = fails(&["encode", "--model", &model(), "--image", dir.to_str().unwrap(), "--tokens-out", dir.join("c.json").to_str().unwrap()]);
    assert!(e.contains("is a folder"), "{e}");
}

#[test]
fn a_shard_linked_to_dev_zero_or_a_fifo_is_named_for_what_it_is() {
    let m = common::bundle_copy("shard-zero");
    let shard = m.join("model-00002-of-00002.safetensors");
    std::fs::remove_file(&shard).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &shard).unwrap();
    let e = fails(&["info", "--model", m.to_str().unwrap()]);
    assert!(e.contains("model-00002-of-00002.safetensors") && e.contains("not a regular file"), "{e}");
    std::fs::remove_file(&shard).unwrap();
    let c = std::ffi::CString::new(shard.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo only reads the NUL-terminated path
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // opening a FIFO for reading would block forever: it must not be opened
    let e = fails(&["info", "--model", m.to_str().unwrap()]);
    assert!(e.contains("not a regular file"), "{e}");
}

#[test]
fn absurd_config_sizes_are_blamed_on_config_json() {
    let m = common::bundle_copy("layers");
    edit_json(&m.join("config.json"), |v| v["n_layers"] = 10_000_000.into());
    let e = fails(&["info", "--model", m.to_str().unwrap()]);
    assert!(e.contains("config.json") && e.contains("n_layers") && e.contains("largest supported"), "{e}");
    let m = common::bundle_copy("zero-heads");
    edit_json(&m.join("config.json"), |v| v["n_heads"] = 0.into());
    let e = fails(&["info", "--model", m.to_str().unwrap()]);
    assert!(e.contains("config.json") && e.contains("`n_heads`"), "{e}");
    let m = common::bundle_copy("vq-groups");
    edit_json(&m.join("vqvae/config.json"), |v| v["norm_num_groups"] = 0.into());
    let e = fails(&["info", "--model", m.to_str().unwrap()]);
    assert!(e.contains("vqvae/config.json") && e.contains("norm_num_groups"), "{e}");
    let m = common::bundle_copy("vq-blocks");
    edit_json(&m.join("vqvae/config.json"), |v| v["block_out_channels"] = serde_json::json!(vec![16; 40]));
    let e = fails(&["info", "--model", m.to_str().unwrap()]);
    assert!(e.contains("block_out_channels"), "{e}");
}

#[test]
fn a_config_json_that_is_huge_is_refused_by_size() {
    let m = common::bundle_copy("huge-config");
    let f = std::fs::OpenOptions::new().write(true).open(m.join("config.json")).unwrap();
    f.set_len(100 << 20).unwrap();
    let e = fails(&["info", "--model", m.to_str().unwrap()]);
    assert!(e.contains("config.json") && e.contains("limit"), "{e}");
}

#[test]
fn a_tokenizer_that_cannot_encode_every_text_is_caught_by_info() {
    // the embedded bundle's word-level tokenizer, its unknown-word token renamed away
    let dst = common::scratch("no-unk").join("model");
    let src = unmask::bundle::default_model_dir().expect("embedded model");
    std::fs::create_dir_all(dst.join("vqvae")).unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json", "unmask.json", "vqvae/config.json", "vqvae/diffusion_pytorch_model.safetensors"] {
        std::fs::copy(src.join(f), dst.join(f)).unwrap();
    }
    edit_json(&dst.join("tokenizer.json"), |v| v["model"]["unk_token"] = "<no such token>".into());
    let e = fails(&["info", "--model", dst.to_str().unwrap()]);
    assert!(e.contains("tokenizer.json") && e.contains("cannot encode"), "{e}");
}
