//! The engine against the golden fixtures: tokenizer ids, transformer logits
//! (full and ML-Cache partial), VQ codes and pixels.

mod common;

use candle_core::{Device, Tensor};
use unmask::model::{BranchCache, CodeGrid, Rgb};
use unmask::{DeviceChoice, Engine};

fn engine() -> Engine {
    Engine::load(common::fixture_model(), DeviceChoice::Cpu).expect("load fixture bundle")
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shape");
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

fn ids(t: &Tensor) -> Vec<u32> {
    t.to_dtype(candle_core::DType::I64).unwrap().to_vec1::<i64>().unwrap().iter().map(|&v| v as u32).collect()
}

#[test]
fn tokenizer_matches_python_ids() {
    let e = engine();
    let text = std::fs::read_to_string(common::case("tokenize.json")).unwrap();
    let cases: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut n = 0;
    for (name, case) in cases.as_object().unwrap() {
        let want: Vec<u32> = case["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        let got = e.tokenizer.encode(case["text"].as_str().unwrap(), true).unwrap().get_ids().to_vec();
        assert_eq!(got, want, "case {name}");
        n += 1;
    }
    assert!(n >= 5);
}

#[test]
fn full_forward_matches_reference_logits() {
    let e = engine();
    let f = candle_core::safetensors::load(common::case("forward.safetensors"), &Device::Cpu).unwrap();
    let logits = e.llada.logits(&ids(&f["input_ids"])).unwrap();
    let d = max_abs_diff(&logits, &f["logits"]);
    assert!(d <= 1e-4, "max abs diff {d}");
}

#[test]
fn head_slice_at_rows_equals_full_logits_slice() {
    let e = engine();
    let f = candle_core::safetensors::load(common::case("forward.safetensors"), &Device::Cpu).unwrap();
    let h = e.llada.hidden(&ids(&f["input_ids"])).unwrap();
    let cb = e.special.codebook();
    let rows = [3usize, 10, 40];
    let part = e.llada.head(&h, Some(&rows), cb.clone()).unwrap();
    let idx = Tensor::new(&[3u32, 10, 40], &Device::Cpu).unwrap();
    let want = f["logits"].index_select(&idx, 0).unwrap().narrow(1, cb.start, cb.len()).unwrap();
    assert!(max_abs_diff(&part, &want) <= 1e-4);
}

#[test]
fn ml_cache_partial_forward_matches_reference() {
    let e = engine();
    let f = candle_core::safetensors::load(common::case("forward.safetensors"), &Device::Cpu).unwrap();
    let vocab = e.llada.config().vocab;
    let mut cache = BranchCache::new(0..vocab);
    let full = e.llada.forward_fill(&ids(&f["input_ids"]), &mut cache).unwrap();
    assert!(max_abs_diff(&full, &f["logits"]) <= 1e-4);
    let pos: Vec<usize> = ids(&f["partial_positions"]).iter().map(|&p| p as usize).collect();
    let part = e.llada.forward_partial(&ids(&f["partial_input_ids"]), &pos, &mut cache).unwrap();
    let d = max_abs_diff(&part, &f["partial_logits"]);
    assert!(d <= 1e-4, "partial logits max abs diff {d}");
    // rows not recomputed are the cached ones, bit for bit
    let untouched = (0..full.dim(0).unwrap()).find(|i| !pos.contains(i)).unwrap();
    assert_eq!(
        part.get(untouched).unwrap().to_vec1::<f32>().unwrap(),
        full.get(untouched).unwrap().to_vec1::<f32>().unwrap()
    );
}

#[test]
fn vq_encode_and_decode_match_reference() {
    let e = engine();
    let f = candle_core::safetensors::load(common::case("vq.safetensors"), &Device::Cpu).unwrap();
    let (h, w, _) = f["image"].dims3().unwrap();
    let img = Rgb { width: w, height: h, data: f["image"].flatten_all().unwrap().to_vec1::<u8>().unwrap() };
    let grid = e.vq.encode(&img).unwrap();
    let want: Vec<u32> =
        f["codes"].flatten_all().unwrap().to_dtype(candle_core::DType::I64).unwrap().to_vec1::<i64>().unwrap()
            .iter().map(|&c| c as u32).collect();
    assert_eq!((grid.height, grid.width), (6, 10));
    assert_eq!(grid.codes, want, "codes");
    let px = e.vq.decode_f32(&CodeGrid { height: 6, width: 10, codes: want }).unwrap();
    let d = max_abs_diff(&px, &f["decoded"]);
    assert!(d <= 1e-4, "decoded pixels max abs diff {d}");
}

#[test]
fn vq_roundtrip_of_input_png_matches_golden_png() {
    let e = engine();
    let img = unmask::image_io::open_rgb(&common::case("input.png")).unwrap();
    let grid = e.vq.encode(&unmask::image_io::to_rgb(&img)).unwrap();
    let out = e.vq.decode(&grid).unwrap();
    let golden = unmask::image_io::open_rgb(&common::case("vq_decoded.png")).unwrap();
    let worst = out.data.iter().zip(golden.as_raw()).map(|(a, b)| (*a as i32 - *b as i32).abs()).max().unwrap();
    assert!(worst <= 1, "worst channel difference {worst}");
}
