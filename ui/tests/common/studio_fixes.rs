//! Helpers of `tests/studio_fixes.rs` (issue 31): images on disk, the
//! window's close button, the viewport commands the Studio sent, and the
//! text of what is on screen.

use std::path::{Path, PathBuf};

use egui_kittest::kittest::{NodeT, Queryable};
use egui_kittest::Harness;
use image::RgbImage;
use unmask_studio::Studio;

/// A small PNG at `dir/name`, its pixels depending on `tint` (so two
/// documents differ).
pub fn png(dir: &Path, name: &str, tint: u8) -> (PathBuf, RgbImage) {
    let img = RgbImage::from_fn(40, 24, |x, y| image::Rgb([(x * 6) as u8, (y * 10) as u8, tint]));
    let p = dir.join(name);
    img.save(&p).unwrap();
    (p, img)
}

/// The user presses the window's close button (what eframe reports).
pub fn press_close_button(h: &mut Harness<'static, Studio>) {
    h.input_mut().viewports.entry(egui::ViewportId::ROOT).or_default().events.push(egui::ViewportEvent::Close);
    h.step();
}

/// Whether the last frame sent `want` (Close, CancelClose) to the window.
pub fn sent(h: &Harness<'static, Studio>, want: &egui::ViewportCommand) -> bool {
    h.output().viewport_output.get(&egui::ViewportId::ROOT).is_some_and(|v| v.commands.contains(want))
}

/// Steps up to `n` frames until the window is sent `want`.
pub fn sent_within(h: &mut Harness<'static, Studio>, want: &egui::ViewportCommand, n: usize) -> bool {
    for _ in 0..n {
        if sent(h, want) {
            return true;
        }
        h.step();
    }
    sent(h, want)
}

/// The labels on screen that contain `text`.
pub fn labels_with(h: &Harness<'static, Studio>, text: &str) -> Vec<String> {
    h.query_all_by_label_contains(text)
        .filter_map(|n| {
            let n = n.accesskit_node();
            // AccessKit keeps a label widget's text in its value
            if n.role() == egui::accesskit::Role::Label {
                n.value()
            } else {
                n.label()
            }
        })
        .collect()
}

/// Clicks a menu of the menu bar, then one of its entries: the frame of
/// that click is the last one run (what it sent is in `h.output()`).
pub fn menu(h: &mut Harness<'static, Studio>, menu: &str, entry: &str) {
    h.get_by_label(menu).click();
    h.run_steps(2);
    h.get_by_label(entry).click();
    h.step();
}
