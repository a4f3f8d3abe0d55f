//! Frame times of the Studio canvas at 4096 x 4096 against 512 x 512 (the
//! baseline, same run): idle frames and frames while a brush stroke moves.
//!
//! `cargo bench -p unmask-studio --bench canvas`

use std::time::Instant;

use egui_kittest::Harness;
use unmask_studio::{Studio, StudioOptions};

fn studio_with(side: u32) -> Studio {
    let path = std::env::temp_dir().join(format!("unmask-canvas-bench-{side}.png"));
    let img = image::RgbImage::from_fn(side, side, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 128]));
    img.save(&path).expect("write bench image");
    let mut s = Studio::new(StudioOptions { settings_path: None, model_dir: Some("/nonexistent".into()), open: Some(path), ctx: None, session_dir: None });
    s.wait_idle(std::time::Duration::from_secs(5));
    s.notices.clear();
    s.settings.brush_size = side as f32 / 20.0;
    s
}

/// Median milliseconds per frame: idle, then while painting.
fn measure(side: u32) -> (f64, f64) {
    let mut h = Harness::builder().with_size(egui::vec2(1280.0, 820.0)).wgpu().build_ui_state(|ui, s: &mut Studio| s.show(ui), studio_with(side));
    h.run_steps(5);
    let mut idle = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        h.step();
        idle.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let a = h.state().view_to_screen((side as f32 * 0.2, side as f32 * 0.5));
    let b = h.state().view_to_screen((side as f32 * 0.8, side as f32 * 0.5));
    h.event(egui::Event::PointerMoved(a));
    h.step();
    h.event(egui::Event::PointerButton { pos: a, button: egui::PointerButton::Primary, pressed: true, modifiers: Default::default() });
    h.step();
    let mut paint = Vec::new();
    for i in 1..=60 {
        h.event(egui::Event::PointerMoved(a + (b - a) * (i as f32 / 60.0)));
        let t = Instant::now();
        h.step();
        paint.push(t.elapsed().as_secs_f64() * 1e3);
    }
    h.event(egui::Event::PointerButton { pos: b, button: egui::PointerButton::Primary, pressed: false, modifiers: Default::default() });
    h.step();
    let med = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    (med(idle), med(paint))
}

fn main() {
    let (bi, bp) = measure(512);
    let (li, lp) = measure(4096);
    println!("512x512:   idle frame {bi:.2} ms, painting frame {bp:.2} ms");
    println!("4096x4096: idle frame {li:.2} ms, painting frame {lp:.2} ms");
    println!("ratio 4096/512: idle x{:.2}, painting x{:.2}", li / bi, lp / bp);
}
