//! Property tests ("fuzzing", proptest) of every parser of untrusted input:
//! safetensors headers and the weight index, config.json, unmask.json, the
//! VQ config, CODES.json, and images through our decode path. Each input is
//! either random or a valid file mutated (bytes flipped, inserted, cut). The
//! property: the parser returns (a value or an error), never panics, and an
//! error names the file. Cases per target: `UNMASK_FUZZ_CASES` (default 3000:
//! about 3 s for all seven here; 100000 each took 85 s by hand, no failure).

mod common;

use std::path::{Path, PathBuf};

use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("UNMASK_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3000)
}

fn config() -> ProptestConfig {
    // failures persist nowhere: the test prints the shrunk input instead
    ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() }
}

/// A valid file's bytes with `edits` applied: (position, kind, byte).
fn mutate(base: &[u8], edits: &[(usize, u8, u8)], cut: Option<usize>) -> Vec<u8> {
    let mut b = base.to_vec();
    for &(pos, kind, byte) in edits {
        if b.is_empty() {
            break;
        }
        let i = pos % b.len();
        match kind % 3 {
            0 => b[i] = byte,
            1 => b.insert(i, byte),
            _ => {
                b.remove(i);
            }
        }
    }
    if let Some(c) = cut {
        b.truncate(c % (b.len() + 1));
    }
    b
}

fn edits() -> impl Strategy<Value = (Vec<(usize, u8, u8)>, Option<usize>)> {
    (prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..12), prop::option::of(any::<usize>()))
}

/// A scratch copy of the fixture bundle for one target.
fn bundle(name: &str) -> PathBuf {
    common::bundle_copy(name)
}

fn named(e: &unmask::Error, file: &str) -> bool {
    e.to_string().contains(file)
}

fn fuzz_bundle_file(name: &str, rel: &str) {
    let m = bundle(name);
    let path = m.join(rel);
    let base = std::fs::read(&path).unwrap();
    let mut runner = proptest::test_runner::TestRunner::new(config());
    runner
        .run(&edits(), |(ed, cut)| {
            let bytes = mutate(&base, &ed, cut);
            std::fs::write(&path, &bytes).unwrap();
            if let Err(e) = unmask::Bundle::open(&m) {
                // the error names a file of the bundle (the damaged one, or one it points to)
                prop_assert!(e.to_string().contains(m.to_str().unwrap()) || named(&e, rel), "{e}");
            }
            Ok(())
        })
        .unwrap();
    std::fs::write(&path, &base).unwrap();
}

#[test]
fn config_json_never_panics() {
    fuzz_bundle_file("fuzz-config", "config.json");
}

#[test]
fn weight_index_never_panics() {
    fuzz_bundle_file("fuzz-index", "model.safetensors.index.json");
}

#[test]
fn unmask_json_never_panics() {
    fuzz_bundle_file("fuzz-unmask", "unmask.json");
}

#[test]
fn vq_config_never_panics() {
    fuzz_bundle_file("fuzz-vq", "vqvae/config.json");
}

#[test]
fn safetensors_headers_never_panic() {
    let dir = common::scratch("fuzz-safetensors");
    let path = dir.join("w.safetensors");
    let shard = common::fixture_model().join("model-00002-of-00002.safetensors");
    // the header and a little data: mutations land where parsing happens
    let full = std::fs::read(&shard).unwrap();
    let hlen = u64::from_le_bytes(full[..8].try_into().unwrap()) as usize;
    let base = full[..(8 + hlen + 64).min(full.len())].to_vec();
    let mut runner = proptest::test_runner::TestRunner::new(config());
    runner
        .run(&(edits(), prop::collection::vec(any::<u8>(), 0..64), any::<bool>()), |((ed, cut), random, use_random)| {
            let bytes = if use_random { random } else { mutate(&base, &ed, cut) };
            std::fs::write(&path, &bytes).unwrap();
            if let Err(e) = unmask::bundle::read_safetensors_header(&path) {
                prop_assert!(named(&e, "w.safetensors"), "{e}");
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn codes_json_never_panics() {
    let dir = common::scratch("fuzz-codes");
    let path = dir.join("c.json");
    let base = br#"{"height": 2, "width": 3, "codes": [[1, 2, 3], [4, 5, 6]]}"#.to_vec();
    let mut runner = proptest::test_runner::TestRunner::new(config());
    runner
        .run(&(edits(), "\\PC{0,80}", any::<bool>()), |((ed, cut), text, use_text)| {
            let bytes = if use_text { text.into_bytes() } else { mutate(&base, &ed, cut) };
            std::fs::write(&path, &bytes).unwrap();
            match unmask::codes::read(&path, 64) {
                Ok(g) => prop_assert!(g.codes.len() == g.height * g.width && g.codes.iter().all(|&c| c < 64)),
                Err(e) => prop_assert!(named(&e, "c.json"), "{e}"),
            }
            Ok(())
        })
        .unwrap();
}

fn encoded(fmt: image::ImageFormat) -> Vec<u8> {
    let img = image::open(common::case("input.png")).unwrap();
    let mut b = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut b), fmt).unwrap();
    b
}

#[test]
fn images_never_panic_and_decode_within_limits() {
    let bases = [encoded(image::ImageFormat::Png), encoded(image::ImageFormat::Jpeg), encoded(image::ImageFormat::Gif), encoded(image::ImageFormat::Bmp)];
    let mut runner = proptest::test_runner::TestRunner::new(config());
    runner
        .run(&(0usize..4, edits()), |(which, (ed, cut))| {
            let bytes = mutate(&bases[which], &ed, cut);
            match unmask::image_io::decode_bytes(&bytes, Path::new("fuzzed.img")) {
                Ok(img) => {
                    prop_assert!(img.width() <= unmask::image_io::MAX_SIDE && img.height() <= unmask::image_io::MAX_SIDE);
                    let rgb = unmask::image_io::to_rgb_on_white(&img);
                    let mask = unmask::image_io::mask_of(&img);
                    prop_assert_eq!(rgb.dimensions(), mask.dimensions());
                }
                Err(e) => prop_assert!(named(&e, "fuzzed.img"), "{e}"),
            }
            Ok(())
        })
        .unwrap();
}
