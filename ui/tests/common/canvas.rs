//! Canvas helpers for the kittest tests: several events in one frame (as a
//! slow frame on a large photo delivers them), drags in image pixels, and
//! what a mask covers.

use egui::{Event, Pos2};
use egui_kittest::Harness;
use image::GrayImage;
use unmask_studio::Studio;

pub fn press(pos: Pos2) -> Event {
    Event::PointerButton { pos, button: egui::PointerButton::Primary, pressed: true, modifiers: Default::default() }
}

pub fn release(pos: Pos2) -> Event {
    Event::PointerButton { pos, button: egui::PointerButton::Primary, pressed: false, modifiers: Default::default() }
}

pub fn key(key: egui::Key, pressed: bool) -> Event {
    Event::Key { key, physical_key: None, pressed, repeat: false, modifiers: Default::default() }
}

/// Runs ONE frame that receives all of `events` (`Harness::event` would
/// give each its own frame).
pub fn one_frame(h: &mut Harness<'static, Studio>, events: Vec<Event>) {
    h.input_mut().events.extend(events);
    h.step();
}

/// A primary-button drag between two image points, one frame per event.
pub fn drag_screen(h: &mut Harness<'static, Studio>, a: Pos2, b: Pos2, steps: usize) {
    h.event(Event::PointerMoved(a));
    h.step();
    h.event(press(a));
    h.step();
    for i in 1..=steps {
        h.event(Event::PointerMoved(a + (b - a) * (i as f32 / steps as f32)));
        h.step();
    }
    h.event(release(b));
    h.run_steps(2);
}

/// The same drag given in image pixels (through the view as last drawn).
pub fn drag_image(h: &mut Harness<'static, Studio>, from: (f32, f32), to: (f32, f32)) {
    let (a, b) = (h.state().view_to_screen(from), h.state().view_to_screen(to));
    drag_screen(h, a, b, 8);
}

/// The painted pixels' bounds `(x0, y0, x1, y1)`, ends exclusive.
pub fn mask_bounds(m: &GrayImage) -> Option<(u32, u32, u32, u32)> {
    let mut b: Option<(u32, u32, u32, u32)> = None;
    for (x, y, p) in m.enumerate_pixels() {
        if p[0] > 127 {
            b = Some(match b {
                None => (x, y, x + 1, y + 1),
                Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1)),
            });
        }
    }
    b
}

/// The image's rectangle on screen, as last drawn.
pub fn image_rect(s: &Studio) -> egui::Rect {
    let (w, h) = s.doc.as_ref().expect("a document").size();
    egui::Rect::from_min_max(s.view_to_screen((0.0, 0.0)), s.view_to_screen((w as f32, h as f32)))
}
