//! The history strip: the open document's versions and the variants
//! waiting for a pick. It scrolls sideways with a bar always shown (a long
//! history would otherwise hide past the edge with no sign of it); a variant
//! under the pointer is shown on the canvas in place of the current version.

use egui::scroll_area::ScrollBarVisibility;
use egui::{Color32, RichText};

use crate::studio::Studio;

impl Studio {
    pub(crate) fn history_strip(&mut self, ui: &mut egui::Ui) {
        let mut select = None;
        let mut pick = None;
        let mut reuse = None;
        let mut hovered = None;
        // a solid bar: the default floating one is invisible until hovered
        ui.spacing_mut().scroll = egui::style::ScrollStyle::solid();
        egui::ScrollArea::horizontal().id_salt("strip").scroll_bar_visibility(ScrollBarVisibility::AlwaysVisible).show(ui, |ui| {
            ui.horizontal(|ui| {
                if let Some(doc) = &self.doc {
                    for (i, v) in doc.versions.iter().enumerate() {
                        let thumb = self.thumbs.get(ui.ctx(), &v.image);
                        let label = if i == doc.current { RichText::new(&v.label).strong().color(Color32::LIGHT_BLUE) } else { RichText::new(&v.label) };
                        let r = ui.add(egui::Button::image_and_text(egui::Image::new(&thumb).max_height(48.0), label).selected(i == doc.current));
                        let r = r.on_hover_text(v.parameters.clone().unwrap_or_else(|| "original".into()));
                        if r.clicked() {
                            select = Some(i);
                        }
                        if let Some(seed) = v.seed {
                            r.context_menu(|ui| {
                                if ui.button(format!("Reuse seed {seed}")).clicked() {
                                    reuse = Some(seed);
                                }
                            });
                        }
                    }
                }
                if !self.variants.is_empty() {
                    ui.separator();
                    ui.label("variants:");
                    for (i, v) in self.variants.iter().enumerate() {
                        let thumb = self.thumbs.get(ui.ctx(), &v.image);
                        let b = egui::Button::image_and_text(egui::Image::new(&thumb).max_height(48.0), variant_label(i, v.seed));
                        let r = ui.add(b);
                        if r.hovered() {
                            hovered = Some(i);
                        }
                        let full = format!("click to use {}\n{}", v.label, v.parameters.as_deref().unwrap_or_default());
                        if r.on_hover_text(full).clicked() {
                            pick = Some(i);
                        }
                    }
                }
            });
        });
        // the canvas is drawn after this panel, in the same frame
        self.view.hover_variant = hovered;
        if let Some(i) = select {
            if let Some(d) = self.doc.as_mut() {
                d.select(i);
            }
        }
        if let Some(i) = pick {
            self.pick_variant(i);
        }
        if let Some(s) = reuse {
            self.reuse_seed(s);
        }
    }
}

/// A variant's label in the strip: short enough to read whole ("#1 seed
/// 57611…"); the full label and parameters are on hover.
pub(crate) fn variant_label(i: usize, seed: Option<u64>) -> String {
    match seed {
        Some(s) => {
            let digits = s.to_string();
            if digits.len() > 6 { format!("#{} seed {}…", i + 1, &digits[..5]) } else { format!("#{} seed {digits}", i + 1) }
        }
        None => format!("#{}", i + 1),
    }
}
