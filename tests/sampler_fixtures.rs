//! Every golden case of cases.json through the library, token for token.

mod common;

use common::{greedy, grid};

use std::cell::RefCell;

use unmask::sampler::{self, Callbacks, Prompter};
use unmask::tasks::{self, FitMode, Job, Output};
use unmask::{DeviceChoice, Engine};

fn engine() -> Engine {
    Engine::load(common::fixture_model(), DeviceChoice::Cpu).expect("load fixture bundle")
}


fn counts(v: &serde_json::Value) -> Vec<usize> {
    v.as_array().unwrap().iter().map(|c| c.as_u64().unwrap() as usize).collect()
}


/// Runs a text-to-image case, checking the final codes and the per-step counts.
fn check_t2i(name: &str) {
    let e = engine();
    let cases = common::cases_json();
    let case = &cases[name];
    let p = Prompter::new(&e.tokenizer, e.special);
    let layout = p.text_to_image(case["prompt"].as_str().unwrap(), 6, 10).unwrap();
    let steps = RefCell::new(Vec::new());
    let mut cb = Callbacks::new().on_image(|s| steps.borrow_mut().push((s.step, s.total, s.unmasked)));
    let out = sampler::sample_image(&e.llada, &e.special, &layout, &greedy(case), &mut cb).unwrap();
    drop(cb);
    assert_eq!(out.codes, grid(&case["codes"]), "{name}: codes");
    let steps = steps.into_inner();
    let want = counts(&case["unmasked_after_step"]);
    assert_eq!(steps.len(), want.len(), "{name}: one progress report per step");
    for (i, (s, total, unmasked)) in steps.iter().enumerate() {
        assert_eq!((*s, *total), (i, want.len()));
        assert_eq!(*unmasked, want[i], "{name}: unmasked after step {i}");
    }
}

#[test]
fn t2i_with_guidance() {
    check_t2i("t2i");
}

#[test]
fn t2i_without_guidance() {
    check_t2i("t2i_nocfg");
}

#[test]
fn t2i_with_ml_cache() {
    check_t2i("t2i_cache");
}

#[test]
fn inpaint_keeps_outside_cells_and_matches_codes() {
    let e = engine();
    let cases = common::cases_json();
    let case = &cases["inpaint"];
    let image = unmask::image_io::open_rgb(&common::case("input.png")).unwrap();
    let job = common::golden_inpaint_job();
    let steps = RefCell::new(Vec::new());
    let mut cb = Callbacks::new().on_image(|s| steps.borrow_mut().push(s.unmasked));
    let Output::Image { codes, image: out, .. } = tasks::run(&e, &job, &mut cb).unwrap() else { panic!("image expected") };
    drop(cb);
    assert_eq!(codes.expect("codes at scale 1").codes, grid(&case["codes"]));
    assert_eq!(steps.into_inner(), counts(&case["unmasked_after_step"]));
    // with no feather, every pixel outside the regenerated cells is the input's
    let mask = unmask::image_io::open(&common::case("mask.png")).unwrap().to_luma8();
    for (x, y, m) in mask.enumerate_pixels() {
        if m[0] == 0 {
            assert_eq!(out.get_pixel(x, y), image.get_pixel(x, y), "pixel {x},{y}");
        }
    }
}

#[test]
fn edit_matches_codes() {
    let e = engine();
    let cases = common::cases_json();
    let case = &cases["edit"];
    let image = unmask::image_io::open_rgb(&common::case("input.png")).unwrap();
    let job = Job::Edit {
        instruction: case["prompt"].as_str().unwrap().into(),
        image,
        fit: FitMode::Native,
        settings: greedy(case),
    };
    let steps = RefCell::new(Vec::new());
    let mut cb = Callbacks::new().on_image(|s| steps.borrow_mut().push(s.unmasked));
    let Output::Image { codes, .. } = tasks::run(&e, &job, &mut cb).unwrap() else { panic!("image expected") };
    drop(cb);
    assert_eq!(codes.expect("codes at scale 1").codes, grid(&case["codes"]));
    assert_eq!(steps.into_inner(), counts(&case["unmasked_after_step"]));
}

#[test]
fn understanding_matches_answer() {
    let e = engine();
    let cases = common::cases_json();
    let case = &cases["mmu"];
    let job = common::golden_ask_job();
    let reports = RefCell::new(0usize);
    let mut cb = Callbacks::new().on_text(|_| *reports.borrow_mut() += 1);
    let Output::Answer { text, ids } = tasks::run(&e, &job, &mut cb).unwrap() else { panic!("answer expected") };
    drop(cb);
    let want: Vec<u32> = case["answer_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    assert_eq!(ids, want);
    assert_eq!(text, case["answer"].as_str().unwrap());
    assert!(*reports.borrow() >= 4, "streams text steps");
}
