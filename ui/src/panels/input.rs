//! Files and keys: dropped and pasted files, the shortcuts, and the open
//! and save file dialogs.

use crate::studio::Studio;

impl Studio {
    pub(crate) fn files_in(&mut self, ui: &egui::Ui) {
        let (dropped, pasted) = ui.input(|i| {
            let pasted: Vec<String> = i.events.iter().filter_map(|e| if let egui::Event::Paste(t) = e { Some(t.clone()) } else { None }).collect();
            (i.raw.dropped_files.clone(), pasted)
        });
        for f in dropped {
            match f.bytes() {
                Ok(b) => self.open_bytes(&b, f.path()),
                Err(e) => self.notify("Could not read the dropped file", &e, true),
            }
        }
        // a pasted file path opens that file (when no text field takes it)
        if !ui.ctx().egui_wants_keyboard_input() {
            for t in pasted {
                let p = std::path::PathBuf::from(t.trim());
                if p.is_file() {
                    self.open_path(&p);
                }
            }
        }
    }

    pub(crate) fn shortcuts(&mut self, ui: &egui::Ui) {
        use egui::{Key, Modifiers};
        let typing = ui.ctx().egui_wants_keyboard_input();
        let (redo, undo, esc, open, save, smaller, bigger, compare) = ui.input_mut(|i| {
            // redo first: Ctrl+Z would also match Ctrl+Shift+Z
            (
                i.consume_key(Modifiers::COMMAND | Modifiers::SHIFT, Key::Z),
                i.consume_key(Modifiers::COMMAND, Key::Z),
                i.key_pressed(Key::Escape),
                i.consume_key(Modifiers::COMMAND, Key::O),
                i.consume_key(Modifiers::COMMAND, Key::S),
                !typing && i.key_pressed(Key::OpenBracket),
                !typing && i.key_pressed(Key::CloseBracket),
                !typing && i.key_down(Key::C),
            )
        });
        if redo {
            self.redo();
        } else if undo && !typing {
            self.undo();
        }
        if esc {
            self.cancel();
        }
        if open {
            self.open_dialog();
        }
        if save {
            self.save_dialog();
        }
        // whole pixels: a brush of 12.288 px means nothing to a person
        if smaller {
            self.settings.brush_size = (self.settings.brush_size / 1.25).round().max(1.0);
        }
        if bigger {
            self.settings.brush_size = (self.settings.brush_size * 1.25).round().max(self.settings.brush_size + 1.0).min(1024.0);
        }
        self.comparing = compare && self.doc.is_some();
    }

    pub fn open_dialog(&mut self) {
        let pick = rfd::FileDialog::new().add_filter("Images", &["png", "jpg", "jpeg", "webp", "bmp", "gif"]).pick_file();
        if let Some(p) = pick {
            self.open_path(&p);
        }
    }

    pub fn save_dialog(&mut self) -> bool {
        if self.doc.is_none() {
            return false;
        }
        let name = self
            .doc
            .as_ref()
            .and_then(|d| d.path.as_ref())
            .and_then(|p| p.file_stem())
            .map(|s| format!("{}-unmask.png", s.to_string_lossy()))
            .unwrap_or_else(|| "unmask.png".into());
        match rfd::FileDialog::new().add_filter("PNG", &["png"]).set_file_name(name).save_file() {
            Some(p) => self.save_to(&p),
            None => false,
        }
    }
}
