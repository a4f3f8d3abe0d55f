//! The Studio's layout: menu bar, the side panel of modes and settings, the
//! history strip, the status bar, notices and dialogs.

use std::path::PathBuf;
use std::time::Duration;

use egui::{Color32, RichText};

use crate::app::{Mode, ModelStatus, RunKind, Studio, Tool};
use crate::mask_paint;

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
        egui::Panel::left("controls").default_size(290.0).show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| self.controls(ui));
        });
        egui::CentralPanel::no_frame().show(ui, |ui| self.canvas_ui(ui));
        self.notices_ui(ui);
        self.close_guard(ui);
        self.restore_prompt(ui);
        self.download_dialog(ui);
        self.connect_dialog(ui);
        if self.download.as_ref().is_some_and(|d| d.running()) {
            ui.ctx().request_repaint_after(Duration::from_millis(100));
        }
    }

    /// Model > Connect to server...: the address and token of an `unmask serve`.
    fn connect_dialog(&mut self, ui: &egui::Ui) {
        if !self.connect_open {
            return;
        }
        let mut open = true;
        egui::Window::new("Connect to server").open(&mut open).collapsible(false).show(ui.ctx(), |ui| {
            ui.label("Run every job on `unmask serve` on another machine (its GPU). The canvas and history stay here.");
            egui::Grid::new("connect").num_columns(2).show(ui, |ui| {
                ui.label("Server");
                ui.add(egui::TextEdit::singleline(&mut self.connect_url).hint_text("http://HOST:7860").desired_width(280.0));
                ui.end_row();
                ui.label("Token");
                ui.add(egui::TextEdit::singleline(&mut self.connect_token).password(true).hint_text("printed by unmask serve").desired_width(280.0));
                ui.end_row();
            });
            match (self.server(), &self.model) {
                (Some(url), ModelStatus::Loading(_)) => {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label(format!("connecting to {url}..."));
                    });
                }
                (Some(url), ModelStatus::Ready(i)) => {
                    ui.label(format!("Connected to {url}: {} on {}", i.name, i.device));
                }
                _ => {}
            }
            ui.horizontal(|ui| {
                if ui.button("Connect").clicked() {
                    let (url, token) = (self.connect_url.clone(), self.connect_token.clone());
                    self.connect_server(&url, &token);
                }
                if self.server().is_some() && ui.button("Disconnect (run here)").clicked() {
                    self.disconnect_server();
                }
            });
        });
        self.connect_open = open;
    }

    /// Model > Download Lumina-DiMOO...: progress, cancel, resume.
    fn download_dialog(&mut self, ui: &egui::Ui) {
        if !self.download_open {
            return;
        }
        let mut open = true;
        egui::Window::new("Download Lumina-DiMOO").open(&mut open).collapsible(false).show(ui.ctx(), |ui| {
            let Some(dir) = unmask::hub::models_dir().map(|m| m.join("Lumina-DiMOO")) else {
                ui.label("No home folder to put models in.");
                return;
            };
            ui.label(format!("{} from the Hugging Face hub into {}", unmask::hub::DEFAULT_REPO, dir.display()));
            ui.label("About 16 GB. HF_ENDPOINT, HF_TOKEN and HF_HOME are honoured; an interrupted download resumes.");
            // said before the 16 GB, not after: a server is the way to run it from here
            let no_gpu = crate::models::cannot_run_here();
            if let Some(note) = no_gpu {
                ui.colored_label(ui.visuals().warn_fg_color, note);
                if ui.button("Connect to server...").clicked() {
                    self.connect_open = true;
                }
            }
            match &self.download {
                Some(d) if d.running() => {
                    let frac = if d.to_fetch > 0 { d.fetched as f32 / d.to_fetch as f32 } else { 0.0 };
                    let (rate, eta) = d.rate_eta();
                    let eta = eta.map(|s| format!(", about {s:.0} s left")).unwrap_or_default();
                    ui.add(egui::ProgressBar::new(frac).text(format!(
                        "{} of {} ({}/s{eta})",
                        unmask::limits::gib(d.fetched),
                        unmask::limits::gib(d.to_fetch),
                        unmask::limits::gib(rate as u64)
                    )));
                    let what = if d.verifying { "verifying" } else { "fetching" };
                    ui.label(format!("{what} {} ({} of {})", d.file, unmask::limits::gib(d.file_done), unmask::limits::gib(d.file_size)));
                    if ui.button("Cancel").clicked() {
                        d.cancel();
                    }
                }
                other => {
                    if let Some(Err(m)) = other.as_ref().and_then(|d| d.outcome.as_ref()) {
                        ui.colored_label(ui.visuals().warn_fg_color, m.as_str());
                    }
                    if let Some(Ok(p)) = other.as_ref().and_then(|d| d.outcome.as_ref()) {
                        ui.label(format!("Done: {}", p.display()));
                    }
                    let resume = unmask::hub::incomplete(&dir).is_some();
                    if !resume && dir.join("config.json").is_file() {
                        // downloaded before: nothing to fetch
                        if ui.button("Already downloaded: load it").clicked() {
                            self.load_model(&dir);
                        }
                    } else if ui.button(match (resume, no_gpu.is_some()) {
                        (true, _) => "Resume",
                        (false, true) => "Download anyway",
                        (false, false) => "Start",
                    }).clicked() {
                        let req = unmask::hub::Request {
                            repo: unmask::hub::DEFAULT_REPO.into(),
                            revision: "main".into(),
                            dir,
                            endpoint: None,
                            token: None,
                            cache: None,
                            timeout: None,
                        };
                        self.start_download(req);
                    }
                }
            }
        });
        self.download_open = open;
    }

    /// Asked once at start when the last session did not close cleanly.
    fn restore_prompt(&mut self, ui: &egui::Ui) {
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

    fn files_in(&mut self, ui: &egui::Ui) {
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

    fn shortcuts(&mut self, ui: &egui::Ui) {
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

    fn menu_bar(&mut self, ui: &mut egui::Ui) {
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
                    if let Some(d) = rfd::FileDialog::new().pick_folder() {
                        self.load_model(&d);
                    }
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
                    let label = format!("{}  ({}, {}, {})", k.name, unmask::limits::gib(k.bytes), k.kind, k.origin);
                    if ui.selectable_label(current.as_ref() == Some(&k.dir), label).on_hover_text(k.dir.display().to_string()).clicked() {
                        self.load_model(&k.dir);
                    }
                }
            });
        });
    }

    fn controls(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.selectable_value(&mut self.mode, Mode::Retouch, "Retouch");
            ui.selectable_value(&mut self.mode, Mode::Sketch, "Sketch");
            ui.selectable_value(&mut self.mode, Mode::Ask, "Ask");
        });
        ui.separator();
        match self.mode {
            Mode::Retouch => self.retouch_controls(ui),
            Mode::Sketch => self.sketch_controls(ui),
            Mode::Ask => self.ask_controls(ui),
        }
        ui.separator();
        self.run_controls(ui);
        if self.mode != Mode::Ask {
            ui.separator();
            self.sampling_controls(ui);
        }
    }

    fn retouch_controls(&mut self, ui: &mut egui::Ui) {
        ui.label("Paint over what should change, then say what it becomes. With no mask the prompt is an edit instruction for the whole image.");
        ui.horizontal(|ui| {
            ui.selectable_value(&mut self.tool, Tool::Brush, "Brush");
            ui.selectable_value(&mut self.tool, Tool::Eraser, "Eraser");
            ui.selectable_value(&mut self.tool, Tool::Rectangle, "Rectangle");
            ui.selectable_value(&mut self.tool, Tool::Lasso, "Lasso");
        });
        ui.add(egui::Slider::new(&mut self.settings.brush_size, 1.0..=512.0).logarithmic(true).fixed_decimals(0).text("brush ([ ])"));
        ui.horizontal(|ui| {
            if ui.button("Invert").clicked() {
                self.edit_mask(mask_paint::invert);
            }
            if ui.button("Clear mask").clicked() {
                self.edit_mask(mask_paint::clear);
            }
            ui.checkbox(&mut self.settings.show_cells, "cells");
        });
        ui.add(egui::Slider::new(&mut self.settings.grow, 0..=8).text("grow (cells)"));
        ui.add(egui::Slider::new(&mut self.settings.feather, 0.0..=64.0).text("feather (px)"));
        self.context_controls(ui);
        ui.collapsing("Extend canvas", |ui| self.extend_controls(ui));
        ui.label("Prompt");
        ui.add(egui::TextEdit::multiline(&mut self.prompt).desired_rows(3).hint_text("a large red circle"));
    }

    /// What the model sees around the mask: the crop box on the canvas follows.
    fn context_controls(&mut self, ui: &mut egui::Ui) {
        use unmask::crop::Context;
        ui.horizontal(|ui| {
            ui.label("context");
            let c = &mut self.settings.context;
            if ui.selectable_label(*c == Context::Auto, "auto").on_hover_text("about the region's own size on each side").clicked() {
                *c = Context::Auto;
            }
            if ui.selectable_label(matches!(c, Context::Margin(_)), "margin").clicked() && !matches!(c, Context::Margin(_)) {
                *c = Context::Margin(128);
            }
            if ui.selectable_label(*c == Context::Whole, "whole image").clicked() {
                *c = Context::Whole;
            }
        });
        if let unmask::crop::Context::Margin(m) = &mut self.settings.context {
            ui.add(egui::Slider::new(m, 0..=2048).logarithmic(true).text("margin (px)"));
        }
    }

    fn extend_controls(&mut self, ui: &mut egui::Ui) {
        ui.label("Add a border for the model to fill (it becomes the mask).");
        let b = &mut self.extend_by;
        ui.horizontal(|ui| {
            ui.add(egui::DragValue::new(&mut b[0]).range(0..=4096).prefix("left "));
            ui.add(egui::DragValue::new(&mut b[1]).range(0..=4096).prefix("right "));
        });
        ui.horizontal(|ui| {
            ui.add(egui::DragValue::new(&mut b[2]).range(0..=4096).prefix("top "));
            ui.add(egui::DragValue::new(&mut b[3]).range(0..=4096).prefix("bottom "));
        });
        let [l, r, t, bo] = *b;
        if ui.add_enabled(self.doc.is_some() && self.run.is_none(), egui::Button::new("Extend")).clicked() {
            self.extend_canvas(l, r, t, bo);
        }
        ui.horizontal_wrapped(|ui| {
            ui.label("to aspect");
            for (name, aw, ah) in [("1:1", 1, 1), ("4:3", 4, 3), ("3:2", 3, 2), ("16:9", 16, 9), ("9:16", 9, 16)] {
                if ui.add_enabled(self.doc.is_some() && self.run.is_none(), egui::Button::new(name)).clicked() {
                    self.extend_to_aspect(aw, ah);
                }
            }
        });
    }

    /// One tab per open document (a sketch opens its own).
    fn tab_bar(&mut self, ui: &mut egui::Ui) {
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

    fn sketch_controls(&mut self, ui: &mut egui::Ui) {
        ui.label("Describe an image to sketch.");
        ui.add(egui::TextEdit::multiline(&mut self.prompt).desired_rows(3).hint_text("a large red circle in the center"));
        let f = self.model_info().map(|i| i.vq_factor).unwrap_or(16);
        let base = self.model_info().and_then(|i| i.default_width).unwrap_or(1024);
        ui.horizontal_wrapped(|ui| {
            for (name, rw, rh) in [("1:1", 1, 1), ("4:3", 4, 3), ("3:4", 3, 4), ("16:9", 16, 9)] {
                if ui.button(name).clicked() {
                    // same area as the model's native square, sides on the VQ grid
                    let area = (base * base) as f64;
                    let h = (area * rh as f64 / rw as f64).sqrt();
                    let w = h * rw as f64 / rh as f64;
                    self.settings.sketch_width = ((w / f as f64).round() as usize).max(1) * f;
                    self.settings.sketch_height = ((h / f as f64).round() as usize).max(1) * f;
                }
            }
        });
        ui.horizontal(|ui| {
            ui.add(egui::DragValue::new(&mut self.settings.sketch_width).range(f..=4096).speed(f as f64).prefix("w "));
            ui.add(egui::DragValue::new(&mut self.settings.sketch_height).range(f..=4096).speed(f as f64).prefix("h "));
        });
        let (w, h) = self.sketch_size();
        ui.label(format!("{w} x {h} px"));
        // before the run, not after it fails: the engine would refuse it too
        let branches = 1 + usize::from(self.settings.cfg > 0.0);
        // this machine's memory (the GPU's on CUDA); a server checks its own
        let here = self.model_info().filter(|_| self.server().is_none());
        if let Some(warn) = here.and_then(|i| unmask::tasks::budget::warning(i, w, h, branches, self.settings.cache)) {
            ui.colored_label(ui.visuals().warn_fg_color, format!("Won't fit: {warn}"));
        }
    }

    fn ask_controls(&mut self, ui: &mut egui::Ui) {
        ui.label("Ask about the image on the canvas.");
        for t in &self.chat {
            ui.label(RichText::new(format!("Q: {}", t.question)).strong());
            ui.label(format!("A: {}", t.shown_answer()));
        }
        let r = ui.add(egui::TextEdit::singleline(&mut self.question).hint_text("what color is the circle?"));
        if r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
            self.start_ask();
        }
    }

    fn run_controls(&mut self, ui: &mut egui::Ui) {
        if let Some(run) = &self.run {
            let frac = if run.total > 0 { run.step as f32 / run.total as f32 } else { 0.0 };
            let eta = run.eta().map(|s| format!(", about {s:.0} s left")).unwrap_or_default();
            let jobs = if run.jobs.len() > 1 { format!(" (variant {}/{})", run.finished + 1, run.jobs.len()) } else { String::new() };
            ui.add(egui::ProgressBar::new(frac).text(format!("step {}/{}{jobs}{eta}", run.step, run.total)));
            if ui.button("Cancel  (Esc)").clicked() {
                self.cancel();
            }
        } else {
            let label = match self.mode {
                Mode::Retouch if self.doc.as_ref().is_some_and(|d| d.mask_is_empty()) => "Run edit",
                Mode::Retouch => "Run retouch",
                Mode::Sketch => "Run sketch",
                Mode::Ask => "Send question",
            };
            let enabled = self.model_info().is_some();
            if ui.add_enabled(enabled, egui::Button::new(RichText::new(label).strong()).min_size(egui::vec2(120.0, 28.0))).clicked() {
                self.start();
            }
        }
        if !self.variants.is_empty() && self.run.is_none() {
            ui.label("Pick a variant (see the strip below)");
        }
    }

    fn sampling_controls(&mut self, ui: &mut egui::Ui) {
        let s = &mut self.settings;
        ui.add(egui::Slider::new(&mut s.steps, 1..=128).text("steps"));
        ui.add(egui::Slider::new(&mut s.cfg, 0.0..=10.0).text("guidance"));
        ui.add(egui::Slider::new(&mut s.cfg_img, 0.0..=10.0).text("image guidance (edit)"));
        ui.add(egui::Slider::new(&mut s.temperature, 0.0..=2.0).text("temperature"));
        ui.horizontal(|ui| {
            ui.checkbox(&mut s.random_seed, "random seed");
            ui.add_enabled(!s.random_seed, egui::DragValue::new(&mut s.seed).prefix("seed "));
        });
        ui.add(egui::Slider::new(&mut s.variants, 1..=8).text("variants"));
        ui.collapsing("ML-Cache", |ui| {
            ui.checkbox(&mut s.cache, "on (faster, approximate)");
            ui.add(egui::Slider::new(&mut s.cache_ratio, 0.5..=0.99).text("cache ratio"));
            ui.add(egui::Slider::new(&mut s.warmup_ratio, 0.0..=0.9).text("warm-up ratio"));
            ui.add(egui::Slider::new(&mut s.refresh_interval, 1..=20).text("refresh interval"));
        });
    }

    fn history_strip(&mut self, ui: &mut egui::Ui) {
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

    fn status_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            match &self.model {
                ModelStatus::None => {
                    ui.label(RichText::new("No model").color(Color32::LIGHT_RED));
                }
                ModelStatus::Loading(p) => {
                    ui.spinner();
                    let what = if self.server().is_some() { "connecting to" } else { "loading" };
                    ui.label(format!("{what} {}", p.display()));
                }
                ModelStatus::Ready(i) => {
                    let bytes = if i.compute_dtype == "f32" { 4 } else { 2 };
                    let gib = i.parameters as f64 * bytes as f64 / (1u64 << 30) as f64;
                    let p = i.parameters as f64;
                    let params = if p >= 1e9 { format!("{:.2} B", p / 1e9) } else if p >= 1e6 { format!("{:.1} M", p / 1e6) } else { format!("{:.0} K", p / 1e3) };
                    let mem = if gib >= 0.1 { format!("{gib:.1} GiB") } else { format!("{:.1} MiB", gib * 1024.0) };
                    let place = self.server().map(|u| format!("server {u} | ")).unwrap_or_default();
                    ui.label(format!("{place}{} | {} {} | {params} params, ~{mem} weights", i.name, i.device, i.compute_dtype));
                }
            }
            if let Some(doc) = &self.doc {
                ui.separator();
                let (w, h) = doc.size();
                let name = doc.path.as_ref().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or("untitled".into());
                ui.label(format!("{name} {w}x{h}{}", if doc.dirty { " (unsaved)" } else { "" }));
                ui.label(format!("zoom {:.0}%", self.view.scale * 100.0));
                if let Some(text) = self.working_text() {
                    ui.separator();
                    ui.label(text);
                }
            }
            if let Some(run) = &self.run {
                ui.separator();
                let what = match run.kind {
                    RunKind::Retouch => "retouching",
                    RunKind::Edit => "editing",
                    RunKind::Sketch => "sketching",
                    RunKind::Ask => "answering",
                };
                ui.label(format!("{what} {}/{}", run.step, run.total));
            }
        });
    }

    fn notices_ui(&mut self, ui: &egui::Ui) {
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

    /// Asks before closing with unsaved changes.
    fn close_guard(&mut self, ui: &egui::Ui) {
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
