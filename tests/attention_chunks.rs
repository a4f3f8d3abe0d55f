//! Attention in query chunks (issue 17, item 3): with a bound so small that
//! every layer runs its queries a few rows at a time, the forward equals the
//! unchunked one within 1e-5 (full and ML-Cache partial passes) and every
//! golden case keeps its exact tokens.

mod common;

use common::{greedy, grid};

use candle_core::{Device, Tensor};
use unmask::model::BranchCache;
use unmask::sampler::{self, Prompter, Quiet};
use unmask::tasks::{self, FitMode, Job, Output};
use unmask::{DeviceChoice, Engine};

fn engine(bytes: Option<usize>) -> Engine {
    let mut e = Engine::load(common::fixture_model(), DeviceChoice::Cpu).expect("load fixture bundle");
    if let Some(b) = bytes {
        e.llada.set_attention_bytes(b);
    }
    e
}

/// One head at a time: a head's scores and softmax over the 108-token case
/// are 93 KB (two heads would be 187 KB).
const ONE_HEAD: usize = 100_000;
/// Two query rows at a time: a row of one head is 864 bytes.
const TINY: usize = 2_000;

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

fn ids(t: &Tensor) -> Vec<u32> {
    t.to_dtype(candle_core::DType::I64).unwrap().to_vec1::<i64>().unwrap().iter().map(|&v| v as u32).collect()
}



#[test]
fn chunked_forwards_equal_the_unchunked_ones() {
    let (plain, chunked, rows) = (engine(None), engine(Some(ONE_HEAD)), engine(Some(TINY)));
    let f = candle_core::safetensors::load(common::case("forward.safetensors"), &Device::Cpu).unwrap();
    let input = ids(&f["input_ids"]);
    let t = input.len();
    assert_eq!(chunked.llada.attention_split(t, t), (1, t), "a head at a time");
    let (h, r) = rows.llada.attention_split(t, t);
    assert!(h == 1 && r > 1 && r < t / 4, "{r} rows a chunk of {t}: the tiny bound splits rows");
    assert!(r * 2 * t * 4 <= TINY, "no chunk's scores exceed the bound");
    let a = plain.llada.logits(&input).unwrap();
    // whole heads: the same products, bit for bit
    assert_eq!(chunked.llada.logits(&input).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap(), a.flatten_all().unwrap().to_vec1::<f32>().unwrap());
    // rows split: equal up to summation order, relative to the logits' scale
    let b = rows.llada.logits(&input).unwrap();
    let scale = a.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
    let d = max_abs_diff(&a, &b) / scale.max(1.0);
    assert!(d <= 1e-5, "rows split: max relative diff {d} (scale {scale})");
    assert!(max_abs_diff(&b, &f["logits"]) <= 1e-4, "and still the reference's");
    // the ML-Cache passes chunk too
    let vocab = plain.llada.config().vocab;
    let pos: Vec<usize> = ids(&f["partial_positions"]).iter().map(|&p| p as usize).collect();
    let (mut ca, mut cb) = (BranchCache::new(0..vocab), BranchCache::new(0..vocab));
    plain.llada.forward_fill(&input, &mut ca).unwrap();
    chunked.llada.forward_fill(&input, &mut cb).unwrap();
    let pa = plain.llada.forward_partial(&ids(&f["partial_input_ids"]), &pos, &mut ca).unwrap();
    let pb = chunked.llada.forward_partial(&ids(&f["partial_input_ids"]), &pos, &mut cb).unwrap();
    assert_eq!(pa.flatten_all().unwrap().to_vec1::<f32>().unwrap(), pb.flatten_all().unwrap().to_vec1::<f32>().unwrap(), "partial forward, a head at a time");
}

#[test]
fn golden_cases_stay_exact_with_chunked_attention() {
    // rows split: the case that is not bit-identical by construction
    let e = engine(Some(TINY));
    let cases = common::cases_json();
    let p = Prompter::new(&e.tokenizer, e.special);
    for name in ["t2i", "t2i_nocfg", "t2i_cache"] {
        let case = &cases[name];
        let layout = p.text_to_image(case["prompt"].as_str().unwrap(), 6, 10).unwrap();
        let out = sampler::sample_image(&e.llada, &e.special, &layout, &greedy(case), &mut Quiet).unwrap();
        assert_eq!(out.codes, grid(&case["codes"]), "{name}");
    }
    let image = unmask::image_io::open_rgb(&common::case("input.png")).unwrap();
    let case = &cases["inpaint"];
    let job = common::golden_inpaint_job();
    let Output::Image { codes, .. } = tasks::run(&e, &job, &mut Quiet).unwrap() else { panic!() };
    assert_eq!(codes.unwrap().codes, grid(&case["codes"]), "inpaint");
    let case = &cases["edit"];
    let job = Job::Edit { instruction: case["prompt"].as_str().unwrap().into(), image: image.clone(), fit: FitMode::Native, settings: greedy(case) };
    let Output::Image { codes, .. } = tasks::run(&e, &job, &mut Quiet).unwrap() else { panic!() };
    assert_eq!(codes.unwrap().codes, grid(&case["codes"]), "edit");
    let case = &cases["mmu"];
    let job = common::golden_ask_job();
    let Output::Answer { ids, .. } = tasks::run(&e, &job, &mut Quiet).unwrap() else { panic!() };
    let want: Vec<u32> = case["answer_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    assert_eq!(ids, want, "mmu");
}
