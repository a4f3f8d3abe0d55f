//! The Studio's state and what the user can do with it. Every action is a
//! plain method (tests call them, and so do the widgets); the model runs on
//! the engine's worker thread, so nothing here waits on it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use image::{GrayImage, RgbImage};
use unmask::crop::Rect;
use unmask::engine::ModelInfo;
use unmask::sampler::{CacheSettings, ImageSettings, TextSettings};
use unmask::tasks::{FitMode, Job, Output};
use unmask::worker::{Event, JobId, PreviewOptions};
use unmask::DeviceChoice;

use crate::backend::Backend;
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
    /// The latest preview: the whole result, or (inpainting) one crop at
    /// working size with the document box it is drawn into.
    pub preview: Option<RgbImage>,
    pub preview_at: Option<Rect>,
    /// With `preview_at`: the crop's regenerated cells (only they are drawn).
    pub preview_region: Option<GrayImage>,
    /// Finished crops' last previews, kept on the canvas while later crops run.
    pub done_crops: Vec<(Rect, RgbImage, Option<GrayImage>)>,
    pub preview_revision: u64,
    /// The document the run belongs to (its result goes there).
    pub doc_id: Option<u64>,
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
    /// The run ended (answered, failed or cancelled)
    pub done: bool,
    /// The model's answer arrived (it may be empty)
    pub answered: bool,
}

impl ChatTurn {
    /// What the Ask panel shows after "A:".
    pub fn shown_answer(&self) -> String {
        if !self.done {
            if self.answer.is_empty() { "...".into() } else { self.answer.replace('\u{FFFD}', "?") }
        } else if !self.answered {
            "(no answer: the run did not finish)".into()
        } else if self.answer.trim().is_empty() {
            // a question form the model never learnt; say so rather than show nothing
            "(no answer: the model may not know this kind of question; its model card lists the ones it does)".into()
        } else {
            // model text can hold undecodable bytes; show them as '?'
            self.answer.replace('\u{FFFD}', "?")
        }
    }
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
    /// Where the session is kept for crash recovery; `None` keeps nothing.
    pub session_dir: Option<PathBuf>,
}

pub struct Studio {
    pub settings: Settings,
    settings_path: Option<PathBuf>,
    saved_settings: Settings,
    worker: Backend,
    pub model: ModelStatus,
    pub doc: Option<Document>,
    pub mode: Mode,
    pub tool: Tool,
    pub prompt: String,
    pub question: String,
    pub chat: Vec<ChatTurn>,
    pub run: Option<Run>,
    /// Finished variants waiting for the user's pick, and their document.
    pub variants: Vec<Version>,
    variants_doc: Option<u64>,
    /// Open documents other than `doc` (tabs).
    pub background: Vec<Document>,
    pub notices: Vec<Notice>,
    /// Set while the user holds the compare key.
    pub comparing: bool,
    /// The close was stopped to ask about unsaved changes.
    pub confirm_close: bool,
    pub allow_close: bool,
    pub(crate) view: crate::canvas::View,
    pub(crate) thumbs: crate::canvas::Thumbnails,
    next_seed: u64,
    session: Option<crate::session::SessionWriter>,
    session_dir: Option<PathBuf>,
    /// A session that did not close cleanly was found: (documents in it); the
    /// user is asked to restore or discard it before anything is saved over it.
    pub restore_offer: Option<usize>,
    /// Borders of the Extend canvas panel (left, right, top, bottom).
    pub extend_by: [u32; 4],
    /// Text guidance of edits: the release's 2.5 unless the model says otherwise.
    edit_cfg: f32,
    /// The model download (Model > Download Lumina-DiMOO...), running or just ended.
    pub download: Option<crate::models::Download>,
    /// The download dialog is open.
    pub download_open: bool,
    /// The model picker's list, read when first shown (and after a download or load).
    pub known_models: Option<Vec<crate::models::Known>>,
    /// Model > Connect to server... is open; what its fields hold.
    pub connect_open: bool,
    pub connect_url: String,
    pub connect_token: String,
    repaint: Option<Arc<dyn Fn() + Send + Sync>>,
}

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
            question: String::new(),
            chat: Vec::new(),
            run: None,
            variants: Vec::new(),
            variants_doc: None,
            background: Vec::new(),
            notices: Vec::new(),
            comparing: false,
            confirm_close: false,
            allow_close: false,
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

    /// Brings back the documents of a session that did not close cleanly;
    /// the ones open now stay open beside them.
    pub fn restore_session(&mut self) {
        let Some(dir) = self.session_dir.clone() else { return };
        self.restore_offer = None;
        let (docs, problems) = crate::session::restore(&dir);
        let n = docs.len();
        for d in docs {
            self.push_document(d);
        }
        if !problems.is_empty() {
            self.notify("Part of the last session could not be restored", &problems.join("\n"), true);
        } else {
            self.notify(&format!("Restored {n} document(s) from the last session"), &dir.display().to_string(), false);
        }
        self.session = Some(crate::session::SessionWriter::new(dir));
        self.save_session();
    }

    /// Drops the session that did not close cleanly.
    pub fn discard_session(&mut self) {
        let Some(dir) = self.session_dir.clone() else { return };
        self.restore_offer = None;
        let _ = std::fs::remove_dir_all(&dir);
        self.session = Some(crate::session::SessionWriter::new(dir));
    }

    /// Queues a save of every open document when something changed.
    pub fn save_session(&mut self) {
        let Some(w) = self.session.as_mut() else { return };
        // a document with nothing done to it is not worth offering back
        let docs: Vec<&Document> =
            self.background.iter().chain(self.doc.as_ref()).filter(|d| d.dirty || d.versions.len() > 1 || !d.mask_is_empty()).collect();
        w.save(&docs);
        let failed = w.error.lock().ok().and_then(|mut e| e.take());
        if let Some(e) = failed {
            self.notify("Could not keep the session on disk (crash recovery is off)", &e, true);
        }
    }

    /// Waits until the session on disk is up to date (tests, scripts).
    pub fn flush_session(&mut self) -> bool {
        self.save_session();
        self.session.as_ref().is_none_or(|w| w.flush(Duration::from_secs(30)))
    }

    /// A clean exit: the session is not offered back next time.
    pub fn end_session(&mut self) {
        if let Some(w) = self.session.take() {
            w.end();
        }
    }

    pub fn notify(&mut self, title: &str, detail: &str, is_error: bool) {
        self.notices.push(Notice { title: title.into(), detail: detail.into(), is_error });
    }

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

    /// The server jobs run on, if any (the status bar shows it).
    pub fn server(&self) -> Option<&str> {
        self.worker.server()
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
        // an unchanged document is replaced; one with work waits in its tab
        let keep = self.doc.as_ref().is_some_and(|d| d.dirty || d.versions.len() > 1);
        if !keep {
            self.doc = None;
        }
        self.push_document(Document::new(img, path, &label));
        if self.run.is_none() {
            self.variants.clear();
        }
    }

    /// Saves the current version as PNG with its `parameters` chunk.
    pub fn save_to(&mut self, path: &Path) -> bool {
        let Some(doc) = self.doc.as_mut() else { return false };
        let v = doc.version();
        // the same all-or-nothing write as the CLI: never over a device or link
        let written = unmask::output::check_target(path, "image", &["png"])
            .and_then(|_| unmask::image_io::png_bytes(&v.image, v.parameters.as_deref()))
            .and_then(|bytes| unmask::output::write_all(&[(path, &bytes)]));
        match written {
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
            preview_at: None,
            preview_region: None,
            done_crops: Vec::new(),
            preview_revision: 0,
            doc_id: if kind == RunKind::Sketch { None } else { self.doc.as_ref().map(|d| d.id) },
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
        let (image, mask, codes, content) = (doc.image().clone(), doc.mask.clone(), doc.version().codes.clone(), doc.version().content);
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
                        context: self.settings.context,
                        content,
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
        // the bundle's answer length (the embedded model answers in 8), else 32
        let gen_length = self.model_info().and_then(|i| i.default_gen_length).unwrap_or(32).clamp(1, 512);
        let block_length = gen_length.min(32);
        let job = Job::Ask {
            question: q.clone(),
            image: doc.image().clone(),
            fit: FitMode::Auto,
            gen_length,
            // the text cache: on the embedded model's eval (200 questions) it
            // answered 96.0% right vs 93.5% without, 1.56x faster (issue 17)
            settings: TextSettings { steps: gen_length, block_length, temperature: 0.0, seed: 0, cache: true },
        };
        self.chat.push(ChatTurn { question: q, answer: String::new(), done: false, answered: false });
        self.question.clear();
        self.submit(RunKind::Ask, vec![(job, 0)], gen_length);
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

    /// Applies a finished variant: a new version of the document the run
    /// belongs to, or (a sketch) a document of its own.
    pub fn pick_variant(&mut self, i: usize) {
        if i < self.variants.len() {
            let v = self.variants.remove(i);
            let target = self.variants_doc.take();
            self.add_result(v, target);
            self.variants.clear();
        }
    }

    fn add_result(&mut self, v: Version, doc_id: Option<u64>) {
        let target = doc_id.and_then(|id| self.doc.iter_mut().chain(self.background.iter_mut()).find(|d| d.id == id));
        match target {
            Some(d) => d.add_version(v),
            // a sketch opens as its own document (the open one waits in its
            // tab), and so does a result whose document was closed meanwhile
            None => {
                let label = if doc_id.is_none() { "sketch" } else { "result" };
                let mut d = Document::new(v.image.clone(), None, label);
                d.versions[0] = v;
                d.dirty = true;
                self.push_document(d);
            }
        }
    }

    /// Makes `d` the open document; the one open before waits in its tab.
    fn push_document(&mut self, d: Document) {
        if let Some(old) = self.doc.take() {
            self.background.push(old);
        }
        self.doc = Some(d);
        self.reset_view();
    }

    /// Switches to the document in tab `i` of [`Studio::tabs`].
    pub fn switch_to(&mut self, id: u64) {
        if self.doc.as_ref().is_some_and(|d| d.id == id) {
            return;
        }
        let Some(i) = self.background.iter().position(|d| d.id == id) else { return };
        let d = self.background.remove(i);
        self.push_document(d);
        // keep tabs in opening order
        self.background.sort_by_key(|d| d.id);
    }

    /// Closes a background document (asks nothing: the tab's close button is
    /// only offered for saved documents).
    pub fn close_background(&mut self, id: u64) {
        self.background.retain(|d| d.id != id || d.dirty);
    }

    /// Every open document as (id, label, dirty, is current), in opening order.
    pub fn tabs(&self) -> Vec<(u64, String, bool, bool)> {
        let mut t: Vec<_> = self.background.iter().map(|d| (d.id, d.title(), d.dirty, false)).collect();
        if let Some(d) = &self.doc {
            t.push((d.id, d.title(), d.dirty, true));
        }
        t.sort_by_key(|x| x.0);
        t
    }

    fn reset_view(&mut self) {
        // textures are keyed by buffer address, which a new document may reuse
        self.view = Default::default();
        self.thumbs = Default::default();
    }

    /// Extends the canvas of the open document by the given borders; the new
    /// border becomes the mask, for the next retouch to fill.
    pub fn extend_canvas(&mut self, left: u32, right: u32, top: u32, bottom: u32) {
        if self.run.is_some() {
            return self.refuse("a run is in progress: wait for it or cancel it");
        }
        let Some(doc) = self.doc.as_mut() else { return self.refuse("open an image first") };
        match doc.extend(left, right, top, bottom) {
            Ok(()) => {
                self.view.fit_pending = true;
                self.mode = Mode::Retouch;
            }
            Err(e) => self.notify("Cannot extend the canvas", &e.to_string(), true),
        }
    }

    /// Borders that bring the open image to aspect `w:h`, added evenly on
    /// the two sides that grow.
    pub fn extend_to_aspect(&mut self, aw: u32, ah: u32) {
        let Some((w, h)) = self.doc.as_ref().map(|d| d.size()) else { return };
        let (l, r, t, b) = aspect_borders(w, h, aw, ah);
        if l + r + t + b == 0 {
            return self.notify("Already at that aspect", &format!("the image is {w}x{h}"), false);
        }
        self.extend_canvas(l, r, t, b);
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

    /// Starts downloading a bundle (the dialog's Start / Resume); one at a time.
    pub fn start_download(&mut self, req: unmask::hub::Request) {
        if self.download.as_ref().is_some_and(|d| d.running()) {
            return;
        }
        self.download = Some(crate::models::Download::start(req, self.repaint.clone()));
    }

    /// Drains the worker's events into the state. Call once per frame.
    pub fn poll(&mut self) {
        while let Some(e) = self.worker.try_recv() {
            self.handle(e);
        }
        if let Some(dir) = self.download.as_mut().and_then(|d| d.poll()) {
            self.notify("Model downloaded", &format!("{} is complete and verified; loading it", dir.display()), false);
            self.known_models = None;
            self.load_model(&dir);
        }
        self.persist_settings();
        // never mid-stroke: each segment changes the mask
        if !self.view.stroke_active() {
            self.save_session();
        }
    }

    fn handle(&mut self, e: Event) {
        match e {
            Event::Loading { path } => self.model = ModelStatus::Loading(path),
            Event::Loaded(info) if self.worker.server().is_some() => {
                // a server's model: no folder here to remember
                if self.model_info().is_none_or(|m| m.name != info.name) {
                    self.apply_model_defaults(&info);
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
                    self.apply_model_defaults(&info);
                }
                self.settings.add_opened_model(&path);
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
            Event::Started { .. } => {}
            Event::Progress { id, step, total, preview, preview_at, preview_region, .. } => {
                if let Some(run) = self.run.as_mut().filter(|r| r.jobs.iter().any(|j| j.0 == id)) {
                    run.step = step + 1;
                    run.total = total;
                    run.progress_events += 1;
                    if let Some(p) = preview {
                        // a preview of another crop: the last one of the crop before stays up
                        if let (Some(old_at), Some(old)) = (run.preview_at, run.preview.take()) {
                            if Some(old_at) != preview_at {
                                run.done_crops.retain(|(r, ..)| *r != old_at);
                                run.done_crops.push((old_at, old, run.preview_region.take()));
                            }
                        }
                        run.preview = Some(p);
                        run.preview_at = preview_at;
                        run.preview_region = preview_region;
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
            Output::Image { image, codes, parameters, .. } => {
                let label = match self.run.as_ref().map(|r| r.kind) {
                    Some(RunKind::Sketch) => "sketch",
                    Some(RunKind::Edit) => "edit",
                    _ => "retouch",
                };
                self.variants_doc = self.run.as_ref().and_then(|r| r.doc_id);
                self.variants.push(Version {
                    image,
                    codes,
                    label: format!("{label} #{}", seed.unwrap_or(0)),
                    parameters: Some(parameters),
                    seed,
                    content: None,
                });
            }
            Output::Answer { text, .. } => {
                if let Some(t) = self.chat.last_mut() {
                    t.answer = text;
                    t.done = true;
                    t.answered = true;
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
        self.doc.as_ref().is_some_and(|d| d.dirty) || self.background.iter().any(|d| d.dirty)
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

    /// What the model will work at (the status bar): the crops of the
    /// current mask, or for a whole-image edit the bucket and its scale.
    pub fn working_text(&mut self) -> Option<String> {
        let info = self.model_info()?.clone();
        let doc = self.doc.as_ref()?;
        let (w, h) = doc.size();
        if self.mode != Mode::Retouch {
            return None;
        }
        if doc.mask_is_empty() {
            // an edit works at the model's bucket and is scaled back to the document
            let bucket = unmask::tasks::bucket(&info, unmask::tasks::EDIT_AREA);
            let (bw, bh) = unmask::tasks::fit_size(w as usize, h as usize, FitMode::Auto, info.vq_factor, bucket).ok()?;
            return Some(if (bw as u32, bh as u32) == (w, h) {
                format!("edit works at {w}x{h} (scale 1)")
            } else {
                format!("edit works at {bw}x{bh} (scale {:.2}), result scaled to {w}x{h}", bw as f64 / w as f64)
            });
        }
        self.refresh_plan();
        let crops = &self.view.crops;
        let first = crops.first()?;
        let more = if crops.len() > 1 { format!(" (+{} more crops)", crops.len() - 1) } else { String::new() };
        Some(format!("works at {}x{} (scale {:.2}){more}", first.work_w, first.work_h, first.scale()))
    }

    /// The context crops the canvas shows for the current mask.
    pub fn planned_crops(&mut self) -> Vec<unmask::crop::Crop> {
        self.refresh_plan();
        self.view.crops.clone()
    }

    /// Sets the zoom (screen points per image pixel) around the canvas centre.
    pub fn set_zoom(&mut self, scale: f32) {
        let c = self.view.rect.center();
        self.view.zoom_at(scale / self.view.scale.max(1e-6), c);
    }

    /// Whether the canvas image is drawn with sharp (nearest) filtering, as
    /// last uploaded; `None` before the first frame.
    pub fn canvas_filter_is_sharp(&self) -> Option<bool> {
        self.view.image_filter_sharp()
    }

    /// Number of token cells the overlay shows as regenerating.
    pub fn cell_overlay_count(&self) -> usize {
        self.view.cells.as_ref().map_or(0, |c| c.1.len())
    }
}

/// Borders (left, right, top, bottom) that bring `w x h` to aspect `aw:ah`
/// by growing one dimension, split evenly.
pub fn aspect_borders(w: u32, h: u32, aw: u32, ah: u32) -> (u32, u32, u32, u32) {
    let (w64, h64, aw, ah) = (w as u64, h as u64, aw.max(1) as u64, ah.max(1) as u64);
    if w64 * ah < h64 * aw {
        // too narrow: widen
        let nw = (h64 * aw).div_ceil(ah);
        let add = (nw - w64) as u32;
        (add / 2, add - add / 2, 0, 0)
    } else {
        let nh = (w64 * ah).div_ceil(aw);
        let add = (nh - h64) as u32;
        (0, 0, add / 2, add - add / 2)
    }
}
