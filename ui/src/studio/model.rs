//! The model: a folder loaded in this process, or `unmask serve` on another
//! machine, its defaults, and the model download.

use std::path::{Path, PathBuf};

use unmask::engine::ModelInfo;
use unmask::worker::Event;
use unmask::DeviceChoice;

use super::{ModelStatus, Studio};
use crate::backend::Backend;

impl Studio {
    pub fn load_model(&mut self, dir: &Path) {
        if self.worker.server().is_some() {
            if self.is_running() {
                return self.notify("A run is in progress on the server", "cancel it or wait for it before switching to a model here", true);
            }
            // a model folder runs here: the server is left
            self.worker = Backend::local(self.repaint.clone());
            self.settings.use_server = false;
        }
        self.model = ModelStatus::Loading(dir.to_path_buf());
        self.worker.load(dir, DeviceChoice::Auto);
    }

    /// Runs every job on `unmask serve` at `url` from now on (Model > Connect
    /// to server...). The canvas, history and settings stay as they are.
    pub fn connect_server(&mut self, url: &str, token: &str) {
        if self.is_running() {
            return self.notify("A run is in progress", "cancel it or wait for it before connecting to a server", true);
        }
        let client = match unmask::remote::Client::new(url, token) {
            Ok(c) => c,
            Err(e) => return self.notify("Cannot connect to the server", &e.to_string(), true),
        };
        self.settings.server_url = client.url().to_string();
        self.settings.server_token = token.trim().to_string();
        self.settings.use_server = true;
        self.model = ModelStatus::Loading(PathBuf::from(client.url()));
        self.worker = Backend::remote(client, self.repaint.clone());
    }

    /// Leaves the server: jobs run here again, on the last model folder (or the embedded model).
    pub fn disconnect_server(&mut self) {
        if self.worker.server().is_none() {
            return;
        }
        if self.is_running() {
            return self.notify("A run is in progress on the server", "cancel it or wait for it before disconnecting", true);
        }
        self.worker = Backend::local(self.repaint.clone());
        self.settings.use_server = false;
        self.model = ModelStatus::None;
        let dir = self.settings.model_dir.clone().filter(|p| p.join("config.json").is_file()).or_else(unmask::bundle::default_model_dir);
        if let Some(d) = dir {
            self.load_model(&d);
        }
    }

    /// Starts downloading a bundle (the dialog's Start / Resume); one at a time.
    pub fn start_download(&mut self, req: unmask::hub::Request) {
        if self.download.as_ref().is_some_and(|d| d.running()) {
            return;
        }
        self.download = Some(crate::models::Download::start(req, self.repaint.clone()));
    }

    /// The worker's model events (loading, loaded, failed); [`Studio::poll`]
    /// passes them on.
    pub(crate) fn handle_model(&mut self, e: Event) {
        match e {
            Event::Loading { path } => self.model = ModelStatus::Loading(path),
            Event::Loaded(info) if self.worker.server().is_some() => {
                // a server's model: no folder here to remember (nor to measure)
                self.model_size = None;
                if self.model_info().is_none_or(|m| m.name != info.name) {
                    self.adopt_model_defaults(&info);
                }
                self.model = ModelStatus::Ready(info);
            }
            Event::LoadFailed { message, .. } if self.worker.server().is_some() => {
                self.model = ModelStatus::None;
                let url = self.worker.server().unwrap_or_default().to_string();
                self.notify(&format!("Could not connect to {url}"), &message, true);
            }
            Event::Loaded(info) => {
                // a different model brings its own defaults; the same one keeps the user's settings
                let path = PathBuf::from(&info.path);
                if self.settings.model_dir.as_ref() != Some(&path) {
                    self.adopt_model_defaults(&info);
                }
                self.settings.add_opened_model(&path);
                // what the Model menu lists it at: one figure, however it is shown
                self.model_size = Some(crate::models::bundle_bytes(&path));
                self.settings.model_dir = Some(path);
                self.known_models = None;
                self.model = ModelStatus::Ready(info);
            }
            Event::LoadFailed { path, message } => {
                // a model that was loaded stays loaded in the worker
                if matches!(self.model, ModelStatus::Loading(_)) {
                    self.model = ModelStatus::None;
                }
                self.notify(&format!("Not a usable model folder: {}", path.display()), &message, true);
            }
            _ => {}
        }
    }

    /// A newly loaded model's defaults (its `unmask.json`): the settings it
    /// names, and the guidance of edits. (Not named like
    /// `Settings::apply_model_defaults`, which it calls: the module-layers
    /// test reads a `self.` call by its name.)
    fn adopt_model_defaults(&mut self, info: &ModelInfo) {
        self.settings.apply_model_defaults(info);
        self.edit_cfg = info.default_edit_cfg.unwrap_or(2.5);
    }
}
