//! The canvas with real photos (issue 31): every pointer and key event of a
//! slow frame counts, the fit and refit, the mask overlay after a result,
//! the before/after split, resetting to the model's defaults, the variant
//! strip's labels and hover preview, a run area that moves nothing, and a
//! brush sized in screen points.

mod common;

use common::canvas::{drag_image, drag_screen, image_rect, key, mask_bounds, one_frame, press, release};
use common::until;
use egui::{Event, Pos2};
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use unmask_studio::settings::{OverlayColor, Settings};
use unmask_studio::{Mode, Studio, Tool};

fn harness(s: Studio) -> Harness<'static, Studio> {
    common::harness(s, 1100.0, 700.0)
}

/// The fixture studio after one retouch of a painted rectangle (its whole
/// image at once, so the result keeps the document's size).
fn after_a_retouch(variants: usize, w: f32, h: f32) -> Harness<'static, Studio> {
    let mut s = common::fixture_studio(None);
    s.settings.context = unmask::crop::Context::Whole;
    s.settings.variants = variants;
    s.prompt = "a red circle on the left".into();
    s.edit_mask(|m| unmask_studio::mask_paint::rectangle(m, (8.0, 4.0), (24.0, 16.0), false));
    let mut h = common::harness(s, w, h);
    h.get_by_label("Run retouch").click();
    h.step();
    until(&mut h, "the retouch", |s| !s.is_running());
    h
}

#[test]
fn a_rectangle_pressed_moved_and_released_in_one_frame_ends_at_the_release() {
    let mut s = common::fixture_studio(None);
    s.tool = Tool::Rectangle;
    let mut h = harness(s);
    let at = |h: &Harness<'static, Studio>, p: (f32, f32)| h.state().view_to_screen(p);
    let (a, b, c) = (at(&h, (4.5, 4.5)), at(&h, (10.5, 10.5)), at(&h, (30.5, 20.5)));
    // the release's own position is the corner: no move to C comes before it
    one_frame(&mut h, vec![Event::PointerMoved(a), press(a), Event::PointerMoved(b), release(c)]);
    h.run_steps(1);
    let doc = h.state().doc.as_ref().unwrap();
    assert_eq!(mask_bounds(&doc.mask), Some((4, 4, 31, 21)), "the rectangle spans A to the release at C");
}

#[test]
fn a_lasso_drawn_in_one_frame_uses_every_point() {
    let mut s = common::fixture_studio(None);
    s.tool = Tool::Lasso;
    let mut h = harness(s);
    let pts: Vec<Pos2> = [(2.5, 2.5), (36.5, 2.5), (36.5, 20.5), (2.5, 20.5)].iter().map(|&p| h.state().view_to_screen(p)).collect();
    let mut ev = vec![Event::PointerMoved(pts[0]), press(pts[0])];
    ev.extend(pts[1..3].iter().map(|&p| Event::PointerMoved(p)));
    ev.push(release(pts[3]));
    one_frame(&mut h, ev);
    h.run_steps(1);
    let doc = h.state().doc.as_ref().unwrap();
    // pixel centres inside the polygon: columns 2..=35, rows 2..=19
    assert_eq!(mask_bounds(&doc.mask), Some((2, 2, 36, 20)));
    assert_eq!(doc.mask.get_pixel(3, 19)[0], 255, "the bottom-left corner, the release's point, is part of it");
}

#[test]
fn ten_bracket_presses_in_one_frame_grow_the_brush_ten_steps() {
    let mut h = harness(common::fixture_studio(None));
    h.state_mut().settings.brush_size = 10.0;
    h.run_steps(1);
    let mut ev = Vec::new();
    for _ in 0..10 {
        ev.push(key(egui::Key::CloseBracket, true));
        ev.push(key(egui::Key::CloseBracket, false));
    }
    one_frame(&mut h, ev);
    let mut want = 10.0f32;
    for _ in 0..10 {
        want = (want * 1.25).round().max(want + 1.0).min(1024.0);
    }
    assert_eq!(h.state().settings.brush_size, want);
    // and back down, three presses in one frame
    one_frame(&mut h, (0..3).flat_map(|_| [key(egui::Key::OpenBracket, true), key(egui::Key::OpenBracket, false)]).collect());
    assert_eq!(h.state().settings.brush_size, Settings::stepped_brush(want, -3));
}

#[test]
fn the_first_fit_keeps_the_image_clear_of_the_version_strip() {
    // a portrait photo: its height is what the fit is bound by, so a fit to
    // the first frame's canvas (the strip not yet at its full height) would
    // leave its bottom under the strip
    let dir = common::scratch("first-fit");
    let path = dir.join("portrait.png");
    image::RgbImage::from_fn(30, 90, |x, y| image::Rgb([(x * 8) as u8, (y * 2) as u8, 90])).save(&path).unwrap();
    let mut s = common::fixture_studio(None);
    assert!(s.open_path(&path));
    let h = harness(s);
    let (img, canvas) = (image_rect(h.state()), h.state().canvas_rect());
    assert!(canvas.contains_rect(img), "the image {img:?} lies inside the canvas {canvas:?}");
    // the version strip's thumbnail is below the canvas
    let strip = h.query_all_by_label_contains("portrait.png").map(|n| n.rect()).filter(|r| r.top() > canvas.center().y).fold(f32::MAX, |t, r| t.min(r.top()));
    assert!(strip < f32::MAX, "the strip's version is found");
    assert!(img.bottom() <= strip, "nothing of the image under the strip: image bottom {} strip top {strip}", img.bottom());
}

#[test]
fn a_resized_window_refits_until_the_user_zooms() {
    let mut h = harness(common::fixture_studio(None));
    let z0 = h.state().zoom();
    h.set_size(egui::vec2(1500.0, 1000.0));
    h.run_steps(3);
    let (img, canvas) = (image_rect(h.state()), h.state().canvas_rect());
    assert!(h.state().zoom() > z0 * 1.2, "a bigger window fits bigger: {} -> {}", z0, h.state().zoom());
    assert!(canvas.contains_rect(img) && (img.center() - canvas.center()).length() < 2.0, "{img:?} centred in {canvas:?}");
    // a zoom by hand is kept through a resize
    let z = h.state().zoom() * 0.5;
    h.state_mut().set_zoom(z);
    h.run_steps(1);
    h.set_size(egui::vec2(1100.0, 700.0));
    h.run_steps(3);
    assert!((h.state().zoom() - z).abs() < 1e-4, "the user's zoom stays: {} vs {z}", h.state().zoom());
    // Ctrl+0 fits again, and resizes follow again
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Num0);
    h.run_steps(2);
    let fitted = h.state().zoom();
    h.set_size(egui::vec2(1300.0, 900.0));
    h.run_steps(3);
    assert!(h.state().zoom() > fitted, "refits after a fit");
}

#[test]
fn a_result_hides_the_mask_overlay_until_painting_and_m_toggles_it() {
    let mut h = after_a_retouch(1, 1100.0, 700.0);
    {
        let st = h.state();
        let doc = st.doc.as_ref().unwrap();
        assert_eq!(doc.versions.len(), 2, "{:?}", st.notices);
        assert!(!doc.mask_is_empty(), "the mask is kept");
        assert!(!st.mask_overlay_shown(), "the result is seen without the overlay");
    }
    h.key_press(egui::Key::M);
    h.run_steps(1);
    assert!(h.state().mask_overlay_shown(), "M shows it");
    h.key_press(egui::Key::M);
    h.run_steps(1);
    assert!(!h.state().mask_overlay_shown(), "and hides it");
    h.state_mut().tool = Tool::Brush;
    drag_image(&mut h, (30.0, 18.0), (34.0, 18.0));
    assert!(h.state().mask_overlay_shown(), "painting shows it again");
}

#[test]
fn the_split_shows_the_parent_left_and_the_result_right_and_its_divider_drags() {
    let mut h = after_a_retouch(1, 1100.0, 700.0);
    h.get_by_label("Before/after split").click();
    h.run_steps(2);
    assert_eq!(h.state().split_fraction(), Some(0.5));
    let img = image_rect(h.state());
    let [(lv, l, _), (rv, r, _)] = h.state().split_sources().expect("the split is drawn");
    assert_eq!((lv, rv), (0, 1), "before: the version the run started from; after: the result");
    assert!((l.right() - img.center().x).abs() < 0.5 && (r.left() - img.center().x).abs() < 0.5);
    // drag the divider to a quarter of the image: it moves, nothing is painted
    let mask = h.state().doc.as_ref().unwrap().mask.clone();
    let to = Pos2::new(img.left() + img.width() * 0.25, img.center().y);
    drag_screen(&mut h, Pos2::new(l.right(), img.center().y), to, 4);
    let f = h.state().split_fraction().unwrap();
    assert!((f - 0.25).abs() < 0.01, "fraction {f}");
    let [(lv, l, luv), (rv, r, ruv)] = h.state().split_sources().unwrap();
    assert_eq!((lv, rv), (0, 1));
    assert!((l.right() - to.x).abs() < 0.5 && (r.left() - to.x).abs() < 0.5, "{l:?} {r:?} at {to:?}");
    assert!((luv.max.x - f).abs() < 1e-6 && (ruv.min.x - f).abs() < 1e-6 && luv.min.x == 0.0 && ruv.max.x == 1.0, "the sides meet at the same image column");
    assert_eq!(h.state().doc.as_ref().unwrap().mask, mask, "the divider drag painted nothing");
    h.get_by_label("Before/after split").click();
    h.run_steps(2);
    assert_eq!((h.state().split_fraction(), h.state().split_sources()), (None, None));
}

#[test]
fn reset_to_model_defaults_restores_the_settings_and_keeps_preferences() {
    let mut s = common::fixture_studio(None);
    s.settings.steps = 40;
    s.settings.variants = 5;
    s.settings.brush_size = 77.0;
    s.settings.grow = 3;
    s.settings.cfg = 9.0;
    s.settings.overlay_color = OverlayColor::Cyan;
    // tall enough that the button at the panel's end is on screen
    let mut h = common::harness(s, 1100.0, 1400.0);
    h.get_by_label("Reset to model defaults").click();
    h.run_steps(2);
    let mut want = Settings::default();
    want.apply_model_defaults(h.state().model_info().unwrap());
    let got = &h.state().settings;
    assert_eq!((got.steps, got.variants, got.brush_size, got.grow, got.cfg), (want.steps, want.variants, want.brush_size, want.grow, want.cfg));
    assert_eq!(got.overlay_color, OverlayColor::Cyan, "a display preference is kept");
}

#[test]
fn overlay_colour_persists_and_auto_is_the_default() {
    assert_eq!(Settings::default().overlay_color, OverlayColor::Auto);
    let dir = common::scratch("overlay-colour");
    let path = dir.join("settings.json");
    let mut s = Settings::default();
    s.overlay_color = OverlayColor::Green;
    s.save(&path).unwrap();
    assert_eq!(Settings::load(&path).overlay_color, OverlayColor::Green);
}

#[test]
fn hovering_a_variant_previews_it_on_the_canvas() {
    let mut h = after_a_retouch(2, 1100.0, 700.0);
    assert_eq!(h.state().variants.len(), 2, "{:?}", h.state().notices);
    let seed = h.state().variants[1].seed.unwrap();
    let label = format!("#2 seed {seed}");
    h.get_by_label(&label).hover();
    h.step();
    assert_eq!(h.state().displayed_variant(), Some(1), "the canvas shows the hovered variant");
    let centre = h.state().canvas_rect().center();
    h.hover_at(centre);
    h.step();
    assert_eq!(h.state().displayed_variant(), None, "back to the current version");
    assert_eq!(h.state().doc.as_ref().unwrap().versions.len(), 1, "hovering picks nothing");
}

#[test]
fn starting_a_run_moves_no_setting() {
    let mut s = common::fixture_studio(None);
    s.settings.steps = 1000;
    s.prompt = "a red circle on the left".into();
    let mut h = harness(s);
    let y = |h: &Harness<'static, Studio>| h.query_all_by_label("steps").next().expect("the steps slider").rect().top();
    let idle = y(&h);
    h.get_by_label("Run edit").click();
    h.step();
    until(&mut h, "the first step", |s| s.run.as_ref().is_some_and(|r| r.progress_events > 0));
    let running = y(&h);
    h.key_press(egui::Key::Escape);
    until(&mut h, "the cancel", |s| !s.is_running());
    assert_eq!(idle, running, "the steps slider stays put when a run starts");
    assert_eq!(y(&h), idle, "and when it ends");
}

#[test]
fn the_sketch_tab_has_no_image_guidance() {
    let mut h = harness(common::fixture_studio(None));
    assert!(h.query_all_by_label_contains("image guidance").next().is_some(), "Retouch (an edit) has it");
    h.state_mut().mode = Mode::Sketch;
    h.run_steps(2);
    assert!(h.query_all_by_label_contains("image guidance").next().is_none(), "Sketch has none");
}

#[test]
fn the_brush_is_sized_in_screen_points() {
    let mut h = harness(common::fixture_studio(None));
    h.state_mut().settings.brush_size = 40.0;
    let mut heights = Vec::new();
    for zoom in [4.0f32, 8.0] {
        h.state_mut().edit_mask(unmask_studio::mask_paint::clear);
        h.state_mut().set_zoom(zoom);
        h.run_steps(1);
        drag_image(&mut h, (6.0, 12.3), (30.0, 12.3));
        let (_, y0, _, y1) = mask_bounds(&h.state().doc.as_ref().unwrap().mask).expect("a stroke");
        let diameter = 40.0 / zoom;
        assert!(((y1 - y0) as f32 - diameter).abs() <= 1.0, "at zoom {zoom}: {} rows for a {diameter} px brush", y1 - y0);
        heights.push(y1 - y0);
    }
    assert!(heights[0] > heights[1], "zooming in makes the same brush cover fewer image pixels: {heights:?}");
    assert!(h.query_all_by_label_contains("Brush (screen px)").next().is_some());
}
