//! The top bar: the File, Edit and Model menus and the document tabs.

use std::path::PathBuf;

use crate::studio::Studio;

impl Studio {
    pub(crate) fn menu_bar(&mut self, ui: &mut egui::Ui) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui.button("Open...  (Ctrl+O)").clicked() {
                    self.open_dialog();
                }
                let save = ui.add_enabled(self.doc.is_some(), egui::Button::new("Save PNG...  (Ctrl+S)"));
                if save.clicked() {
                    self.save_dialog();
                }
                ui.menu_button("Recent", |ui| {
                    for p in self.settings.recent_files.clone() {
                        if ui.button(p.display().to_string()).clicked() {
                            self.open_path(&p);
                        }
                    }
                });
                ui.separator();
                // the same question as the window's close button: every unsaved document
                if ui.button("Quit  (Ctrl+Q)").clicked() {
                    self.request_close();
                }
            });
            ui.menu_button("Edit", |ui| {
                let (u, r) = self.doc.as_ref().map(|d| (d.can_undo(), d.can_redo())).unwrap_or((false, false));
                if ui.add_enabled(u, egui::Button::new("Undo  (Ctrl+Z)")).clicked() {
                    self.undo();
                }
                if ui.add_enabled(r, egui::Button::new("Redo  (Ctrl+Shift+Z)")).clicked() {
                    self.redo();
                }
            });
            ui.menu_button("Model", |ui| {
                if ui.button("Open model folder...").clicked() {
                    self.model_folder_dialog();
                }
                if let Some(d) = unmask::bundle::default_model_dir() {
                    if ui.button("Use the embedded model").clicked() {
                        self.load_model(&d);
                    }
                }
                if ui.button("Download Lumina-DiMOO...").clicked() {
                    self.download_open = true;
                }
                if ui.button("Connect to server...").clicked() {
                    self.connect_open = true;
                }
                ui.separator();
                let known = self.known_models.get_or_insert_with(|| crate::models::known(&self.settings.opened_models)).clone();
                let current = self.model_info().map(|i| PathBuf::from(&i.path));
                for k in known {
                    let label = format!("{}  ({}, {}, {})", k.name, crate::models::size_text(k.bytes), k.kind, k.origin);
                    if ui.selectable_label(current.as_ref() == Some(&k.dir), label).on_hover_text(k.dir.display().to_string()).clicked() {
                        self.load_model(&k.dir);
                    }
                }
            });
        });
    }

    /// One tab per open document (a sketch opens its own).
    pub(crate) fn tab_bar(&mut self, ui: &mut egui::Ui) {
        let tabs = self.tabs();
        if tabs.len() < 2 {
            return;
        }
        let mut switch = None;
        let mut close = None;
        ui.horizontal(|ui| {
            for (id, label, dirty, current) in tabs {
                let text = if dirty { format!("{label} *") } else { label };
                let r = ui.add_enabled(self.run.is_none() || current, egui::Button::selectable(current, text));
                if r.clicked() {
                    switch = Some(id);
                }
                if !current && !dirty && ui.small_button("x").on_hover_text("close").clicked() {
                    close = Some(id);
                }
            }
        });
        if let Some(id) = switch {
            self.switch_to(id);
        }
        if let Some(id) = close {
            self.close_background(id);
        }
    }
}
