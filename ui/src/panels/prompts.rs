//! Messages and questions: the notices, the offer to restore the last
//! session, and the question before closing with unsaved changes.

use egui::{Color32, RichText};

use crate::studio::Studio;

impl Studio {
    pub(crate) fn notices_ui(&mut self, ui: &egui::Ui) {
        if self.notices.is_empty() {
            return;
        }
        let mut dismiss = None;
        egui::Window::new("Messages")
            .anchor(egui::Align2::RIGHT_BOTTOM, egui::vec2(-12.0, -60.0))
            .resizable(false)
            .collapsible(false)
            .show(ui.ctx(), |ui| {
                for (i, n) in self.notices.iter().enumerate().rev().take(4) {
                    ui.horizontal(|ui| {
                        let c = if n.is_error { Color32::LIGHT_RED } else { Color32::LIGHT_GRAY };
                        ui.label(RichText::new(&n.title).color(c).strong());
                        if ui.small_button("x").clicked() {
                            dismiss = Some(i);
                        }
                    });
                    egui::CollapsingHeader::new("details").id_salt(("notice", i)).show(ui, |ui| {
                        ui.label(&n.detail);
                    });
                }
            });
        if let Some(i) = dismiss {
            self.notices.remove(i);
        }
    }

    /// Asked once at start when the last session did not close cleanly.
    pub(crate) fn restore_prompt(&mut self, ui: &egui::Ui) {
        let Some(n) = self.restore_offer else { return };
        egui::Modal::new(egui::Id::unique("restore-session")).show(ui.ctx(), |ui| {
            ui.heading("Restore your last session?");
            ui.label(format!("Unmask did not close cleanly last time. {n} document(s) with their versions and masks were kept."));
            ui.horizontal(|ui| {
                if ui.button("Restore").clicked() {
                    self.restore_session();
                }
                if ui.button("Discard").clicked() {
                    self.discard_session();
                }
            });
        });
    }

    /// Asks before closing with unsaved changes.
    pub(crate) fn close_guard(&mut self, ui: &egui::Ui) {
        let ctx = ui.ctx();
        if ctx.input(|i| i.viewport().close_requested()) && self.has_unsaved_changes() && !self.allow_close {
            ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
            self.confirm_close = true;
        }
        if !self.confirm_close {
            return;
        }
        egui::Modal::new(egui::Id::unique("unsaved")).show(ctx, |ui| {
            ui.label("The image has unsaved changes.");
            ui.horizontal(|ui| {
                if ui.button("Save...").clicked() && self.save_dialog() {
                    self.confirm_close = false;
                    self.allow_close = true;
                    ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                }
                if ui.button("Discard").clicked() {
                    self.confirm_close = false;
                    self.allow_close = true;
                    ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                }
                if ui.button("Keep editing").clicked() {
                    self.confirm_close = false;
                }
            });
        });
    }
}
