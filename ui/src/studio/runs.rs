//! Runs: the current mode's job (retouch or edit, sketch, ask) submitted to
//! the worker as one job per variant, with the settings it runs with.

use std::time::{Duration, Instant};

use unmask::sampler::{CacheSettings, ImageSettings, TextSettings};
use unmask::tasks::{FitMode, Job};
use unmask::worker::PreviewOptions;

use super::{ChatTurn, Mode, NoticeKind, Run, RunKind, Studio};

impl Studio {
    /// Starts the current mode's job (Retouch, Sketch or Ask).
    pub fn start(&mut self) {
        match self.mode {
            Mode::Retouch => self.start_retouch(),
            Mode::Sketch => self.start_sketch(),
            Mode::Ask => self.start_ask(),
        }
    }

    /// Retouch: inpaint the masked region, or (no mask) edit by instruction.
    pub fn start_retouch(&mut self) {
        if !self.ready() {
            return;
        }
        let Some(doc) = self.doc.as_ref() else { return self.refuse("open an image first") };
        let edit = doc.mask_is_empty();
        let what = if edit { "type how the whole image should change (nothing is painted: an edit)" } else { "type what the painted area becomes" };
        if let Some(why) = unusable(&self.prompt, "prompt", what) {
            return self.refuse(&why);
        }
        let (image, mask, codes, content) = (doc.image().clone(), doc.mask.clone(), doc.version().codes.clone(), doc.version().content);
        let n = self.settings.variants.clamp(1, 8);
        let jobs = (0..n)
            .map(|i| {
                let settings = self.image_settings(edit, i);
                let seed = settings.seed;
                let job = if edit {
                    Job::Edit { instruction: self.prompt.clone(), image: image.clone(), fit: FitMode::Auto, settings }
                } else {
                    Job::Inpaint {
                        regions: vec![unmask::tasks::Region::new(mask.clone(), self.prompt.clone())],
                        image: image.clone(),
                        codes: codes.clone(),
                        grow: self.settings.grow,
                        // the Studio keeps the painted-area rule: every cell the brush touched
                        cover: Default::default(),
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
        if let Some(why) = unusable(&self.prompt, "prompt", "describe the image to sketch") {
            return self.refuse(&why);
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
        if let Some(why) = unusable(&q, "question", "type a question about the image") {
            return self.refuse(&why);
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

    /// Applies the settings a version was made with (its seed) for the next run.
    pub fn reuse_seed(&mut self, seed: u64) {
        self.settings.seed = seed;
        self.settings.random_seed = false;
    }

    /// A run refused before it started; the reason is in the title, the
    /// line always shown (not under "details").
    pub(crate) fn refuse(&mut self, why: &str) {
        self.notify_as(NoticeKind::Refused, None, &format!("Cannot run: {why}"), "", true);
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
        self.next_run += 1;
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
            failed: 0,
            serial: self.next_run,
        });
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
}

/// Why `text` cannot be run, in words that say what to type; `None` when it
/// has something the model can read. The engine refuses the same texts, but
/// only after a run is queued (and once per variant).
fn unusable(text: &str, name: &str, what: &str) -> Option<String> {
    if text.trim().is_empty() {
        Some(format!("the {name} is empty: {what}"))
    } else if !unmask::sampler::layout::has_printable(text) {
        Some(format!("the {name} has only spaces or invisible characters: {what}"))
    } else {
        None
    }
}
