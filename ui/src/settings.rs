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
    /// Brush diameter in screen points, not image pixels: a brush looks the
    /// same at every zoom (a 24 px brush on a 12 MP photo fitted at 24% was a
    /// dot), and a stroke covers `brush_size / zoom` image pixels.
    pub brush_size: f32,
    /// The unit `brush_size` was saved in; files from before screen points
    /// lack it and read as image pixels (see [`Settings::load`]).
    #[serde(default = "BrushUnit::legacy")]
    pub brush_unit: BrushUnit,
    /// The mask overlay's colour.
    pub overlay_color: OverlayColor,
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
            brush_unit: BrushUnit::ScreenPoints,
            overlay_color: OverlayColor::Auto,
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
        let mut s: Self = std::fs::read_to_string(path).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
        s.upgrade();
        s
    }

    /// Brings settings saved by an older Studio to the current units: a
    /// brush saved in image pixels (any size, chosen for some zoom) is kept
    /// as screen points within a range that is usable at every zoom.
    pub fn upgrade(&mut self) {
        if self.brush_unit == BrushUnit::ImagePixels {
            self.brush_size = self.brush_size.clamp(4.0, 96.0).round();
            self.brush_unit = BrushUnit::ScreenPoints;
        }
    }

    /// Back to the generation settings of a fresh install, then the loaded
    /// model's own defaults (as when a model is first loaded).
    ///
    /// Kept: where things are (model folder, recent files, opened models,
    /// the server and its token, and whether to use it) and how the canvas
    /// looks (the overlay colour, the cells overlay): those are preferences
    /// about this machine and display, not how images are generated.
    /// Reset: steps, guidance, temperature, seed, variants, ML-Cache, grow,
    /// feather, context, brush size and the sketch size.
    pub fn reset_to_defaults(&mut self, model: Option<&unmask::engine::ModelInfo>) {
        let keep = self.clone();
        *self = Settings {
            model_dir: keep.model_dir,
            recent_files: keep.recent_files,
            opened_models: keep.opened_models,
            server_url: keep.server_url,
            server_token: keep.server_token,
            use_server: keep.use_server,
            overlay_color: keep.overlay_color,
            show_cells: keep.show_cells,
            ..Settings::default()
        };
        if let Some(info) = model {
            self.apply_model_defaults(info);
        }
    }

    /// The model's own defaults for the settings it names (its `unmask.json`).
    pub fn apply_model_defaults(&mut self, info: &unmask::engine::ModelInfo) {
        if let (Some(w), Some(h)) = (info.default_width, info.default_height) {
            (self.sketch_width, self.sketch_height) = (w, h);
        }
        if let Some(v) = info.default_steps {
            self.steps = v;
        }
        if let Some(v) = info.default_cfg {
            self.cfg = v;
        }
        if let Some(v) = info.default_temperature {
            self.temperature = v;
        }
        if let Some(v) = info.default_edit_cfg_img {
            self.cfg_img = v;
        }
    }

    /// The brush size after `steps` presses of `]` (positive) or `[`
    /// (negative): 25% a press, in whole points (a brush of 12.288 means
    /// nothing to a person), at least one point a press when growing.
    pub fn stepped_brush(size: f32, steps: i32) -> f32 {
        let mut b = size;
        for _ in 0..steps.unsigned_abs() {
            b = if steps > 0 { (b * 1.25).round().max(b + 1.0).min(1024.0) } else { (b / 1.25).round().max(1.0) };
        }
        b
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

/// The unit of [`Settings::brush_size`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BrushUnit {
    ImagePixels,
    ScreenPoints,
}

impl BrushUnit {
    /// What a settings file without the field meant.
    fn legacy() -> Self {
        BrushUnit::ImagePixels
    }
}

/// The mask overlay's colour: a fixed one, or `Auto`, the one of the fixed
/// colours whose hue is farthest from the image's mean hue (a pink-red
/// overlay all but disappears on an orange or red subject).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum OverlayColor {
    #[default]
    Auto,
    Red,
    Cyan,
    Green,
    Blue,
}

impl OverlayColor {
    /// The choices, in the order the picker shows them.
    pub const ALL: [OverlayColor; 5] = [OverlayColor::Auto, OverlayColor::Red, OverlayColor::Cyan, OverlayColor::Green, OverlayColor::Blue];
    const FIXED: [OverlayColor; 4] = [OverlayColor::Red, OverlayColor::Cyan, OverlayColor::Green, OverlayColor::Blue];

    pub fn name(self) -> &'static str {
        match self {
            OverlayColor::Auto => "auto",
            OverlayColor::Red => "red",
            OverlayColor::Cyan => "cyan",
            OverlayColor::Green => "green",
            OverlayColor::Blue => "blue",
        }
    }

    /// RGB of a fixed colour; `Auto` picks with [`OverlayColor::contrasting`].
    pub fn rgb(self) -> Option<[u8; 3]> {
        match self {
            OverlayColor::Auto => None,
            OverlayColor::Red => Some([255, 60, 60]),
            OverlayColor::Cyan => Some([0, 225, 255]),
            OverlayColor::Green => Some([40, 235, 70]),
            OverlayColor::Blue => Some([50, 100, 255]),
        }
    }

    fn hue(self) -> f32 {
        match self {
            OverlayColor::Red | OverlayColor::Auto => 0.0,
            OverlayColor::Green => 120.0,
            OverlayColor::Cyan => 185.0,
            OverlayColor::Blue => 225.0,
        }
    }

    /// The fixed colour farthest around the hue circle from `mean_hue`
    /// (degrees); red for an image with no clear hue (grey, or hues that
    /// cancel out), which it contrasts with anyway.
    pub fn contrasting(mean_hue: Option<f32>) -> OverlayColor {
        let Some(h) = mean_hue else { return OverlayColor::Red };
        let dist = |c: OverlayColor| {
            let d = (c.hue() - h).rem_euclid(360.0);
            d.min(360.0 - d)
        };
        Self::FIXED.into_iter().fold(OverlayColor::Red, |best, c| if dist(c) > dist(best) { c } else { best })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_overlay_avoids_the_image_hue() {
        assert_eq!(OverlayColor::contrasting(Some(20.0)), OverlayColor::Cyan, "orange subject");
        assert_eq!(OverlayColor::contrasting(Some(350.0)), OverlayColor::Cyan, "red subject");
        assert_eq!(OverlayColor::contrasting(Some(190.0)), OverlayColor::Red, "sky");
        assert_eq!(OverlayColor::contrasting(None), OverlayColor::Red, "grey");
    }

    #[test]
    fn old_files_keep_a_usable_brush() {
        let mut s: Settings = serde_json::from_str(r#"{"brush_size": 600.0}"#).unwrap();
        assert_eq!(s.brush_unit, BrushUnit::ImagePixels);
        s.upgrade();
        assert_eq!((s.brush_size, s.brush_unit), (96.0, BrushUnit::ScreenPoints));
        let fresh: Settings = serde_json::from_str(&serde_json::to_string(&Settings::default()).unwrap()).unwrap();
        assert_eq!(fresh.brush_unit, BrushUnit::ScreenPoints);
    }
}
