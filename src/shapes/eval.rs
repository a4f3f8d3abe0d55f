//! Held-out evaluation of a shapes model: text-to-image judged by the
//! detector, inpainting (outside preserved, region as prompted), edits,
//! answers and VQ read-back. Fresh scenes are drawn from `seed`, so none was
//! seen in training (training draws from other seeds). Every task that takes
//! a picture runs twice: on the world's own rendering and on the foreign one
//! (`foreign.rs`: another rasterizer, other sizes and offsets), the
//! "foreign" column.

use std::fmt::Write;

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::detect::{detect, Found};
use super::foreign::render_foreign;
use super::render::render;
use super::world::{random_edit, random_object, random_question, Object, Pos, Scene};
use crate::engine::Engine;
use crate::error::Result;
use crate::sampler::{ImageSettings, Quiet, TextSettings};
use crate::tasks::{self, FitMode, Job, Output};

#[derive(Debug, Default, Clone)]
pub struct Report {
    pub n: usize,
    pub color: (usize, usize),
    pub shape: (usize, usize),
    pub position: (usize, usize),
    pub count: (usize, usize),
    pub inpaint_preserved: (usize, usize),
    pub inpaint_region: (usize, usize),
    pub edit: (usize, usize),
    pub answers: (usize, usize),
    /// The same questions with the text cache on.
    pub answers_cached: (usize, usize),
    /// Answers the text cache left unchanged.
    pub answers_agree: (usize, usize),
    /// Milliseconds spent answering: without, with the text cache.
    pub answer_ms: (f64, f64),
    /// Scenes whose encode + decode the detector reads back exactly.
    pub readback: (usize, usize),
    /// The same tasks on the foreign renderer's pictures of the same scenes.
    pub foreign_edit: (usize, usize),
    pub foreign_answers: (usize, usize),
    pub foreign_readback: (usize, usize),
}

/// `(right, out of)` as a percentage (0 when out of nothing).
pub fn pct(x: (usize, usize)) -> f64 {
    if x.1 == 0 {
        0.0
    } else {
        100.0 * x.0 as f64 / x.1 as f64
    }
}

impl Report {
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "| metric | world's renderer | foreign renderer | n |\n|---|---|---|---|");
        let none = (0, 0);
        for (name, v, f) in [
            ("text-to-image colour", self.color, none),
            ("text-to-image shape", self.shape, none),
            ("text-to-image position", self.position, none),
            ("text-to-image count", self.count, none),
            ("inpaint outside-mask preservation", self.inpaint_preserved, none),
            ("inpaint region as prompted", self.inpaint_region, none),
            ("edit accuracy", self.edit, self.foreign_edit),
            ("answer exact match", self.answers, self.foreign_answers),
            ("answer exact match, text cache", self.answers_cached, none),
            ("answers unchanged by the text cache", self.answers_agree, none),
            ("VQ read-back (encode, decode, detect)", self.readback, self.foreign_readback),
        ] {
            // text-to-image takes no picture: the foreign renderer has nothing to change
            let foreign = if f.1 == 0 { "-".to_string() } else { format!("{:.1}%", pct(f)) };
            let _ = writeln!(s, "| {name} | {:.1}% | {foreign} | {} |", pct(v), v.1);
        }
        let (plain, cached) = self.answer_ms;
        if cached > 0.0 {
            let _ = writeln!(s, "\nanswering: {plain:.0} ms without the text cache, {cached:.0} ms with it (x{:.2})", plain / cached);
        }
        s
    }
}

/// The detection that best stands for `o`: same colour, nearest layout cell.
fn matching<'a>(o: &Object, found: &'a [Found]) -> Option<&'a Found> {
    let dist = |p: Pos| (p.row() as i32 - o.pos.row() as i32).abs() + (p.col() as i32 - o.pos.col() as i32).abs();
    found.iter().filter(|f| f.color == o.color).min_by_key(|f| dist(f.pos))
}

/// True when the image shows exactly the scene's objects.
fn scene_matches(scene: &Scene, found: &[Found]) -> bool {
    found.len() == scene.objects.len()
        && scene.objects.iter().all(|o| matching(o, found).is_some_and(|f| f.shape == o.shape && f.pos == o.pos))
}

/// The bundle's defaults, as the CLI and the Studio use them.
fn image_settings(engine: &Engine, seed: u64, edit: bool) -> ImageSettings {
    let d = &engine.bundle.defaults;
    let (cfg, cfg_img) = d.guidance(edit);
    ImageSettings {
        steps: d.steps.unwrap_or(12),
        cfg,
        cfg_img,
        temperature: d.temperature.unwrap_or(0.0),
        seed,
        cache: None,
    }
}

/// Does the scene survive the VQ-VAE: encode, decode, and the detector finds it?
fn reads_back(engine: &Engine, scene: &Scene, img: &image::RgbImage) -> Result<bool> {
    let grid = engine.vq.encode(&crate::image_io::to_rgb(img))?;
    let back = crate::image_io::from_rgb(&engine.vq.decode(&grid)?);
    Ok(scene_matches(scene, &detect(&back)))
}

fn image_of(out: Output) -> Option<image::RgbImage> {
    match out {
        Output::Image { image, .. } => Some(image),
        _ => None,
    }
}

pub fn evaluate(engine: &Engine, n: usize, seed: u64) -> Result<Report> {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(0xE0A1));
    let side = engine.bundle.defaults.width.unwrap_or(64);
    let mut r = Report { n, ..Default::default() };
    let f = engine.vq.factor() as u32;
    for i in 0..n {
        // text to image
        let scene = Scene::random(&mut rng);
        let job = Job::Generate { prompt: scene.caption(), width: side, height: side, settings: image_settings(engine, i as u64, false) };
        let img = image_of(tasks::run(engine, &job, &mut Quiet)?).unwrap_or_default();
        let found = detect(&img);
        for o in &scene.objects {
            let m = matching(o, &found);
            r.color.1 += 1;
            r.shape.1 += 1;
            r.position.1 += 1;
            if let Some(m) = m {
                r.color.0 += 1;
                r.shape.0 += usize::from(m.shape == o.shape);
                r.position.0 += usize::from(m.pos == o.pos);
            }
        }
        r.count.1 += 1;
        r.count.0 += usize::from(found.len() == scene.objects.len());

        // inpaint: replace one object by a new one in its layout cell
        let mut target = scene.clone();
        let k = i % target.objects.len();
        let taken: Vec<Pos> = target.objects.iter().map(|o| o.pos).collect();
        let mut new = random_object(&mut rng, &taken);
        new.pos = target.objects[k].pos;
        target.objects[k] = new;
        let base = render(&scene, side as u32);
        // its own stream, so the world's rows stay what they were
        let mut frng = StdRng::seed_from_u64(seed.wrapping_mul(31).wrapping_add(i as u64 ^ 0xF0E1));
        let foreign = render_foreign(&scene, side as u32, &mut frng);
        r.readback.1 += 1;
        r.readback.0 += usize::from(reads_back(engine, &scene, &base)?);
        r.foreign_readback.1 += 1;
        r.foreign_readback.0 += usize::from(reads_back(engine, &scene, &foreign)?);
        let cell = side as f32 / 3.0;
        let (c0, r0) = ((new.pos.col() as f32 * cell) as u32, (new.pos.row() as f32 * cell) as u32);
        let (c1, r1) = ((((new.pos.col() + 1) as f32 * cell).ceil() as u32).min(side as u32), (((new.pos.row() + 1) as f32 * cell).ceil() as u32).min(side as u32));
        // whole token cells covering the layout cell
        let (x0, y0, x1, y1) = (c0 / f * f, r0 / f * f, c1.div_ceil(f) * f, r1.div_ceil(f) * f);
        let mask = image::GrayImage::from_fn(side as u32, side as u32, |x, y| image::Luma([if x >= x0 && x < x1 && y >= y0 && y < y1 { 255 } else { 0 }]));
        let job = Job::Inpaint { regions: vec![crate::tasks::Region::new(mask.clone(), target.caption())], image: base.clone(), codes: None, grow: 0, cover: Default::default(), feather: 0.0, context: Default::default(), content: None, settings: image_settings(engine, i as u64, false) };
        let out = image_of(tasks::run(engine, &job, &mut Quiet)?).unwrap_or_default();
        let preserved = out.enumerate_pixels().all(|(x, y, p)| mask.get_pixel(x, y)[0] != 0 || p == base.get_pixel(x, y));
        r.inpaint_preserved.1 += 1;
        r.inpaint_preserved.0 += usize::from(preserved);
        let found = detect(&out);
        r.inpaint_region.1 += 1;
        r.inpaint_region.0 += usize::from(matching(&new, &found).is_some_and(|m| m.shape == new.shape && m.pos == new.pos));

        // edit
        if let Some(e) = random_edit(&scene, &mut rng) {
            for (input, score) in [(&base, &mut r.edit), (&foreign, &mut r.foreign_edit)] {
                let job = Job::Edit { instruction: e.instruction.clone(), image: input.clone(), fit: FitMode::Native, settings: image_settings(engine, i as u64, true) };
                let out = image_of(tasks::run(engine, &job, &mut Quiet)?).unwrap_or_default();
                score.1 += 1;
                score.0 += usize::from(scene_matches(&e.target, &detect(&out)));
            }
        }

        // question
        let (q, a) = random_question(&scene, &mut rng);
        let g = engine.bundle.defaults.gen_length.unwrap_or(8);
        let mut texts = Vec::new();
        for cache in [false, true] {
            let settings = TextSettings { steps: g, block_length: g, temperature: 0.0, seed: 0, cache };
            let job = Job::Ask { question: q.clone(), image: base.clone(), fit: FitMode::Native, gen_length: g, settings };
            let t0 = std::time::Instant::now();
            let out = tasks::run(engine, &job, &mut Quiet)?;
            let ms = t0.elapsed().as_secs_f64() * 1e3;
            if let Output::Answer { text, .. } = out {
                let (score, time) = if cache { (&mut r.answers_cached, &mut r.answer_ms.1) } else { (&mut r.answers, &mut r.answer_ms.0) };
                score.1 += 1;
                score.0 += usize::from(text.trim() == a);
                *time += ms;
                texts.push(text);
            }
        }
        let settings = TextSettings { steps: g, block_length: g, temperature: 0.0, seed: 0, cache: false };
        let job = Job::Ask { question: q.clone(), image: foreign.clone(), fit: FitMode::Native, gen_length: g, settings };
        if let Output::Answer { text, .. } = tasks::run(engine, &job, &mut Quiet)? {
            r.foreign_answers.1 += 1;
            r.foreign_answers.0 += usize::from(text.trim() == a);
        }
        if let [plain, cached] = &texts[..] {
            r.answers_agree.1 += 1;
            r.answers_agree.0 += usize::from(plain == cached);
        }
    }
    Ok(r)
}
