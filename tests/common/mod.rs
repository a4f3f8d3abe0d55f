//! Shared helpers for the integration tests: where the golden fixtures live.
#![allow(dead_code)]

pub mod hub;
pub mod server;

use std::path::PathBuf;

/// `../shared/fixtures/tiny-dimoo`, beside the checkout. Fails with a clear
/// message when the fixtures are not there.
pub fn fixtures() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/tiny-dimoo");
    assert!(
        dir.join("model/config.json").is_file(),
        "golden fixtures not found at {}: the tests need ../shared/fixtures/tiny-dimoo beside the checkout",
        dir.display()
    );
    dir
}

pub fn fixture_model() -> PathBuf {
    fixtures().join("model")
}

pub fn case(name: &str) -> PathBuf {
    fixtures().join("cases").join(name)
}

pub fn cases_json() -> serde_json::Value {
    let text = std::fs::read_to_string(case("cases.json")).expect("read cases.json");
    serde_json::from_str(&text).expect("parse cases.json")
}

/// A scratch folder unique to one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("unmask-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Copies the fixture bundle into a scratch folder so a test can damage it.
pub fn bundle_copy(name: &str) -> PathBuf {
    let dst = scratch(name).join("model");
    copy_dir(&fixture_model(), &dst);
    dst
}

fn copy_dir(src: &std::path::Path, dst: &std::path::Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap();
            let mut perm = std::fs::metadata(&to).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perm.set_readonly(false);
            std::fs::set_permissions(&to, perm).unwrap();
        }
    }
}

/// A golden case's code grid, row-major.
pub fn grid(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().flat_map(|r| r.as_array().unwrap().iter().map(|c| c.as_u64().unwrap() as u32)).collect()
}

/// A golden image case's settings, greedy (temperature 0, seed 0).
pub fn greedy(case: &serde_json::Value) -> unmask::sampler::ImageSettings {
    unmask::sampler::ImageSettings {
        steps: case["steps"].as_u64().unwrap() as usize,
        cfg: case["cfg"].as_f64().unwrap() as f32,
        cfg_img: case["cfg_img"].as_f64().unwrap() as f32,
        temperature: 0.0,
        seed: 0,
        cache: case.get("cache").map(|c| unmask::sampler::CacheSettings {
            ratio: c["cache_ratio"].as_f64().unwrap(),
            warmup_ratio: c["warmup_ratio"].as_f64().unwrap(),
            refresh_interval: c["refresh_interval"].as_u64().unwrap() as usize,
        }),
    }
}

/// The golden `inpaint` case as a job: the whole image at scale 1.
pub fn golden_inpaint_job() -> unmask::tasks::Job {
    let cases = cases_json();
    let case = &cases["inpaint"];
    unmask::tasks::Job::Inpaint {
        regions: vec![unmask::tasks::Region::new(unmask::image_io::open(&self::case("mask.png")).unwrap().to_luma8(), case["prompt"].as_str().unwrap())],
        image: unmask::image_io::open_rgb(&self::case("input.png")).unwrap(),
        codes: None,
        grow: 0,
        cover: unmask::tasks::Cover::Half,
        feather: 0.0,
        context: unmask::crop::Context::Whole,
        content: None,
        settings: greedy(case),
    }
}

/// The golden `mmu` case as a job.
pub fn golden_ask_job() -> unmask::tasks::Job {
    let cases = cases_json();
    let case = &cases["mmu"];
    unmask::tasks::Job::Ask {
        question: case["question"].as_str().unwrap().into(),
        image: unmask::image_io::open_rgb(&self::case("input.png")).unwrap(),
        fit: unmask::tasks::FitMode::Native,
        gen_length: case["gen_length"].as_u64().unwrap() as usize,
        settings: unmask::sampler::TextSettings {
            steps: case["steps"].as_u64().unwrap() as usize,
            block_length: case["block_length"].as_u64().unwrap() as usize,
            temperature: 0.0,
            seed: 0,
            cache: false,
        },
    }
}
