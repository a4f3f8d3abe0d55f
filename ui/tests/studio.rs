//! The Studio driven through egui_kittest: real app state, real worker, the
//! fixture model. Clicks go to widgets by their labels.

use std::time::{Duration, Instant};

mod common;

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use common::until;
use unmask_studio::{Mode, Studio};

fn studio() -> Studio {
    common::fixture_studio(None)
}

fn harness(s: Studio) -> Harness<'static, Studio> {
    common::harness(s, 1100.0, 700.0)
}

fn drag(h: &mut Harness<'static, Studio>, from: (f32, f32), to: (f32, f32)) {
    let a = h.state().view_to_screen(from);
    let b = h.state().view_to_screen(to);
    h.event(egui::Event::PointerMoved(a));
    h.step();
    h.event(egui::Event::PointerButton { pos: a, button: egui::PointerButton::Primary, pressed: true, modifiers: Default::default() });
    h.step();
    for i in 1..=8 {
        let t = i as f32 / 8.0;
        h.event(egui::Event::PointerMoved(a + (b - a) * t));
        h.step();
    }
    h.event(egui::Event::PointerButton { pos: b, button: egui::PointerButton::Primary, pressed: false, modifiers: Default::default() });
    h.run_steps(2);
}

#[test]
fn a_brush_stroke_masks_the_expected_cells_and_the_overlay_the_touched_ones() {
    let mut s = studio();
    // the whole 40 x 24 image at scale 1: the overlay's cells are the image's own
    s.settings.context = unmask::crop::Context::Whole;
    let mut h = harness(s);
    // the brush is in screen pixels: 8 image px at this zoom
    h.state_mut().settings.brush_size = 8.0 * h.state().zoom();
    h.run_steps(1);
    drag(&mut h, (2.0, 2.0), (14.0, 2.0));
    let doc = h.state().doc.as_ref().unwrap();
    let (_, _, cells) = unmask::mask::cells_from_mask(&doc.mask, 4).unwrap();
    let on: Vec<usize> = (0..cells.len()).filter(|&i| cells[i]).collect();
    assert_eq!(on, vec![0, 1, 2, 3], "the top-left four cells of the 6 x 10 grid");
    // the overlay shows the cells the run regenerates: the Studio's cover is
    // `any`, every cell the paint touches (the stroke's edge reaches row 1)
    let touched = (0..6u32 * 10)
        .filter(|i| {
            let (r, c) = (i / 10, i % 10);
            (0..4).any(|dy| (0..4).any(|dx| doc.mask.get_pixel(c * 4 + dx, r * 4 + dy)[0] > 127))
        })
        .count();
    assert!(touched > 4, "the stroke's edge touches more cells than it half covers");
    assert_eq!(h.state().cell_overlay_count(), touched, "the overlay shows the touched cells");
    // one stroke is one undo step
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    h.run_steps(2);
    assert!(h.state().doc.as_ref().unwrap().mask_is_empty());
}

#[test]
fn retouch_streams_progress_adds_a_version_and_undo_restores() {
    let mut s = studio();
    // at scale 1 the result keeps its codes (a scaled crop would not)
    s.settings.context = unmask::crop::Context::Whole;
    s.prompt = "a red circle on the left".into();
    s.edit_mask(|m| unmask_studio::mask_paint::rectangle(m, (8.0, 4.0), (24.0, 16.0), false));
    let painted = s.doc.as_ref().unwrap().mask.clone();
    let before = s.doc.as_ref().unwrap().image().clone();
    let mut h = harness(s);
    h.get_by_label("Run retouch").click();
    h.step();
    assert!(h.state().is_running(), "the run started");
    let mut max_events = 0;
    let end = Instant::now() + Duration::from_secs(60);
    while h.state().is_running() {
        max_events = max_events.max(h.state().run.as_ref().map_or(0, |r| r.progress_events));
        assert!(Instant::now() < end);
        std::thread::sleep(Duration::from_millis(2));
        h.step();
    }
    h.run_steps(2);
    let st = h.state();
    let doc = st.doc.as_ref().unwrap();
    assert_eq!(doc.versions.len(), 2, "a new history entry: {:?}", st.notices);
    assert_eq!(doc.current, 1);
    let params = doc.version().parameters.as_deref().unwrap_or("");
    assert!(doc.version().codes.is_some() && params.contains("Steps: 6") && params.contains("Context: whole image"), "{params}");
    assert!(max_events >= 1, "progress was streamed");
    assert_ne!(doc.image(), &before, "the region changed");

    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    h.run_steps(2);
    let doc = h.state().doc.as_ref().unwrap();
    assert_eq!(doc.current, 0);
    assert_eq!(doc.image(), &before, "undo restores the image");
    assert_eq!(doc.mask, painted, "and the mask");
    h.key_press_modifiers(egui::Modifiers::COMMAND | egui::Modifiers::SHIFT, egui::Key::Z);
    h.run_steps(2);
    assert_eq!(h.state().doc.as_ref().unwrap().current, 1, "redo");
}

#[test]
fn escape_cancels_mid_run_and_keeps_the_canvas() {
    let mut s = studio();
    s.prompt = "a red circle on the left".into();
    s.settings.steps = 1000;
    s.mode = Mode::Sketch;
    let before = s.doc.as_ref().unwrap().image().clone();
    let mut h = harness(s);
    h.get_by_label("Run sketch").click();
    h.run_steps(2);
    until(&mut h, "first step", |s| s.run.as_ref().is_some_and(|r| r.progress_events > 0));
    h.key_press(egui::Key::Escape);
    until(&mut h, "cancel", |s| !s.is_running());
    let st = h.state();
    let steps_done = st.notices.iter().any(|n| n.title == "Cancelled");
    assert!(steps_done, "a cancelled notice: {:?}", st.notices);
    let doc = st.doc.as_ref().unwrap();
    assert_eq!(doc.versions.len(), 1);
    assert_eq!(doc.image(), &before);
}

#[test]
fn ask_shows_the_answer() {
    let mut s = studio();
    s.mode = Mode::Ask;
    s.question = "what color is the circle?".into();
    let mut h = harness(s);
    h.get_by_label("Send question").click();
    h.step();
    until(&mut h, "answer", |s| !s.is_running());
    let st = h.state();
    let turn = st.chat.last().expect("a chat turn");
    assert!(turn.done);
    // the same job through the library gives the same text
    let engine = unmask::Engine::load(common::fixtures().join("model"), unmask::DeviceChoice::Cpu).unwrap();
    let job = unmask::tasks::Job::Ask {
        question: "what color is the circle?".into(),
        image: st.doc.as_ref().unwrap().image().clone(),
        fit: unmask::tasks::FitMode::Auto,
        // the fixture bundle names no answer length: 32, one step a position, as the CLI;
        // the Studio answers with the text cache on
        gen_length: 32,
        settings: unmask::sampler::TextSettings { steps: 32, block_length: 32, temperature: 0.0, seed: 0, cache: true },
    };
    let unmask::tasks::Output::Answer { text, .. } = unmask::tasks::run(&engine, &job, &mut unmask::sampler::Quiet).unwrap() else { panic!() };
    assert_eq!(turn.answer, text);
}

#[test]
fn a_corrupt_file_shows_an_error_and_keeps_the_canvas() {
    let s = studio();
    let mut h = harness(s);
    let before = h.state().doc.as_ref().unwrap().image().clone();
    // a fixed path: the notice shows it, and the snapshot must not depend on a pid
    let bad = std::path::PathBuf::from("/tmp/unmask-studio-corrupt.png");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\n not really").unwrap();
    h.state_mut().open_path(&bad);
    h.run_steps(3);
    let st = h.state();
    assert!(st.notices.iter().any(|n| n.is_error && n.detail.contains("unmask-studio-corrupt")), "{:?}", st.notices);
    assert_eq!(st.doc.as_ref().unwrap().image(), &before);
    h.snapshot("corrupt_file_error");
}

#[test]
fn snapshot_of_a_painted_mask() {
    let mut s = studio();
    s.prompt = "a red circle on the left".into();
    s.edit_mask(|m| unmask_studio::mask_paint::rectangle(m, (8.0, 4.0), (24.0, 16.0), false));
    let mut h = harness(s);
    h.run_steps(2);
    h.snapshot("retouch_with_mask");
}
