//! Messages and questions: the notices, the offer to restore the last
//! session, the question before closing with unsaved documents, and the
//! prompt field of Retouch and Sketch.

use egui::{Color32, RichText};

use crate::studio::{Mode, Studio};

/// Notices shown at once (the newest; older ones wait behind "Dismiss all").
const SHOWN: usize = 4;

impl Studio {
    pub(crate) fn notices_ui(&mut self, ui: &egui::Ui) {
        if self.notices.is_empty() {
            return;
        }
        let mut dismiss = None;
        let mut dismiss_all = false;
        egui::Window::new("Messages")
            .anchor(egui::Align2::RIGHT_BOTTOM, egui::vec2(-12.0, -60.0))
            .resizable(false)
            .collapsible(false)
            .show(ui.ctx(), |ui| {
                for (i, n) in self.notices.iter().enumerate().rev().take(SHOWN) {
                    ui.horizontal(|ui| {
                        let c = if n.is_error { Color32::LIGHT_RED } else { Color32::LIGHT_GRAY };
                        ui.label(RichText::new(&n.title).color(c).strong());
                        if ui.small_button("x").on_hover_text("dismiss").clicked() {
                            dismiss = Some(i);
                        }
                    });
                    // the reason is the first line, always shown; only the rest waits under "details"
                    let mut lines = n.detail.lines().filter(|l| !l.trim().is_empty());
                    if let Some(first) = lines.next() {
                        ui.label(first);
                    }
                    let rest: Vec<&str> = lines.collect();
                    if !rest.is_empty() {
                        egui::CollapsingHeader::new("details").id_salt(("notice", i)).show(ui, |ui| {
                            ui.label(rest.join("\n"));
                        });
                    }
                }
                if self.notices.len() > 1 {
                    ui.horizontal(|ui| {
                        if self.notices.len() > SHOWN {
                            ui.weak(format!("and {} older", self.notices.len() - SHOWN));
                        }
                        if ui.button("Dismiss all").clicked() {
                            dismiss_all = true;
                        }
                    });
                }
            });
        if dismiss_all {
            self.dismiss_all_notices();
        } else if let Some(i) = dismiss {
            self.notices.remove(i);
        }
    }

    /// The prompt of Retouch or Sketch (each has its own), with a hint that
    /// reads as a hint: weak, italic, saying what to type rather than
    /// looking like text already typed.
    pub(crate) fn prompt_field(&mut self, ui: &mut egui::Ui) -> egui::Response {
        let hint = match self.mode {
            Mode::Sketch => "Describe the image to sketch…",
            _ if self.doc.as_ref().is_some_and(|d| d.mask_is_empty()) => "Say how the image should change (nothing is painted: an edit)…",
            _ if self.doc.as_ref().is_some_and(|d| d.regions().len() > 1) => "Describe what this region becomes…",
            _ => "Describe what the painted area becomes…",
        };
        let hint = RichText::new(hint).italics().color(ui.visuals().weak_text_color());
        ui.add(egui::TextEdit::multiline(&mut self.prompt).desired_rows(3).hint_text(hint))
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

    /// The window's close button and File > Quit: asks about every unsaved
    /// document before the window closes.
    pub(crate) fn close_guard(&mut self, ui: &egui::Ui) {
        let ctx = ui.ctx().clone();
        if ctx.input(|i| i.viewport().close_requested()) && !self.allow_close && self.has_unsaved_changes() {
            ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
            self.request_close();
        }
        if std::mem::take(&mut self.close_now) {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
        if self.close_prompt.is_none() {
            return;
        }
        let (mut browse, mut save, mut discard, mut cancel) = (None, false, false, false);
        egui::Modal::new(egui::Id::unique("unsaved")).show(&ctx, |ui| {
            let Some(prompt) = self.close_prompt.as_mut() else { return };
            let n = prompt.targets.len();
            // wide enough for a whole path: it is what "Save all" writes to
            ui.set_min_width(560.0);
            ui.heading("Unsaved changes");
            ui.label(if n == 1 { "This document has changes that are not saved:" } else { "These documents have changes that are not saved:" });
            for t in prompt.targets.iter_mut() {
                ui.add_space(4.0);
                ui.label(RichText::new(&t.name).strong());
                ui.horizontal(|ui| {
                    ui.label("save to");
                    ui.add(egui::TextEdit::singleline(&mut t.path).desired_width(420.0).hint_text(RichText::new("where to save it (.png)").italics()));
                    if ui.small_button("Browse...").clicked() {
                        browse = Some(t.id);
                    }
                });
            }
            ui.add_space(4.0);
            if let Some(e) = &prompt.error {
                ui.colored_label(Color32::LIGHT_RED, e.as_str());
            }
            ui.horizontal(|ui| {
                save = ui.button(if n == 1 { "Save" } else { "Save all" }).on_hover_text("save each to the path beside it, then close").clicked();
                discard = ui.button(if n == 1 { "Discard" } else { "Discard all" }).on_hover_text("close without saving").clicked();
                cancel = ui.button("Cancel").on_hover_text("keep editing").clicked();
            });
        });
        if save {
            self.save_all_and_close();
        } else if discard {
            self.discard_and_close();
        } else if cancel {
            self.cancel_close();
        }
        if let Some(id) = browse {
            self.browse_save_target(id);
        }
    }
}
