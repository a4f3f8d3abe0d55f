//! The status bar: the model and where it runs, the document, the zoom, the
//! working size and the run's progress.

use egui::{Color32, RichText};

use crate::studio::{ModelStatus, RunKind, Studio};

impl Studio {
    pub(crate) fn status_bar(&mut self, ui: &mut egui::Ui) {
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
                    let p = i.parameters as f64;
                    let params = if p >= 1e9 { format!("{:.2} B", p / 1e9) } else if p >= 1e6 { format!("{:.1} M", p / 1e6) } else { format!("{:.0} K", p / 1e3) };
                    // the bundle's size as the Model menu gives it (one function, one figure)
                    let size = self.model_size.map(|b| format!(", {} on disk", crate::models::size_text(b))).unwrap_or_default();
                    let place = self.server().map(|u| format!("server {u} | ")).unwrap_or_default();
                    ui.label(format!("{place}{} | {} {} | {params} params{size}", i.name, i.device, i.compute_dtype));
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
                    RunKind::Describe => "describing",
                };
                ui.label(format!("{what} {}/{}", run.step, run.total));
            }
        });
    }
}
