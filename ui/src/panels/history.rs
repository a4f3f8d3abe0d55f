//! The history strip: the open document's versions and the variants
//! waiting for a pick.

use egui::{Color32, RichText};

use crate::studio::Studio;

impl Studio {
    pub(crate) fn history_strip(&mut self, ui: &mut egui::Ui) {
        let mut select = None;
        let mut pick = None;
        let mut reuse = None;
        egui::ScrollArea::horizontal().id_salt("strip").show(ui, |ui| {
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
                        let b = egui::Button::image_and_text(egui::Image::new(&thumb).max_height(48.0), format!("use {}", v.label));
                        if ui.add(b).on_hover_text(v.parameters.clone().unwrap_or_default()).clicked() {
                            pick = Some(i);
                        }
                    }
                }
            });
        });
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
