//! The model's windows: Model > Connect to server... and Model > Download
//! Lumina-DiMOO...

use crate::studio::{ModelStatus, Studio};

impl Studio {
    /// Model > Connect to server...: the address and token of an `unmask serve`.
    pub(crate) fn connect_dialog(&mut self, ui: &egui::Ui) {
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
    pub(crate) fn download_dialog(&mut self, ui: &egui::Ui) {
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
}
