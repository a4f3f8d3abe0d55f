//! Files and keys: dropped and pasted files, the shortcuts, the system's
//! file dialogs, and the path field that stands in for them.
//!
//! rfd is built with its xdg-portal backend only (it falls back to zenity):
//! its gtk3 backend needs the GTK 3 development files, which the build
//! machine does not have, so it cannot be built here. Where neither a
//! file-dialog portal nor zenity answers, rfd returns "no file" as for a
//! cancel and says nothing; the Studio then says so and asks for the path
//! in a field of its own (`studio/paths.rs`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui::{Color32, Id};

use crate::studio::{PathKind, Studio};

/// A dialog that answers "no file" sooner than this was never shown: no
/// one cancels a file dialog in a quarter of a second.
const NO_DIALOG: Duration = Duration::from_millis(250);

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
        let (redo, undo, esc, open, save, quit, compare) = ui.input_mut(|i| {
            // redo first: Ctrl+Z would also match Ctrl+Shift+Z
            (
                i.consume_key(Modifiers::COMMAND | Modifiers::SHIFT, Key::Z),
                i.consume_key(Modifiers::COMMAND, Key::Z),
                i.key_pressed(Key::Escape),
                i.consume_key(Modifiers::COMMAND, Key::O),
                i.consume_key(Modifiers::COMMAND, Key::S),
                i.consume_key(Modifiers::COMMAND, Key::Q),
                !typing && i.key_down(Key::C),
            )
        });
        // N: a new region (not while a text field takes the letter)
        if !typing && self.doc.is_some() && ui.input_mut(|i| i.consume_key(Modifiers::NONE, Key::N)) {
            self.new_region();
        }
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
        if quit {
            self.request_close();
        }
        // [ and ] are the canvas's (canvas/input.rs: every press of a frame counts)
        self.comparing = compare && self.doc.is_some();
    }

    /// File > Open...: the system's dialog, else the path field.
    pub fn open_dialog(&mut self) {
        let start = self.last_folder();
        let picked = self.system_dialog(|| {
            let mut d = rfd::FileDialog::new().add_filter("Images", &["png", "jpg", "jpeg", "webp", "bmp", "gif"]);
            if let Some(f) = start {
                d = d.set_directory(f);
            }
            d.pick_file()
        });
        match picked {
            Ok(Some(p)) => {
                self.open_path(&p);
            }
            Ok(None) => {}
            Err(()) => self.open_path_prompt(PathKind::Open),
        }
    }

    /// File > Save PNG...: the system's dialog at the proposed path, else
    /// the path field; whether it saved.
    pub fn save_dialog(&mut self) -> bool {
        let Some(id) = self.doc.as_ref().map(|d| d.id) else { return false };
        let proposed = self.proposed_save_path(id, &[]);
        match self.system_dialog(|| save_file(proposed.as_deref())) {
            Ok(Some(p)) => self.save_document(id, &p),
            Ok(None) => false,
            Err(()) => {
                self.open_path_prompt(PathKind::Save(id));
                false
            }
        }
    }

    /// Model > Open model folder...: the system's dialog, else the path field.
    pub fn model_folder_dialog(&mut self) {
        let start = self.settings.model_dir.as_deref().and_then(Path::parent).map(Path::to_path_buf);
        let picked = self.system_dialog(|| {
            let mut d = rfd::FileDialog::new();
            if let Some(f) = start {
                d = d.set_directory(f);
            }
            d.pick_folder()
        });
        match picked {
            Ok(Some(d)) => self.load_model(&d),
            Ok(None) => {}
            Err(()) => self.open_path_prompt(PathKind::ModelFolder),
        }
    }

    /// "Browse..." beside a path of the close question.
    pub(crate) fn browse_save_target(&mut self, id: u64) {
        let Some(now) = self.close_prompt.as_ref().and_then(|c| c.targets.iter().find(|t| t.id == id)).map(|t| PathBuf::from(&t.path)) else { return };
        if let Ok(Some(p)) = self.system_dialog(|| save_file(Some(&now))) {
            if let Some(t) = self.close_prompt.as_mut().and_then(|c| c.targets.iter_mut().find(|t| t.id == id)) {
                t.path = p.display().to_string();
            }
        }
    }

    /// Runs a system file dialog: `Err(())` when none can be shown (said
    /// once; from then on the path field is used).
    fn system_dialog<T>(&mut self, pick: impl FnOnce() -> Option<T>) -> Result<Option<T>, ()> {
        if self.no_file_dialog.is_some() {
            return Err(());
        }
        let why = match dialog_missing() {
            Some(why) => why,
            None => {
                let t = Instant::now();
                let picked = pick();
                if picked.is_some() || t.elapsed() >= NO_DIALOG {
                    return Ok(picked);
                }
                "the file dialog closed at once: neither a file-dialog portal (xdg-desktop-portal with a FileChooser backend) nor zenity answered".into()
            }
        };
        self.notify("No system file dialog: type the path in the Studio instead", &why, true);
        self.no_file_dialog = Some(why);
        Err(())
    }

    /// The path field standing in for a file dialog (see [`Studio::open_path_prompt`]).
    pub(crate) fn path_prompt_ui(&mut self, ui: &egui::Ui) {
        let Some(p) = self.path_prompt.as_mut() else { return };
        let (title, what) = match p.kind {
            PathKind::Open => ("Open image", "The path of the image to open (PNG, JPEG, WebP, BMP, GIF):"),
            PathKind::Save(_) => ("Save PNG", "Where to save it (a .png file):"),
            PathKind::ModelFolder => ("Open model folder", "The model's folder (the one holding config.json):"),
        };
        let (mut open, mut ok, mut cancel) = (true, false, false);
        let why = self.no_file_dialog.as_deref();
        let window = egui::Window::new(title).id(Id::unique("path-prompt")).open(&mut open).collapsible(false).resizable(false);
        // in the middle, clear of the menu bar, wide enough for a path
        let window = window.anchor(egui::Align2::CENTER_TOP, egui::vec2(0.0, 120.0)).default_width(480.0);
        window.show(ui.ctx(), |ui| {
            if let Some(why) = why {
                ui.weak(format!("No system file dialog ({why})."));
            }
            ui.label(what);
            let field = ui.add(egui::TextEdit::singleline(&mut p.text).id(Id::unique("path-prompt-text")).desired_width(440.0));
            // Enter takes the focus away: read it before giving the focus back
            let enter = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if !enter && ui.memory(|m| m.focused().is_none()) {
                field.request_focus();
            }
            if let Some(e) = &p.error {
                ui.colored_label(Color32::LIGHT_RED, e.as_str());
            }
            ui.horizontal(|ui| {
                ok = ui.button("OK").clicked() || enter;
                cancel = ui.button("Cancel").clicked();
            });
        });
        if ok {
            self.submit_path_prompt();
        } else if cancel || !open {
            self.path_prompt = None;
        }
    }
}

/// The system's save dialog for a PNG, starting at `at` (folder and name).
fn save_file(at: Option<&Path>) -> Option<PathBuf> {
    let mut d = rfd::FileDialog::new().add_filter("PNG", &["png"]);
    if let Some(dir) = at.and_then(Path::parent) {
        d = d.set_directory(dir);
    }
    if let Some(name) = at.and_then(Path::file_name) {
        d = d.set_file_name(name.to_string_lossy());
    }
    d.save_file()
}

/// Why no file dialog can be shown, when that is known before trying: on
/// Linux and the BSDs rfd needs the portal (over the D-Bus session bus) or zenity.
fn dialog_missing() -> Option<String> {
    if !cfg!(all(unix, not(target_os = "macos"))) {
        return None;
    }
    let on_path = |name: &str| std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()));
    let bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|a| !a.is_empty())
        || std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| Path::new(&d).join("bus").exists());
    (!bus && !on_path("zenity")).then(|| "no D-Bus session bus for a file-dialog portal, and no zenity".to_string())
}
