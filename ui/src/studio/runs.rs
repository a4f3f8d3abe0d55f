//! Runs: the current mode's job (retouch or edit, sketch, ask) submitted to
//! the worker as one job per variant, with the settings it runs with.

use std::time::{Duration, Instant};

use unmask::sampler::{CacheSettings, ImageSettings, TextSettings};
use unmask::tasks::{FitMode, Job};
use unmask::worker::PreviewOptions;

use super::{ChatTurn, Mode, Run, RunKind, Studio};

impl Studio {
    /// Starts the current mode's job (Retouch, Sketch or Ask).
    pub fn start(&mut self) {
        match self.mode {
            Mode::Retouch => self.start_retouch(),
            Mode::Sketch => self.start_sketch(),
            Mode::Ask => self.start_ask(),
        }
    }

    /// Retouch: inpaint every painted region (each with its own prompt, in
    /// the list's order, in one job per variant), or (nothing painted) edit
    /// the whole image by the selected region's prompt.
    pub fn start_retouch(&mut self) {
        if !self.ready() {
            return;
        }
        self.flush_prompt();
        let Some(doc) = self.doc.as_ref() else { return self.refuse("open an image first") };
        let edit = doc.mask_is_empty();
        let (image, codes, content) = (doc.image().clone(), doc.version().codes.clone(), doc.version().content);
        let regions = if edit {
            let what = "type how the whole image should change (nothing is painted: an edit)";
            if let Some(why) = unusable(&self.prompt, "prompt", what) {
                return self.refuse(&why);
            }
            Vec::new()
        } else {
            match run_regions(doc) {
                Ok(r) => r,
                Err(why) => return self.refuse(&why),
            }
        };
        let n = self.settings.variants.clamp(1, 8);
        let jobs = (0..n)
            .map(|i| {
                let settings = self.image_settings(edit, i);
                let seed = settings.seed;
                let job = if edit {
                    Job::Edit { instruction: self.prompt.clone(), image: image.clone(), fit: FitMode::Auto, settings }
                } else {
                    Job::Inpaint {
                        regions: regions.clone(),
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
        // about the selected region's context crop when it is painted (and not hidden)
        let about = if self.ask_whole { None } else { self.region_crop(doc.selected_region()) };
        let (image, shown) = match about {
            Some((name, r)) => (crop_of(doc.image(), r), format!("[{name}] {q}")),
            None => (doc.image().clone(), q.clone()),
        };
        let (job, gen_length) = self.ask_job(q, image);
        self.chat.push(ChatTurn { question: shown, answer: String::new(), done: false, answered: false });
        self.question.clear();
        self.submit(RunKind::Ask, vec![(job, 0)], gen_length);
    }

    /// An Ask job about `image` and its answer length.
    fn ask_job(&self, question: String, image: image::RgbImage) -> (Job, usize) {
        // the bundle's answer length (the embedded model answers in 8), else 32
        let gen_length = self.model_info().and_then(|i| i.default_gen_length).unwrap_or(32).clamp(1, 512);
        let block_length = gen_length.min(32);
        let job = Job::Ask {
            question,
            image,
            fit: FitMode::Auto,
            gen_length,
            // the text cache: on the embedded model's eval (200 questions) it
            // answered 96.0% right vs 93.5% without, 1.56x faster (issue 17)
            settings: TextSettings { steps: gen_length, block_length, temperature: 0.0, seed: 0, cache: true },
        };
        (job, gen_length)
    }

    /// Region `i`'s name and the box the model would see around it (its
    /// context crops together, at least the model's working side), when it
    /// is painted and shown.
    pub fn region_crop(&self, i: usize) -> Option<(String, unmask::crop::Rect)> {
        let (doc, info) = (self.doc.as_ref()?, self.model_info()?);
        let r = doc.regions().get(i).filter(|r| !r.hidden && !doc.region_is_empty(i))?;
        let crops = unmask::crop::plan(doc.region_mask(i), info.vq_factor, self.settings.context, info.work_area, false).ok()?;
        let mut boxes = crops.iter().map(|c| c.source);
        let first = boxes.next()?;
        let (x0, y0, x1, y1) = boxes.fold((first.x, first.y, first.x1(), first.y1()), |(a, b, c, d), s| (a.min(s.x), b.min(s.y), c.max(s.x1()), d.max(s.y1())));
        let (w, h) = doc.size();
        // a tiny crop tells the model nothing (the embedded one answers a 16 px
        // crop with nothing): each side at least what the model works at,
        // enlarged no more than its bundle allows, centred on the region
        let least = ((info.work_area.area as f64).sqrt() / info.work_area.max_upscale.max(1.0)).ceil() as u32;
        let grow = |a: u32, b: u32, size: u32| {
            let need = least.min(size);
            if b - a >= need {
                return (a, b);
            }
            let a = (a + b).saturating_sub(need) / 2;
            let a = a.min(size - need);
            (a, a + need)
        };
        let (x1, y1) = (x1.min(w), y1.min(h));
        if x1 <= x0 || y1 <= y0 {
            return None;
        }
        let ((x0, x1), (y0, y1)) = (grow(x0, x1, w), grow(y0, y1, h));
        Some((r.name.clone(), unmask::crop::Rect { x: x0, y: y0, w: x1 - x0, h: y1 - y0 }))
    }

    /// Describe: asks the model what region `i`'s crop shows (the bundle's
    /// questions in turn) and makes the answer its prompt.
    pub fn describe_region(&mut self, i: usize) {
        if !self.ready() {
            return;
        }
        let Some((name, r)) = self.region_crop(i) else {
            return self.refuse("paint the region first (and show it): Describe looks at what is under it");
        };
        let (Some(doc), Some(info)) = (self.doc.as_ref(), self.model_info()) else { return };
        let recipe = info.describe.clone();
        let crop = crop_of(doc.image(), r);
        let Some(q) = recipe.question(0, &[]) else { return self.refuse("the model names no question to describe a picture with") };
        self.describing = Some(super::Describing { doc_id: doc.id, region: i, name, crop: crop.clone(), answers: Vec::new(), recipe });
        let (job, gen_length) = self.ask_job(q, crop);
        self.submit(RunKind::Describe, vec![(job, 0)], gen_length);
    }

    /// A Describe question was answered: asks the next one (true), or puts
    /// the prompt in its region (false: the run ends).
    pub(crate) fn describe_answer(&mut self, text: String) -> bool {
        let Some(mut d) = self.describing.take() else { return false };
        d.answers.push(text);
        if let Some(q) = d.recipe.question(d.answers.len(), &d.answers) {
            let (job, _) = self.ask_job(q, d.crop.clone());
            let preview = PreviewOptions::default();
            let id = self.worker.submit(job, preview);
            if let Some(run) = self.run.as_mut() {
                run.jobs = vec![(id, 0)];
                run.step = 0;
            }
            self.describing = Some(d);
            return true;
        }
        let prompt = d.recipe.prompt(&d.answers);
        if d.answers.iter().any(|a| a.trim().is_empty()) {
            self.notify("Describe found no answer", &format!("the model did not answer about {}; its prompt is unchanged", d.name), true);
            return false;
        }
        let open = self.doc.as_ref().is_some_and(|doc| doc.id == d.doc_id);
        let target = self.doc.iter_mut().chain(self.background.iter_mut()).find(|doc| doc.id == d.doc_id);
        match target {
            Some(doc) if doc.regions().get(d.region).is_some_and(|r| r.name == d.name) => {
                if open && doc.selected_region() == d.region {
                    *self.retouch_prompt_mut() = prompt.clone();
                    self.flush_prompt();
                } else {
                    doc.set_region_prompt(d.region, &prompt);
                }
                self.notify(&format!("{}: \"{prompt}\"", d.name), "the model's description of the region, now its prompt (Ctrl+Z undoes it)", false);
            }
            _ => self.notify("Describe's answer was not used", &format!("{} was deleted or moved meanwhile", d.name), false),
        }
        false
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

/// The pixels of `r` in `img`.
fn crop_of(img: &image::RgbImage, r: unmask::crop::Rect) -> image::RgbImage {
    image::imageops::crop_imm(img, r.x, r.y, r.w, r.h).to_image()
}

/// The painted, shown regions of `doc` in their order, as the engine takes
/// them; or why they cannot run (naming the region).
fn run_regions(doc: &crate::document::Document) -> Result<Vec<unmask::tasks::Region>, String> {
    let all = doc.regions();
    let painted: Vec<usize> = (0..all.len()).filter(|&i| !doc.region_is_empty(i)).collect();
    let shown: Vec<usize> = painted.iter().copied().filter(|&i| !all[i].hidden).collect();
    if shown.is_empty() {
        return Err("every painted region is hidden: show one in the Regions list (its eye), or paint".into());
    }
    let mut out = Vec::new();
    for i in shown {
        let r = &all[i];
        let what = "type what the painted area becomes";
        // one region reads as the single mask did; of several, the message names it
        let why = if all.len() == 1 { unusable(&r.prompt, "prompt", what) } else { unusable(&r.prompt, &format!("prompt of {}", r.name), what) };
        if let Some(why) = why {
            return Err(why);
        }
        out.push(unmask::tasks::Region::new(doc.region_mask(i).clone(), r.prompt.clone()));
    }
    Ok(out)
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
