//! The Studio's state and what the user can do with it. Every action is a
//! plain method (tests call them, and so do the widgets); the model runs on
//! the engine's worker thread, so nothing here waits on it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use image::RgbImage;
use unmask::engine::ModelInfo;
use unmask::sampler::{CacheSettings, ImageSettings, TextSettings};
use unmask::tasks::{FitMode, Job, Output};
use unmask::worker::{Event, JobId, PreviewOptions, Worker};
use unmask::DeviceChoice;

use crate::document::{Document, Version};
use crate::settings::Settings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Retouch,
    Sketch,
    Ask,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Brush,
    Eraser,
    Rectangle,
    Lasso,
}

#[derive(Debug, Clone)]
pub enum ModelStatus {
    None,
    Loading(PathBuf),
    Ready(Box<ModelInfo>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    Retouch,
    Edit,
    Sketch,
    Ask,
}

/// A run in progress (one or more variant jobs).
pub struct Run {
    pub kind: RunKind,
    pub jobs: Vec<(JobId, u64)>,
    pub finished: usize,
    pub step: usize,
    pub total: usize,
    pub started: Instant,
    /// Progress events seen (tests check streaming with it).
    pub progress_events: usize,
    pub preview: Option<RgbImage>,
    pub preview_revision: u64,
}

impl Run {
    /// Seconds left, from the pace so far.
    pub fn eta(&self) -> Option<f64> {
        let done = self.finished * self.total + self.step;
        let all = self.jobs.len() * self.total;
        (done > 0).then(|| self.started.elapsed().as_secs_f64() / done as f64 * (all - done) as f64)
    }
}

pub struct ChatTurn {
    pub question: String,
    pub answer: String,
    pub done: bool,
}

/// A message for the user; `detail` is shown on demand.
#[derive(Debug, Clone)]
pub struct Notice {
    pub title: String,
    pub detail: String,
    pub is_error: bool,
}

pub struct StudioOptions {
    /// Where settings persist; `None` keeps them in memory only.
    pub settings_path: Option<PathBuf>,
    /// Model folder to load at start (else the saved one, else the embedded model).
    pub model_dir: Option<PathBuf>,
    /// Image to open at start.
    pub open: Option<PathBuf>,
    /// Repainted when the worker has news.
    pub ctx: Option<egui::Context>,
}

pub struct Studio {
    pub settings: Settings,
    settings_path: Option<PathBuf>,
    saved_settings: Settings,
    worker: Worker,
    pub model: ModelStatus,
    pub doc: Option<Document>,
    pub mode: Mode,
    pub tool: Tool,
    pub prompt: String,
    pub question: String,
    pub chat: Vec<ChatTurn>,
    pub run: Option<Run>,
    /// Finished variants waiting for the user's pick.
    pub variants: Vec<Version>,
    pub notices: Vec<Notice>,
    /// Set while the user holds the compare key.
    pub comparing: bool,
    /// The close was stopped to ask about unsaved changes.
    pub confirm_close: bool,
    pub allow_close: bool,
    pub(crate) view: crate::canvas::View,
    pub(crate) thumbs: crate::canvas::Thumbnails,
    next_seed: u64,
    /// Text guidance of edits: the release's 2.5 unless the model says otherwise.
    edit_cfg: f32,
}

impl Studio {
    pub fn new(opts: StudioOptions) -> Self {
        let settings = opts.settings_path.as_deref().map(Settings::load).unwrap_or_default();
        let worker = match opts.ctx {
            Some(ctx) => Worker::spawn_with_notify(Arc::new(move || ctx.request_repaint())),
            None => Worker::spawn(),
        };
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
            question: String::new(),
            chat: Vec::new(),
            run: None,
            variants: Vec::new(),
            notices: Vec::new(),
            comparing: false,
            confirm_close: false,
            allow_close: false,
            view: Default::default(),
            thumbs: Default::default(),
            next_seed: seed_from_clock(),
            edit_cfg: 2.5,
        };
        let model = opts
            .model_dir
            .or_else(|| s.settings.model_dir.clone().filter(|p| p.join("config.json").is_file()))
            .or_else(unmask::bundle::default_model_dir);
        match model {
            Some(dir) => s.load_model(&dir),
            None => s.notify("No model found", "Open a Lumina-DiMOO model folder with Model > Open model folder...", false),
        }
        if let Some(p) = opts.open {
            s.open_path(&p);
        }
        s
    }

    pub fn notify(&mut self, title: &str, detail: &str, is_error: bool) {
        self.notices.push(Notice { title: title.into(), detail: detail.into(), is_error });
    }

    pub fn load_model(&mut self, dir: &Path) {
        self.model = ModelStatus::Loading(dir.to_path_buf());
        self.worker.load(dir, DeviceChoice::Auto);
    }

    pub fn model_info(&self) -> Option<&ModelInfo> {
        match &self.model {
            ModelStatus::Ready(i) => Some(i),
            _ => None,
        }
    }

    pub fn is_running(&self) -> bool {
        self.run.is_some()
    }

    /// Opens an image file as a new document. On failure the current canvas
    /// stays as it is and the error is shown.
    pub fn open_path(&mut self, path: &Path) {
        match unmask::image_io::open_rgb(path) {
            Ok(img) => self.open_image(img, Some(path.to_path_buf())),
            Err(e) => self.notify("Could not open the image", &e.to_string(), true),
        }
    }

    pub fn open_bytes(&mut self, bytes: &[u8], name: &Path) {
        match unmask::image_io::decode_bytes(bytes, name) {
            Ok(img) => self.open_image(unmask::image_io::to_rgb_on_white(&img), Some(name.to_path_buf())),
            Err(e) => self.notify("Could not open the image", &e.to_string(), true),
        }
    }

    fn open_image(&mut self, img: RgbImage, path: Option<PathBuf>) {
        if let Some(p) = &path {
            self.settings.add_recent(p);
        }
        let label = path.as_ref().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or("image".into());
        // a brush wider than a quarter of the image is never what one wants
        let short = img.width().min(img.height()) as f32;
        if self.settings.brush_size > short / 4.0 {
            self.settings.brush_size = (short / 8.0).max(1.0);
        }
        // the previous document is only replaced once the new one decoded
        self.doc = Some(Document::new(img, path, &label));
        self.variants.clear();
        // textures are keyed by buffer address, which a new document may reuse
        self.view = Default::default();
        self.thumbs = Default::default();
    }

    /// Saves the current version as PNG with its `parameters` chunk.
    pub fn save_to(&mut self, path: &Path) -> bool {
        let Some(doc) = self.doc.as_mut() else { return false };
        let v = doc.version();
        match unmask::image_io::save_png(path, &v.image, v.parameters.as_deref()) {
            Ok(()) => {
                doc.dirty = false;
                doc.path = Some(path.to_path_buf());
                self.settings.add_recent(path);
                true
            }
            Err(e) => {
                self.notify("Could not save", &e.to_string(), true);
                false
            }
        }
    }

    fn image_settings(&mut self, edit: bool, variant: usize) -> ImageSettings {
        let s = &self.settings;
        let seed = if s.random_seed {
            self.next_seed = self.next_seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            self.next_seed >> 33
        } else {
            s.seed + variant as u64
        };
        ImageSettings {
            steps: s.steps,
            cfg: if edit { s.cfg.min(self.edit_cfg) } else { s.cfg },
            cfg_img: if edit { s.cfg_img } else { 0.0 },
            temperature: s.temperature,
            seed,
            cache: s.cache.then_some(CacheSettings {
                ratio: s.cache_ratio,
                warmup_ratio: s.warmup_ratio,
                refresh_interval: s.refresh_interval,
            }),
        }
    }

    /// Starts the current mode's job (Retouch, Sketch or Ask).
    pub fn start(&mut self) {
        match self.mode {
            Mode::Retouch => self.start_retouch(),
            Mode::Sketch => self.start_sketch(),
            Mode::Ask => self.start_ask(),
        }
    }

    fn refuse(&mut self, why: &str) {
        self.notify("Cannot run", why, true);
    }

    fn ready(&mut self) -> bool {
        if self.run.is_some() {
            self.refuse("a run is in progress: wait for it or cancel it");
            return false;
        }
        if self.model_info().is_none() {
            self.refuse("no model is loaded: use Model > Open model folder...");
            return false;
        }
        true
    }

    fn submit(&mut self, kind: RunKind, jobs: Vec<(Job, u64)>, total: usize) {
        let preview = PreviewOptions { every: Some(Duration::from_millis(120)), ..Default::default() };
        let ids = jobs.into_iter().map(|(j, seed)| (self.worker.submit(j, preview), seed)).collect();
        self.run = Some(Run {
            kind,
            jobs: ids,
            finished: 0,
            step: 0,
            total,
            started: Instant::now(),
            progress_events: 0,
            preview: None,
            preview_revision: 0,
        });
    }

    /// Retouch: inpaint the masked region, or (no mask) edit by instruction.
    pub fn start_retouch(&mut self) {
        if !self.ready() {
            return;
        }
        let Some(doc) = self.doc.as_ref() else { return self.refuse("open an image first") };
        if self.prompt.trim().is_empty() {
            return self.refuse("type what the region should become");
        }
        let (image, mask, codes) = (doc.image().clone(), doc.mask.clone(), doc.version().codes.clone());
        let edit = doc.mask_is_empty();
        let n = self.settings.variants.clamp(1, 8);
        let jobs = (0..n)
            .map(|i| {
                let settings = self.image_settings(edit, i);
                let seed = settings.seed;
                let job = if edit {
                    Job::Edit { instruction: self.prompt.clone(), image: image.clone(), fit: FitMode::Auto, settings }
                } else {
                    Job::Inpaint {
                        prompt: self.prompt.clone(),
                        image: image.clone(),
                        mask: mask.clone(),
                        codes: codes.clone(),
                        grow: self.settings.grow,
                        feather: self.settings.feather,
                        settings,
                    }
                };
                (job, seed)
            })
            .collect();
        let steps = self.settings.steps;
        self.submit(if edit { RunKind::Edit } else { RunKind::Retouch }, jobs, steps);
    }

    pub fn start_sketch(&mut self) {
        if !self.ready() {
            return;
        }
        if self.prompt.trim().is_empty() {
            return self.refuse("type what to sketch");
        }
        let (w, h) = self.sketch_size();
        let n = self.settings.variants.clamp(1, 8);
        let jobs = (0..n)
            .map(|i| {
                let settings = self.image_settings(false, i);
                let seed = settings.seed;
                (Job::Generate { prompt: self.prompt.clone(), width: w, height: h, settings }, seed)
            })
            .collect();
        let steps = self.settings.steps;
        self.submit(RunKind::Sketch, jobs, steps);
    }

    /// The sketch size rounded to the model's VQ factor.
    pub fn sketch_size(&self) -> (usize, usize) {
        let f = self.model_info().map(|i| i.vq_factor).unwrap_or(16);
        let r = |v: usize| (v.max(f) / f) * f;
        (r(self.settings.sketch_width), r(self.settings.sketch_height))
    }

    pub fn start_ask(&mut self) {
        if !self.ready() {
            return;
        }
        let Some(doc) = self.doc.as_ref() else { return self.refuse("open an image to ask about") };
        let q = self.question.trim().to_string();
        if q.is_empty() {
            return self.refuse("type a question");
        }
        let job = Job::Ask {
            question: q.clone(),
            image: doc.image().clone(),
            fit: FitMode::Auto,
            gen_length: 32,
            settings: TextSettings { steps: 16, block_length: 16, temperature: 0.0, seed: 0 },
        };
        self.chat.push(ChatTurn { question: q, answer: String::new(), done: false });
        self.question.clear();
        self.submit(RunKind::Ask, vec![(job, 0)], 16);
    }

    pub fn cancel(&mut self) {
        if let Some(run) = &self.run {
            for (id, _) in &run.jobs {
                self.worker.cancel(*id);
            }
        }
    }

    pub fn undo(&mut self) {
        if let Some(d) = self.doc.as_mut() {
            d.undo();
        }
    }

    pub fn redo(&mut self) {
        if let Some(d) = self.doc.as_mut() {
            d.redo();
        }
    }

    /// Applies a finished variant as a new version.
    pub fn pick_variant(&mut self, i: usize) {
        if i < self.variants.len() {
            let v = self.variants.remove(i);
            self.add_result(v);
            self.variants.clear();
        }
    }

    fn add_result(&mut self, v: Version) {
        match self.doc.as_mut() {
            Some(d) => d.add_version(v),
            None => {
                let mut d = Document::new(v.image.clone(), None, "sketch");
                d.versions[0] = v;
                d.dirty = true;
                self.doc = Some(d);
                self.view.fit_pending = true;
            }
        }
    }

    /// Applies the settings a version was made with (its seed) for the next run.
    pub fn reuse_seed(&mut self, seed: u64) {
        self.settings.seed = seed;
        self.settings.random_seed = false;
    }

    fn apply_model_defaults(&mut self, info: &ModelInfo) {
        let s = &mut self.settings;
        if let (Some(w), Some(h)) = (info.default_width, info.default_height) {
            (s.sketch_width, s.sketch_height) = (w, h);
        }
        if let Some(v) = info.default_steps {
            s.steps = v;
        }
        if let Some(v) = info.default_cfg {
            s.cfg = v;
        }
        if let Some(v) = info.default_temperature {
            s.temperature = v;
        }
        if let Some(v) = info.default_edit_cfg_img {
            s.cfg_img = v;
        }
        self.edit_cfg = info.default_edit_cfg.unwrap_or(2.5);
    }

    /// Drains the worker's events into the state. Call once per frame.
    pub fn poll(&mut self) {
        while let Some(e) = self.worker.try_recv() {
            self.handle(e);
        }
        self.persist_settings();
    }

    fn handle(&mut self, e: Event) {
        match e {
            Event::Loading { path } => self.model = ModelStatus::Loading(path),
            Event::Loaded(info) => {
                // a different model brings its own defaults; the same one keeps the user's settings
                let path = PathBuf::from(&info.path);
                if self.settings.model_dir.as_ref() != Some(&path) {
                    self.apply_model_defaults(&info);
                }
                self.settings.model_dir = Some(path);
                self.model = ModelStatus::Ready(info);
            }
            Event::LoadFailed { path, message } => {
                // a model that was loaded stays loaded in the worker
                if matches!(self.model, ModelStatus::Loading(_)) {
                    self.model = ModelStatus::None;
                }
                self.notify(&format!("Not a usable model folder: {}", path.display()), &message, true);
            }
            Event::Started { .. } => {}
            Event::Progress { id, step, total, preview, .. } => {
                if let Some(run) = self.run.as_mut().filter(|r| r.jobs.iter().any(|j| j.0 == id)) {
                    run.step = step + 1;
                    run.total = total;
                    run.progress_events += 1;
                    if let Some(p) = preview {
                        run.preview = Some(p);
                        run.preview_revision += 1;
                    }
                }
            }
            Event::Answer { text, .. } => {
                if let Some(t) = self.chat.last_mut() {
                    t.answer = text;
                }
                if let Some(run) = self.run.as_mut() {
                    run.step += 1;
                    run.progress_events += 1;
                }
            }
            Event::Finished { id, output, .. } => self.finish(id, *output),
            Event::Failed { id, message } => {
                self.end_job(id);
                self.notify("The run failed", &message, true);
            }
            Event::Cancelled { id } => {
                self.end_job(id);
                if self.run.is_none() {
                    self.notify("Cancelled", "the canvas is as it was before the run", false);
                }
            }
        }
    }

    /// Counts a job as done; ends the run after its last job.
    fn end_job(&mut self, id: JobId) {
        let Some(run) = self.run.as_mut() else { return };
        if !run.jobs.iter().any(|j| j.0 == id) {
            return;
        }
        run.finished += 1;
        run.step = 0;
        if run.finished >= run.jobs.len() {
            let kind = run.kind;
            self.run = None;
            if kind == RunKind::Ask {
                if let Some(t) = self.chat.last_mut() {
                    t.done = true;
                }
            }
            // a single result is applied at once; several wait for a pick
            if self.variants.len() == 1 {
                self.pick_variant(0);
            }
        }
    }

    fn finish(&mut self, id: JobId, output: Output) {
        let seed = self.run.as_ref().and_then(|r| r.jobs.iter().find(|j| j.0 == id)).map(|j| j.1);
        match output {
            Output::Image { image, codes, parameters } => {
                let label = match self.run.as_ref().map(|r| r.kind) {
                    Some(RunKind::Sketch) => "sketch",
                    Some(RunKind::Edit) => "edit",
                    _ => "retouch",
                };
                self.variants.push(Version {
                    image,
                    codes: Some(codes),
                    label: format!("{label} #{}", seed.unwrap_or(0)),
                    parameters: Some(parameters),
                    seed,
                });
            }
            Output::Answer { text, .. } => {
                if let Some(t) = self.chat.last_mut() {
                    t.answer = text;
                    t.done = true;
                }
            }
        }
        self.end_job(id);
    }

    /// Writes settings when they changed (cheap compare, once per frame).
    fn persist_settings(&mut self) {
        if self.settings != self.saved_settings {
            if let Some(p) = &self.settings_path {
                let _ = self.settings.save(p);
            }
            self.saved_settings = self.settings.clone();
        }
    }

    pub fn has_unsaved_changes(&self) -> bool {
        self.doc.as_ref().is_some_and(|d| d.dirty)
    }

    /// Waits (for tests and scripts) until no run is in progress or `timeout` passes.
    pub fn wait_idle(&mut self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Ok(e) = self.worker.events().recv_timeout(Duration::from_millis(20)) {
                self.handle(e);
            }
            if self.run.is_none() && !matches!(self.model, ModelStatus::Loading(_)) {
                return true;
            }
        }
        false
    }
}

fn seed_from_clock() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1) | 1
}

impl Studio {
    /// Screen position of an image pixel on the canvas (as last drawn).
    pub fn view_to_screen(&self, p: (f32, f32)) -> egui::Pos2 {
        self.view.to_screen(p)
    }

    /// Number of token cells the overlay shows as regenerating.
    pub fn cell_overlay_count(&self) -> usize {
        self.view.cells.as_ref().map_or(0, |c| c.1.len())
    }
}
