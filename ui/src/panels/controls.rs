//! The side panel: the mode tabs (Retouch, Sketch, Ask) with each mode's
//! controls, the run button and progress, and the sampling settings.

use egui::RichText;

use crate::mask_paint;
use crate::settings::OverlayColor;
use crate::studio::{Mode, ModelStatus, Studio, Tool};

/// Height of the run area (progress bar, run or cancel button, a line for
/// the variants hint): fixed, so that starting a run moves nothing below it.
const RUN_SLOT: f32 = 72.0;

impl Studio {
    pub(crate) fn controls(&mut self, ui: &mut egui::Ui) {
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
        ui.label("Paint over what should change, then say what it becomes; each region has its own prompt (N: new region, Ctrl+click: pick the region under the pointer). With nothing painted the prompt is an edit instruction for the whole image.");
        ui.horizontal(|ui| {
            ui.selectable_value(&mut self.tool, Tool::Brush, "Brush");
            ui.selectable_value(&mut self.tool, Tool::Eraser, "Eraser");
            ui.selectable_value(&mut self.tool, Tool::Rectangle, "Rectangle");
            ui.selectable_value(&mut self.tool, Tool::Lasso, "Lasso");
        });
        // screen points: the same size on screen at every zoom (settings.rs)
        ui.add(egui::Slider::new(&mut self.settings.brush_size, 1.0..=512.0).logarithmic(true).fixed_decimals(0).text("Brush (screen px) ([ ])"));
        ui.horizontal(|ui| {
            if ui.button("Invert").on_hover_text("the selected region becomes everything no region holds").clicked() {
                self.invert_region();
            }
            if ui.button("Clear mask").on_hover_text("of the selected region").clicked() {
                self.edit_mask(mask_paint::clear);
            }
            ui.checkbox(&mut self.settings.show_cells, "cells");
        });
        self.view_controls(ui);
        ui.add(egui::Slider::new(&mut self.settings.grow, 0..=8).text("grow (cells)"));
        ui.add(egui::Slider::new(&mut self.settings.feather, 0.0..=64.0).text("feather (px)"));
        self.context_controls(ui);
        ui.collapsing("Extend canvas", |ui| self.extend_controls(ui));
        ui.separator();
        self.regions_list(ui);
    }

    /// How the canvas shows the mask and the result: the overlay and its
    /// colour, the before/after split.
    fn view_controls(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.checkbox(&mut self.view.mask_shown, "Show mask (M)").on_hover_text("hidden when a result lands; painting shows it again");
            let mut split = self.split_fraction().is_some();
            let hint = "left of the divider: the version the run started from; right: the current one. Drag the divider.";
            if ui.checkbox(&mut split, "Before/after split").on_hover_text(hint).changed() {
                self.set_split(split.then_some(0.5));
            }
        });
        let c = &mut self.settings.overlay_color;
        let picker = egui::ComboBox::from_label("mask colour").selected_text(c.name()).show_ui(ui, |ui| {
            for o in OverlayColor::ALL {
                ui.selectable_value(c, o, o.name());
            }
        });
        picker.response.on_hover_text("auto: the one farthest in hue from the image's own colours");
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
        ui.label("Add a border for the model to fill (it becomes a region of its own).");
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

    fn sketch_controls(&mut self, ui: &mut egui::Ui) {
        ui.label("Describe an image to sketch.");
        self.prompt_field(ui);
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
        let sel = self.doc.as_ref().map(|d| d.selected_region()).unwrap_or(0);
        match self.region_crop(sel) {
            Some((name, r)) => {
                let about = if self.ask_whole { "the whole image".to_string() } else { format!("{name}: its context, {}x{} px", r.w, r.h) };
                ui.label(format!("Ask about {about}."));
                ui.checkbox(&mut self.ask_whole, "whole image").on_hover_text("else the selected region's context crop (what a retouch of it sees)");
            }
            None => {
                ui.label("Ask about the image on the canvas (or select a painted region to ask about its part).");
            }
        }
        for t in &self.chat {
            ui.label(RichText::new(format!("Q: {}", t.question)).strong());
            ui.label(format!("A: {}", t.shown_answer()));
        }
        let r = ui.add(egui::TextEdit::singleline(&mut self.question).hint_text("what color is the circle?"));
        if r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
            self.start_ask();
        }
    }

    /// The progress bar (empty when idle), the run or cancel button and the
    /// variants hint, in a slot of fixed height.
    fn run_controls(&mut self, ui: &mut egui::Ui) {
        let size = egui::vec2(ui.available_width(), RUN_SLOT);
        ui.allocate_ui_with_layout(size, egui::Layout::top_down(egui::Align::Min), |ui| {
            ui.set_min_height(RUN_SLOT);
            let button = egui::vec2(120.0, 28.0);
            if let Some(run) = &self.run {
                let frac = if run.total > 0 { run.step as f32 / run.total as f32 } else { 0.0 };
                let eta = run.eta().map(|s| format!(", about {s:.0} s left")).unwrap_or_default();
                let jobs = if run.jobs.len() > 1 { format!(" (variant {}/{})", run.finished + 1, run.jobs.len()) } else { String::new() };
                ui.add(egui::ProgressBar::new(frac).text(format!("step {}/{}{jobs}{eta}", run.step, run.total)));
                if ui.add(egui::Button::new("Cancel  (Esc)").min_size(button)).clicked() {
                    self.cancel();
                }
            } else {
                // the bar's empty track, the bar's own size: nothing moves when a run starts
                let w = ui.available_size_before_wrap().x.max(96.0);
                let (track, _) = ui.allocate_exact_size(egui::vec2(w, ui.spacing().interact_size.y), egui::Sense::hover());
                ui.painter().rect_filled(track, track.height() / 2.0, ui.visuals().extreme_bg_color);
                let label = match self.mode {
                    Mode::Retouch if self.doc.as_ref().is_some_and(|d| d.mask_is_empty()) => "Run edit",
                    Mode::Retouch => "Run retouch",
                    Mode::Sketch => "Run sketch",
                    Mode::Ask => "Send question",
                };
                let enabled = self.model_info().is_some();
                if ui.add_enabled(enabled, egui::Button::new(RichText::new(label).strong()).min_size(button)).clicked() {
                    self.start();
                }
            }
            let hint = !self.variants.is_empty() && self.run.is_none();
            ui.label(if hint { "Pick a variant (see the strip below)" } else { "" });
        });
    }

    fn sampling_controls(&mut self, ui: &mut egui::Ui) {
        let s = &mut self.settings;
        ui.add(egui::Slider::new(&mut s.steps, 1..=128).text("steps"));
        ui.add(egui::Slider::new(&mut s.cfg, 0.0..=10.0).text("guidance"));
        // only an edit (Retouch with no mask) is guided by the image
        if self.mode == Mode::Retouch {
            ui.add(egui::Slider::new(&mut s.cfg_img, 0.0..=10.0).text("image guidance (edit)"));
        }
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
        let info = match &self.model {
            ModelStatus::Ready(i) => Some(&**i),
            _ => None,
        };
        let tip = "steps, guidance, temperature, seed, variants, ML-Cache, grow, feather, context, brush and sketch size back to the loaded model's defaults";
        if ui.button("Reset to model defaults").on_hover_text(tip).clicked() {
            self.settings.reset_to_defaults(info);
        }
    }
}
