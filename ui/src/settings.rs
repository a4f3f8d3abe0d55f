//! Settings that persist between runs, as JSON in the user's config folder.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub steps: usize,
    pub cfg: f32,
    pub cfg_img: f32,
    pub temperature: f32,
    pub seed: u64,
    /// A new seed for every run (the one used is recorded with the version).
    pub random_seed: bool,
    pub variants: usize,
    pub cache: bool,
    pub cache_ratio: f64,
    pub warmup_ratio: f64,
    pub refresh_interval: usize,
    /// Feather band in pixels.
    pub feather: f32,
    /// Grow the region by this many cells.
    pub grow: usize,
    pub brush_size: f32,
    pub show_cells: bool,
    /// What the model sees around the mask (auto, a margin, the whole image).
    pub context: unmask::crop::Context,
    pub sketch_width: usize,
    pub sketch_height: usize,
    pub model_dir: Option<PathBuf>,
    pub recent_files: Vec<PathBuf>,
    /// Model folders loaded before, newest first (the model picker lists them).
    pub opened_models: Vec<PathBuf>,
    /// The last server of Model > Connect to server... and its token (this
    /// file is written owner-only for it).
    pub server_url: String,
    pub server_token: String,
    /// Jobs ran on that server when the Studio last closed: connect at start.
    pub use_server: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            steps: 16,
            cfg: 4.0,
            cfg_img: 4.0,
            temperature: 1.0,
            seed: 0,
            random_seed: true,
            variants: 1,
            cache: false,
            cache_ratio: 0.9,
            warmup_ratio: 0.3,
            refresh_interval: 5,
            feather: 8.0,
            grow: 0,
            brush_size: 24.0,
            show_cells: true,
            context: unmask::crop::Context::Auto,
            sketch_width: 256,
            sketch_height: 256,
            model_dir: None,
            recent_files: Vec::new(),
            opened_models: Vec::new(),
            server_url: "http://127.0.0.1:7860".into(),
            server_token: String::new(),
            use_server: false,
        }
    }
}

impl Settings {
    /// `$XDG_CONFIG_HOME/unmask/settings.json`, else `~/.config/unmask/settings.json`.
    pub fn default_path() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
        Some(base.join("unmask").join("settings.json"))
    }

    /// Missing or unreadable settings fall back to the defaults.
    pub fn load(path: &Path) -> Self {
        std::fs::read_to_string(path).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        let tmp = path.with_extension("json.tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        // it may hold a server token: readable by its owner only
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        std::io::Write::write_all(&mut o.open(&tmp)?, text.as_bytes())?;
        std::fs::rename(tmp, path)
    }

    pub fn add_opened_model(&mut self, p: &Path) {
        self.opened_models.retain(|r| r != p);
        self.opened_models.insert(0, p.to_path_buf());
        self.opened_models.truncate(10);
    }

    pub fn add_recent(&mut self, p: &Path) {
        self.recent_files.retain(|r| r != p);
        self.recent_files.insert(0, p.to_path_buf());
        self.recent_files.truncate(10);
    }
}
