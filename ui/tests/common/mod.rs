//! Shared by the Studio's kittest tests: a harness around the real app, and
//! stepping frames until the background worker is done.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use unmask_studio::{Studio, StudioOptions};
pub mod canvas;

/// The tiny fixture model's folder (`../shared/fixtures/tiny-dimoo`).
pub fn fixtures() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/tiny-dimoo");
    assert!(d.join("model/config.json").is_file(), "fixtures not found at {}", d.display());
    d
}

/// A scratch folder unique to one test.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("unmask-studio-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The Studio on the fixture model with the fixture's input photo open,
/// loaded, its notices cleared, a fixed seed and 6 steps.
pub fn fixture_studio(settings_path: Option<PathBuf>) -> Studio {
    let mut s = Studio::new(StudioOptions {
        settings_path,
        model_dir: Some(fixtures().join("model")),
        open: Some(fixtures().join("cases/input.png")),
        ctx: None,
        session_dir: None,
    });
    assert!(s.wait_idle(Duration::from_secs(30)), "model loads");
    assert!(s.model_info().is_some(), "fixture model loaded: {:?}", s.notices);
    s.notices.clear();
    s.settings.random_seed = false;
    s.settings.seed = 3;
    s.settings.steps = 6;
    s
}

/// The whole Studio in a `w x h` window, rendered with wgpu (software).
pub fn harness(s: Studio, w: f32, h: f32) -> Harness<'static, Studio> {
    let mut h = Harness::builder().with_size(egui::vec2(w, h)).wgpu().build_ui_state(|ui, s: &mut Studio| s.show(ui), s);
    h.run_steps(3);
    h
}

/// Steps frames until `done` holds (the worker runs in the background).
pub fn until(h: &mut Harness<'static, Studio>, what: &str, done: impl Fn(&Studio) -> bool) {
    let end = Instant::now() + Duration::from_secs(60);
    while !done(h.state()) {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
        h.step();
    }
    h.run_steps(2);
}
pub mod studio_fixes;
