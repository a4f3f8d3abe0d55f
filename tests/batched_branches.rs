//! Guidance branches as one batched forward (issue 17, item 1): sequences of
//! different lengths packed into one forward (weights' products over all
//! rows, attention per sequence) give each sequence what it gets alone
//! (within 1e-5), with and without the ML-Cache, and the golden cases keep
//! their exact tokens both ways.

mod common;

use common::{greedy, grid};

use candle_core::{Device, Tensor};
use unmask::model::BranchCache;
use unmask::sampler::{self, Prompter, Quiet, SamplerOptions};
use unmask::{DeviceChoice, Engine};

fn engine() -> Engine {
    Engine::load(common::fixture_model(), DeviceChoice::Cpu).expect("load fixture bundle")
}

fn ids(t: &Tensor) -> Vec<u32> {
    t.to_dtype(candle_core::DType::I64).unwrap().to_vec1::<i64>().unwrap().iter().map(|&v| v as u32).collect()
}

/// Max |a - b| over max |a| (at least 1).
fn rel_diff(a: &Tensor, b: &Tensor) -> f32 {
    let m = |t: Tensor| t.flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
    m((a - b).unwrap().abs().unwrap()) / m(a.abs().unwrap()).max(1.0)
}

/// Three sequences of different lengths from the fixture's forward case.
fn sequences() -> Vec<Vec<u32>> {
    let f = candle_core::safetensors::load(common::case("forward.safetensors"), &Device::Cpu).unwrap();
    let input = ids(&f["input_ids"]);
    let t = input.len();
    vec![input.clone(), input[..t * 2 / 3].to_vec(), input[t / 4..].to_vec()]
}

#[test]
fn a_batch_gives_each_sequence_what_it_gets_alone() {
    let e = engine();
    let seqs = sequences();
    let refs: Vec<&[u32]> = seqs.iter().map(|s| &s[..]).collect();
    let (h, at) = e.llada.hidden_batch(&refs).unwrap();
    assert_eq!(at, vec![0, seqs[0].len(), seqs[0].len() + seqs[1].len()], "packed one after the other");
    assert_eq!(h.dim(0).unwrap(), seqs.iter().map(|s| s.len()).sum::<usize>(), "no padding rows");
    for (b, s) in seqs.iter().enumerate() {
        let alone = e.llada.hidden(s).unwrap();
        let rows = h.narrow(0, at[b], s.len()).unwrap();
        let d = rel_diff(&alone, &rows);
        assert!(d <= 1e-5, "sequence {b} ({} tokens): relative diff {d}", s.len());
    }
}

#[test]
fn a_batched_cache_equals_one_cache_per_sequence() {
    let e = engine();
    let seqs = sequences();
    let refs: Vec<&[u32]> = seqs.iter().map(|s| &s[..]).collect();
    let vocab = 0..e.llada.config().vocab;
    let mut batched = BranchCache::new(vocab.clone());
    let full = e.llada.forward_fill_batch(&refs, &mut batched).unwrap();
    let t = seqs[0].len();
    let at = batched.offsets();
    // partial: different counts, one sequence with none; the ids change at those positions
    let positions: Vec<Vec<usize>> = vec![vec![3, 10, 50, t - 1], vec![], (5..20).collect()];
    let changed: Vec<Vec<u32>> = seqs
        .iter()
        .zip(&positions)
        .map(|(s, p)| s.iter().enumerate().map(|(i, &id)| if p.contains(&i) { (id + 7) % 40 } else { id }).collect())
        .collect();
    let crefs: Vec<&[u32]> = changed.iter().map(|s| &s[..]).collect();
    let prefs: Vec<&[usize]> = positions.iter().map(|p| &p[..]).collect();
    let merged = e.llada.forward_partial_batch(&crefs, &prefs, &mut batched).unwrap();
    for b in 0..seqs.len() {
        let mut own = BranchCache::new(vocab.clone());
        let f = e.llada.forward_fill(&seqs[b], &mut own).unwrap();
        let n = seqs[b].len();
        assert!(rel_diff(&f, &full.narrow(0, at[b], n).unwrap()) <= 1e-5, "fill, sequence {b}");
        let p = e.llada.forward_partial(&changed[b], &positions[b], &mut own).unwrap();
        let d = rel_diff(&p, &merged.narrow(0, at[b], n).unwrap());
        assert!(d <= 1e-5, "partial, sequence {b}: relative diff {d}");
    }
    // the cache refuses sequences it was not filled for
    assert!(e.llada.forward_partial_batch(&crefs[..2], &prefs[..2], &mut batched).is_err());
}

#[test]
fn golden_cases_are_exact_batched_and_one_branch_at_a_time() {
    let e = engine();
    let cases = common::cases_json();
    let p = Prompter::new(&e.tokenizer, e.special);
    for name in ["t2i", "t2i_cache"] {
        let case = &cases[name];
        let layout = p.text_to_image(case["prompt"].as_str().unwrap(), 6, 10).unwrap();
        for batch_branches in [true, false] {
            let out = sampler::sample_image_with(&e.llada, &e.special, &layout, &greedy(case), SamplerOptions { batch_branches, ..Default::default() }, &mut Quiet).unwrap();
            assert_eq!(out.codes, grid(&case["codes"]), "{name}, batched: {batch_branches}");
        }
    }
}
