//! Shared by the Studio's kittest tests: a harness around the real app, and
//! stepping frames until the background worker is done.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use egui_kittest::Harness;
use unmask_studio::Studio;

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
