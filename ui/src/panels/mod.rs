//! The Studio's layout: menu bar, the side panel of modes and settings, the
//! history strip, the status bar, notices and dialogs. [`Studio::show`]
//! places the panels; each child module draws one of them.

use std::time::Duration;

use crate::studio::{ModelStatus, Studio};

mod controls;
mod dialogs;
mod history;
mod input;
mod menu;
mod prompts;
mod regions;
mod status;

impl Studio {
    /// The whole UI, one frame. eframe and the tests both call this.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        self.poll();
        self.files_in(ui);
        self.shortcuts(ui);
        if self.run.is_some() || matches!(self.model, ModelStatus::Loading(_)) {
            ui.ctx().request_repaint_after(Duration::from_millis(50));
        }
        egui::Panel::top("menu").show(ui, |ui| {
            self.menu_bar(ui);
            self.tab_bar(ui);
        });
        egui::Panel::bottom("status").show(ui, |ui| self.status_bar(ui));
        egui::Panel::bottom("history").show(ui, |ui| self.history_strip(ui));
        // the mode tabs set `mode` directly: a switch goes through `set_mode`
        // after the panel, from the prompt as it was before it, so Retouch and
        // Sketch each keep their own prompt in the Studio (and the session)
        let (mode, prompt) = (self.mode, self.prompt.clone());
        egui::Panel::left("controls").default_size(290.0).show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| self.controls(ui));
        });
        if self.mode != mode {
            let to = std::mem::replace(&mut self.mode, mode);
            self.prompt = prompt;
            self.set_mode(to);
            // the panel drew this frame with the old mode's prompt: draw it again now
            ui.ctx().request_repaint();
        }
        egui::CentralPanel::no_frame().show(ui, |ui| self.canvas_ui(ui));
        self.notices_ui(ui);
        self.close_guard(ui);
        self.restore_prompt(ui);
        self.download_dialog(ui);
        self.connect_dialog(ui);
        self.path_prompt_ui(ui);
        if self.download.as_ref().is_some_and(|d| d.running()) {
            ui.ctx().request_repaint_after(Duration::from_millis(100));
        }
    }
}
