//! Every golden case of cases.json through the library, token for token.

mod common;

use std::cell::RefCell;

use unmask::sampler::{self, CacheSettings, Callbacks, ImageSettings, Prompter, TextSettings};
use unmask::crop::Context;
use unmask::tasks::{self, FitMode, Job, Output};
use unmask::{DeviceChoice, Engine};

fn engine() -> Engine {
    Engine::load(common::fixture_model(), DeviceChoice::Cpu).expect("load fixture bundle")
}

fn grid(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().flat_map(|r| r.as_array().unwrap().iter().map(|c| c.as_u64().unwrap() as u32)).collect()
}

fn counts(v: &serde_json::Value) -> Vec<usize> {
    v.as_array().unwrap().iter().map(|c| c.as_u64().unwrap() as usize).collect()
}

fn greedy(case: &serde_json::Value) -> ImageSettings {
    ImageSettings {
        steps: case["steps"].as_u64().unwrap() as usize,
        cfg: case["cfg"].as_f64().unwrap() as f32,
        cfg_img: case["cfg_img"].as_f64().unwrap() as f32,
        temperature: 0.0,
        seed: 0,
        cache: case.get("cache").map(|c| CacheSettings {
            ratio: c["cache_ratio"].as_f64().unwrap(),
            warmup_ratio: c["warmup_ratio"].as_f64().unwrap(),
            refresh_interval: c["refresh_interval"].as_u64().unwrap() as usize,
        }),
    }
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
    let mask = unmask::image_io::open(&common::case("mask.png")).unwrap().to_luma8();
    let job = Job::Inpaint {
        prompt: case["prompt"].as_str().unwrap().into(),
        image: image.clone(),
        mask,
        codes: None,
        grow: 0,
        feather: 0.0,
        // the golden case is the whole image at scale 1
        context: Context::Whole,
        content: None,
        settings: greedy(case),
    };
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
    let image = unmask::image_io::open_rgb(&common::case("input.png")).unwrap();
    let job = Job::Ask {
        question: case["question"].as_str().unwrap().into(),
        image,
        fit: FitMode::Native,
        gen_length: case["gen_length"].as_u64().unwrap() as usize,
        settings: TextSettings {
            steps: case["steps"].as_u64().unwrap() as usize,
            block_length: case["block_length"].as_u64().unwrap() as usize,
            temperature: 0.0,
            seed: 0,
        },
    };
    let reports = RefCell::new(0usize);
    let mut cb = Callbacks::new().on_text(|_| *reports.borrow_mut() += 1);
    let Output::Answer { text, ids } = tasks::run(&e, &job, &mut cb).unwrap() else { panic!("answer expected") };
    drop(cb);
    let want: Vec<u32> = case["answer_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    assert_eq!(ids, want);
    assert_eq!(text, case["answer"].as_str().unwrap());
    assert!(*reports.borrow() >= 4, "streams text steps");
}
