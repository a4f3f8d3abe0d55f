//! [`Studio::new`]: settings, the model (or the server) of the last session,
//! the crash-recovery session and the image given at start.

use std::sync::Arc;

use super::{Mode, ModelStatus, Studio, StudioOptions, Tool};
use crate::backend::Backend;
use crate::settings::Settings;

impl Studio {
    pub fn new(opts: StudioOptions) -> Self {
        let settings = opts.settings_path.as_deref().map(Settings::load).unwrap_or_default();
        let repaint: Option<Arc<dyn Fn() + Send + Sync>> = opts.ctx.map(|ctx| Arc::new(move || ctx.request_repaint()) as Arc<dyn Fn() + Send + Sync>);
        let worker = Backend::local(repaint.clone());
        let mut s = Self {
            saved_settings: settings.clone(),
            settings,
            settings_path: opts.settings_path,
            worker,
            model: ModelStatus::None,
            doc: None,
            mode: Mode::Retouch,
            tool: Tool::Brush,
            prompt: String::new(),
            ask_whole: false,
            describing: None,
            renaming: None,
            parked_prompt: String::new(),
            prompt_mode: Mode::Retouch,
            question: String::new(),
            chat: Vec::new(),
            run: None,
            next_run: 0,
            variants: Vec::new(),
            variants_doc: None,
            background: Vec::new(),
            notices: Vec::new(),
            comparing: false,
            close_prompt: None,
            allow_close: false,
            close_now: false,
            path_prompt: None,
            // for a desktop whose file dialogs hang or misbehave: ask in the Studio
            no_file_dialog: std::env::var_os("UNMASK_NO_FILE_DIALOG")
                .filter(|v| !v.is_empty() && v != "0")
                .map(|_| "UNMASK_NO_FILE_DIALOG is set".to_string()),
            last_folder: None,
            model_size: None,
            view: Default::default(),
            thumbs: Default::default(),
            next_seed: seed_from_clock(),
            extend_by: [0, 256, 0, 0],
            session: None,
            session_dir: opts.session_dir.clone(),
            restore_offer: None,
            edit_cfg: 2.5,
            download: None,
            download_open: false,
            known_models: None,
            connect_open: false,
            connect_url: String::new(),
            connect_token: String::new(),
            repaint,
        };
        s.connect_url = s.settings.server_url.clone();
        s.connect_token = s.settings.server_token.clone();
        let model = opts
            .model_dir
            .clone()
            .or_else(|| s.settings.model_dir.clone().filter(|p| p.join("config.json").is_file()))
            .or_else(unmask::bundle::default_model_dir);
        if s.settings.use_server && opts.model_dir.is_none() {
            // the last session ran on a server: go back to it (a folder given at start wins)
            let (url, token) = (s.settings.server_url.clone(), s.settings.server_token.clone());
            s.connect_server(&url, &token);
        } else {
            match model {
                Some(dir) => s.load_model(&dir),
                None => s.notify("No model found", "Open a Lumina-DiMOO model folder with Model > Open model folder...", false),
            }
        }
        if let Some(dir) = opts.session_dir {
            match crate::session::pending(&dir) {
                Some(n) => s.restore_offer = Some(n),
                None => s.session = Some(crate::session::SessionWriter::new(dir)),
            }
        }
        if let Some(p) = opts.open {
            s.open_path(&p);
        }
        s
    }
}

fn seed_from_clock() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1) | 1
}
