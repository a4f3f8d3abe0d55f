//! The Studio on photos larger than the model's working area (issue 15): the
//! context box and its cells, crop previews, Extend canvas, the fixes found
//! trying it, and crash recovery. The embedded model (48 x 48 working area)
//! runs the jobs, so a retouch of a large photo takes well under a second.

use std::path::PathBuf;
use std::time::{Duration, Instant};

mod common;

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use image::RgbImage;
use common::until;
use unmask_studio::{Mode, Studio, StudioOptions};

/// A photo-like test image, saved as PNG.
fn photo(dir: &std::path::Path, w: u32, h: u32) -> (PathBuf, RgbImage) {
    let img = RgbImage::from_fn(w, h, |x, y| image::Rgb([((x * 255) / w) as u8, ((y * 255) / h) as u8, ((x ^ y) % 200) as u8 + 30]));
    let p = dir.join("photo.png");
    img.save(&p).unwrap();
    (p, img)
}

fn studio(open: Option<PathBuf>, session_dir: Option<PathBuf>) -> Studio {
    let mut s = Studio::new(StudioOptions {
        settings_path: None,
        model_dir: unmask::bundle::default_model_dir(),
        open,
        ctx: None,
        session_dir,
    });
    assert!(s.wait_idle(Duration::from_secs(30)), "model loads");
    assert!(s.model_info().is_some(), "embedded model loaded: {:?}", s.notices);
    s.notices.retain(|n| n.is_error);
    s.settings.random_seed = false;
    s.settings.seed = 5;
    s
}

fn harness(s: Studio) -> Harness<'static, Studio> {
    common::harness(s, 1100.0, 760.0)
}

fn disc(s: &mut Studio, cx: f32, cy: f32, r: f32) {
    s.edit_mask(|m| unmask_studio::mask_paint::stroke_segment(m, (cx, cy), (cx, cy), r, false));
}

#[test]
fn a_retouch_of_a_large_photo_runs_on_its_context_crop_with_crop_previews() {
    let dir = common::scratch("large");
    let (path, img) = photo(&dir, 2400, 1600);
    let mut s = studio(Some(path), None);
    s.prompt = "a large red circle in the center".into();
    disc(&mut s, 1700.0, 500.0, 60.0);
    let mut h = harness(s);
    // the context box: about the region's size on each side, far smaller than the photo
    let crops = h.state_mut().planned_crops();
    assert_eq!(crops.len(), 1);
    let c = crops[0];
    assert!(c.source.w < 600 && c.source.x > 1200 && (c.work_w, c.work_h) == (48, 48), "{c:?}");
    assert!(h.state().cell_overlay_count() > 0, "cells at working scale");
    let status = h.state_mut().working_text().unwrap();
    assert!(status.contains("works at 48x48"), "{status}");
    h.get_by_label("Run retouch").click();
    h.step();
    let mut crop_previews = 0;
    let end = Instant::now() + Duration::from_secs(60);
    while h.state().is_running() {
        let run = h.state().run.as_ref().unwrap();
        if let (Some(at), Some(p)) = (run.preview_at, run.preview.as_ref()) {
            assert_eq!(at, c.source, "the preview is the crop, drawn into its box");
            assert_eq!(p.dimensions(), (48, 48), "decoded at working size, not the photo's");
            crop_previews += 1;
        }
        assert!(Instant::now() < end);
        h.step();
    }
    h.run_steps(2);
    assert!(crop_previews > 0, "crop previews streamed");
    let doc = h.state().doc.as_ref().unwrap();
    assert_eq!(doc.versions.len(), 2, "{:?}", h.state().notices);
    assert_eq!(doc.size(), (2400, 1600), "the document keeps its size");
    let out = doc.image();
    for (x, y) in [(0, 0), (100, 1500), (c.source.x - 1, 500), (2399, 1599)] {
        assert_eq!(out.get_pixel(x, y), img.get_pixel(x, y), "pixel {x},{y} outside the crop");
    }
    assert_ne!(out.get_pixel(1700, 500), img.get_pixel(1700, 500), "the region was regenerated");
    let params = doc.version().parameters.clone().unwrap();
    assert!(params.contains("Crop 1:") && params.contains("Working size: 48x48"), "{params}");
}

#[test]
fn extend_canvas_adds_a_masked_border_that_a_retouch_fills() {
    let dir = common::scratch("extend");
    let (path, img) = photo(&dir, 300, 200);
    let s = studio(Some(path), None);
    let mut h = harness(s);
    h.state_mut().prompt = "a small blue square".into();
    h.get_by_label("Extend canvas").click();
    h.run_steps(2);
    h.get_by_label("Extend").click();
    h.run_steps(3);
    {
        let doc = h.state().doc.as_ref().unwrap();
        assert_eq!(doc.size(), (556, 200), "256 px added on the right");
        assert_eq!(doc.mask.get_pixel(400, 100)[0], 255, "the border is the mask");
        assert_eq!(doc.mask.get_pixel(100, 100)[0], 0);
    }
    // the view refits to the new size: the whole canvas is on screen
    let right = h.state().view_to_screen((556.0, 200.0));
    assert!(right.x <= 1100.0 && right.y <= 760.0, "{right:?}");
    assert!(h.state().cell_overlay_count() > 0);
    h.get_by_label("Run retouch").click();
    h.step();
    until(&mut h, "the outpaint", |s| !s.is_running());
    let doc = h.state().doc.as_ref().unwrap();
    assert_eq!(doc.versions.len(), 3, "original, extended, filled: {:?}", h.state().notices);
    assert_eq!(doc.size(), (556, 200));
    let out = doc.image();
    // the photo's pixels stay, away from the border
    for (x, y) in [(0, 0), (150, 100), (200, 199)] {
        assert_eq!(out.get_pixel(x, y), img.get_pixel(x, y), "pixel {x},{y}");
    }
    // and the border no longer holds the stretched edge
    let fill = img.get_pixel(299, 100);
    assert_ne!(out.get_pixel(500, 100), fill);
    // undo goes back through the extension to the original size
    h.state_mut().undo();
    h.state_mut().undo();
    assert_eq!(h.state().doc.as_ref().unwrap().size(), (300, 200));
}

#[test]
fn a_sketch_opens_its_own_document_and_ask_uses_the_bundles_answer_length() {
    let dir = common::scratch("sketch");
    let (path, _) = photo(&dir, 96, 96);
    let mut s = studio(Some(path), None);
    s.mode = Mode::Sketch;
    s.prompt = "a large red circle in the center".into();
    let mut h = harness(s);
    h.get_by_label("Run sketch").click();
    h.step();
    until(&mut h, "sketch", |s| !s.is_running());
    let st = h.state();
    let tabs = st.tabs();
    assert_eq!(tabs.len(), 2, "the photo and the sketch: {tabs:?}");
    assert_eq!(st.doc.as_ref().unwrap().size(), (48, 48), "the sketch is the open document");
    assert!(st.background.iter().all(|d| d.versions.len() == 1 && d.size() == (96, 96)), "the photo is untouched");
    // ask about the sketch: the embedded bundle answers in 8 positions
    h.state_mut().mode = Mode::Ask;
    h.state_mut().question = "what color is the circle?".into();
    h.state_mut().start_ask();
    assert_eq!(h.state().run.as_ref().unwrap().total, 8);
    until(&mut h, "answer", |s| !s.is_running());
    assert_eq!(h.state().chat.last().unwrap().answer, "red");
    // a question form the model never learnt: an empty answer, and the panel says why
    h.state_mut().question = "what shape is at the top left?".into();
    h.state_mut().start_ask();
    until(&mut h, "answer", |s| !s.is_running());
    assert_eq!(h.state().chat.last().unwrap().answer.trim(), "", "the embedded model answered a form it never learnt");
    h.run_steps(2);
    let _ = h.get_by_label_contains("no answer: the model may not know this kind of question");
    // the canvas filter follows the zoom, before and after a run alike
    h.state_mut().set_zoom(4.0);
    h.run_steps(2);
    assert_eq!(h.state().canvas_filter_is_sharp(), Some(true), "zoomed in: sharp pixels");
    h.state_mut().set_zoom(0.5);
    h.run_steps(2);
    assert_eq!(h.state().canvas_filter_is_sharp(), Some(false), "zoomed out: smooth");
    // brush size steps are whole pixels
    h.state_mut().mode = Mode::Retouch;
    h.state_mut().settings.brush_size = 10.0;
    for _ in 0..3 {
        h.key_press(egui::Key::CloseBracket);
    }
    let b = h.state().settings.brush_size;
    assert_eq!(b, b.round(), "brush {b}");
}

#[test]
fn a_killed_session_is_offered_back_and_restores_versions_and_mask() {
    let dir = common::scratch("session");
    let (path, _) = photo(&dir, 640, 480);
    let session = dir.join("session");
    let mut a = studio(Some(path), Some(session.clone()));
    a.prompt = "a large red circle in the center".into();
    disc(&mut a, 300.0, 200.0, 40.0);
    a.start();
    assert!(a.wait_idle(Duration::from_secs(60)));
    disc(&mut a, 500.0, 400.0, 30.0);
    let (image, mask, versions, params) = {
        let d = a.doc.as_ref().unwrap();
        (d.image().clone(), d.mask.clone(), d.versions.len(), d.version().parameters.clone())
    };
    assert_eq!(versions, 2);
    // mid-run: the next retouch is under way when the app dies
    a.settings.steps = 1000;
    a.start();
    let end = Instant::now() + Duration::from_secs(30);
    while a.run.as_ref().is_none_or(|r| r.progress_events == 0) {
        assert!(Instant::now() < end);
        a.poll();
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(a.flush_session(), "the session reached the disk");
    // a kill: no exit path runs (the worker is told to stop so it frees the CPU)
    a.cancel();
    std::mem::forget(a);

    let mut b = studio(None, Some(session.clone()));
    assert_eq!(b.restore_offer, Some(1), "the left session is offered");
    let mut h = harness(b);
    h.get_by_label("Restore").click();
    h.run_steps(3);
    b = h.into_state();
    let d = b.doc.as_ref().expect("a restored document");
    assert_eq!(d.versions.len(), versions);
    assert_eq!(d.image(), &image, "the current version, pixel for pixel");
    assert_eq!(d.mask, mask, "the mask painted after the last run");
    assert_eq!(d.version().parameters, params);
    assert!(d.dirty, "still unsaved");
    // a clean exit leaves nothing to offer
    b.end_session();
    assert!(!session.join("session.json").exists());
}

#[test]
fn a_version_made_from_a_prompt_in_any_script_saves_with_its_parameters() {
    let dir = common::scratch("utf8-save");
    let (path, _) = photo(&dir, 96, 96);
    let mut s = studio(Some(path), None);
    s.mode = Mode::Sketch;
    s.prompt = "一个红色的圆 🙂 €".into();
    s.start();
    assert!(s.wait_idle(Duration::from_secs(30)));
    let out = dir.join("saved.png");
    assert!(s.save_to(&out), "{:?}", s.notices);
    let params = unmask::image_io::png_parameters(&std::fs::read(&out).unwrap()).expect("parameters");
    assert!(params.starts_with("一个红色的圆 🙂 €"), "{params}");
    // a device is never a place to save to
    assert!(!s.save_to(std::path::Path::new("/dev/full")));
    assert!(s.notices.iter().any(|n| n.is_error && n.detail.contains("not a regular file")), "{:?}", s.notices);
}
