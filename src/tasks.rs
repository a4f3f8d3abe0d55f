//! The product's tasks end to end on a loaded [`Engine`]: images in, fitted and
//! encoded; a layout; the sampler; decoding and compositing out. Front ends and
//! the worker call these; they hold no state between calls.

use image::{GrayImage, RgbImage};
use serde::Serialize;

use crate::composite::composite;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::image_io::{self, Fit};
use crate::mask;
use crate::model::CodeGrid;
use crate::sampler::{self, Control, ImageSettings, Prompter, TextSettings};

/// Bucket areas of the reference: edit inputs ~512^2, understanding ~1024^2.
pub const EDIT_AREA: usize = 512 * 512;
pub const ASK_AREA: usize = 1024 * 1024;

/// How an input image is sized for the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum FitMode {
    /// Native when the sides are multiples of the VQ factor and the area is
    /// within the task's bucket area; the bucket otherwise.
    #[default]
    Auto,
    Native,
    Bucket,
}

#[derive(Debug, Clone)]
pub enum Job {
    Generate { prompt: String, width: usize, height: usize, settings: ImageSettings },
    /// Regenerates the white part of `mask` (same size as `image`). `codes`:
    /// the image's own codes when the model made it, so kept cells need no
    /// VQ round trip.
    Inpaint { prompt: String, image: RgbImage, mask: GrayImage, codes: Option<CodeGrid>, grow: usize, feather: f32, settings: ImageSettings },
    Edit { instruction: String, image: RgbImage, fit: FitMode, settings: ImageSettings },
    Ask { question: String, image: RgbImage, fit: FitMode, gen_length: usize, settings: TextSettings },
}

impl Job {
    pub fn kind(&self) -> &'static str {
        match self {
            Job::Generate { .. } => "generate",
            Job::Inpaint { .. } => "inpaint",
            Job::Edit { .. } => "edit",
            Job::Ask { .. } => "ask",
        }
    }
}

#[derive(Debug, Clone)]
pub enum Output {
    Image { image: RgbImage, codes: CodeGrid, parameters: String },
    Answer { text: String, ids: Vec<u32> },
}

/// Progress a job reports; the worker turns these into events.
pub trait Progress: Control {
    /// Called after each image step with the grid state; the implementation
    /// decides whether to decode a preview (see [`preview`]).
    fn image_preview(&mut self, _engine: &Engine, _state: &PreviewState<'_>) {}
    /// Called after each text step; the answer so far is `answer_ids(step.answer)`.
    fn text_preview(&mut self, _engine: &Engine, _step: &sampler::TextStep<'_>) {}
}

/// What a preview needs: the step's cells and guesses plus, for inpainting,
/// the original to composite into.
pub struct PreviewState<'a> {
    pub step: usize,
    pub total: usize,
    pub unmasked: usize,
    pub height: usize,
    pub width: usize,
    pub cells: &'a [Option<u32>],
    pub guess: &'a [u32],
    pub original: Option<(&'a RgbImage, &'a GrayImage)>,
}

/// How masked cells look in a preview.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviewFill {
    /// The model's current best code.
    BestGuess,
    /// Mid grey.
    Neutral,
}

/// Decodes a preview of the grid state; `crop` = (row0, col0, rows, cols) in cells.
pub fn preview(engine: &Engine, st: &PreviewState<'_>, fill: PreviewFill, crop: Option<(usize, usize, usize, usize)>) -> Result<RgbImage> {
    let (r0, c0, rows, cols) = crop.unwrap_or((0, 0, st.height, st.width));
    if rows == 0 || cols == 0 || r0 + rows > st.height || c0 + cols > st.width {
        return Err(Error::invalid("preview crop outside the grid"));
    }
    let mut codes = Vec::with_capacity(rows * cols);
    for r in r0..r0 + rows {
        for c in c0..c0 + cols {
            let i = r * st.width + c;
            codes.push(st.cells[i].unwrap_or(st.guess[i]));
        }
    }
    let rgb = engine.vq.decode(&CodeGrid { height: rows, width: cols, codes })?;
    let mut img = image_io::from_rgb(&rgb);
    let f = engine.vq.factor() as u32;
    if fill == PreviewFill::Neutral {
        for (x, y, p) in img.enumerate_pixels_mut() {
            let (r, c) = (r0 + (y / f) as usize, c0 + (x / f) as usize);
            if st.cells[r * st.width + c].is_none() {
                *p = image::Rgb([128, 128, 128]);
            }
        }
    }
    if let (None, Some((orig, region))) = (crop, st.original) {
        img = composite(orig, &img, region, 0.0);
    }
    Ok(img)
}

/// Fits an input image for a task whose bucket holds about `area` pixels.
pub fn fit_input(img: &RgbImage, mode: FitMode, factor: usize, area: usize) -> Result<RgbImage> {
    let native_ok = img.width() as usize % factor == 0
        && img.height() as usize % factor == 0
        && (img.width() as usize * img.height() as usize) <= area;
    let fit = match mode {
        FitMode::Native => Fit::Native,
        FitMode::Bucket => Fit::Bucket { area },
        FitMode::Auto if native_ok => Fit::Native,
        FitMode::Auto => Fit::Bucket { area },
    };
    image_io::fit(img, fit, factor)
}

/// Pads right and bottom by edge replication to multiples of `factor`, so no
/// pixel of the user's image (or mask) is cropped away; results are cropped back.
pub fn pad_to_multiple<P: image::Pixel>(img: &image::ImageBuffer<P, Vec<P::Subpixel>>, factor: u32) -> image::ImageBuffer<P, Vec<P::Subpixel>> {
    let (w, h) = (img.width(), img.height());
    let (pw, ph) = (w.div_ceil(factor) * factor, h.div_ceil(factor) * factor);
    if (pw, ph) == (w, h) {
        return img.clone();
    }
    image::ImageBuffer::from_fn(pw, ph, |x, y| *img.get_pixel(x.min(w - 1), y.min(h - 1)))
}

/// `parameters` text in the convention other image tools read.
pub fn parameters_text(engine: &Engine, job: &Job, width: usize, height: usize) -> String {
    let (prompt, s) = match job {
        Job::Generate { prompt, settings, .. } | Job::Inpaint { prompt, settings, .. } => (prompt.as_str(), settings),
        Job::Edit { instruction, settings, .. } => (instruction.as_str(), settings),
        Job::Ask { .. } => return String::new(),
    };
    let mut t = format!(
        "{prompt}\nTask: {}, Steps: {}, Sampler: MaskGIT cosine, CFG scale: {}, Seed: {}, Temperature: {}, Size: {width}x{height}, Model: {}",
        job.kind(),
        s.steps,
        s.cfg,
        s.seed,
        s.temperature,
        engine.info.name
    );
    if s.cfg_img > 0.0 {
        t += &format!(", Image CFG scale: {}", s.cfg_img);
    }
    if let Some(c) = s.cache {
        t += &format!(", ML-Cache: {}/{}/{}", c.ratio, c.warmup_ratio, c.refresh_interval);
    }
    t
}

/// Runs one job to completion.
pub fn run(engine: &Engine, job: &Job, progress: &mut dyn Progress) -> Result<Output> {
    let prompter = Prompter::new(&engine.tokenizer, engine.special);
    let factor = engine.vq.factor();
    match job {
        Job::Generate { prompt, width, height, settings } => {
            if width % factor != 0 || height % factor != 0 || *width == 0 || *height == 0 {
                return Err(Error::invalid(format!(
                    "size {width}x{height}: width and height must be positive multiples of {factor}"
                )));
            }
            let layout = prompter.text_to_image(prompt, height / factor, width / factor)?;
            let codes = sample_with_previews(engine, &layout, settings, None, progress)?;
            let image = image_io::from_rgb(&engine.vq.decode(&codes)?);
            Ok(Output::Image { parameters: parameters_text(engine, job, *width, *height), image, codes })
        }
        Job::Inpaint { prompt, image, mask: m, codes, grow, feather, settings } => {
            if (m.width(), m.height()) != (image.width(), image.height()) {
                return Err(Error::invalid(format!(
                    "mask is {}x{} but the image is {}x{}: paint the mask on the same image",
                    m.width(),
                    m.height(),
                    image.width(),
                    image.height()
                )));
            }
            let f = factor as u32;
            let padded = pad_to_multiple(image, f);
            let (h, w, cells) = mask::cells_from_mask(&pad_to_multiple(m, f), factor)?;
            let cells = mask::grow(&cells, h, w, *grow);
            if !cells.iter().any(|&c| c) {
                return Err(Error::invalid("the mask selects no token cell: paint over more than half of a cell"));
            }
            let grid = match codes {
                Some(c) if (c.height, c.width) == (h, w) => c.clone(),
                _ => engine.vq.encode(&image_io::to_rgb(&padded))?,
            };
            let region = mask::cells_to_pixels(&cells, h, w, factor);
            let layout = prompter.inpaint(prompt, &grid, &cells)?;
            let codes = sample_with_previews(engine, &layout, settings, Some((&padded, &region)), progress)?;
            let decoded = image_io::from_rgb(&engine.vq.decode(&codes)?);
            let full = composite(&padded, &decoded, &region, *feather);
            let out = image::imageops::crop_imm(&full, 0, 0, image.width(), image.height()).to_image();
            Ok(Output::Image {
                parameters: parameters_text(engine, job, image.width() as usize, image.height() as usize),
                image: out,
                codes,
            })
        }
        Job::Edit { instruction, image, fit, settings } => {
            let input = fit_input(image, *fit, factor, EDIT_AREA)?;
            let grid = engine.vq.encode(&image_io::to_rgb(&input))?;
            let layout = prompter.edit(instruction, &grid)?;
            let codes = sample_with_previews(engine, &layout, settings, None, progress)?;
            let out = image_io::from_rgb(&engine.vq.decode(&codes)?);
            Ok(Output::Image {
                parameters: parameters_text(engine, job, input.width() as usize, input.height() as usize),
                image: out,
                codes,
            })
        }
        Job::Ask { question, image, fit, gen_length, settings } => {
            let input = fit_input(image, *fit, factor, ASK_AREA)?;
            let grid = engine.vq.encode(&image_io::to_rgb(&input))?;
            let layout = prompter.understanding(question, &grid, *gen_length)?;
            let mut bridge = Bridge { engine, inner: progress, original: None, height: 0, width: 0 };
            let answer = sampler::sample_text(&engine.llada, &engine.special, &layout, settings, &mut bridge)?;
            Ok(Output::Answer { text: decode_text(engine, &answer.ids)?, ids: answer.ids })
        }
    }
}

pub fn decode_text(engine: &Engine, ids: &[u32]) -> Result<String> {
    engine.tokenizer.decode(ids, true).map_err(|e| Error::invalid(format!("tokenizer: {e}")))
}

/// Hands each sampler step to the job's [`Progress`] with what a preview needs.
struct Bridge<'a, 'b> {
    engine: &'a Engine,
    inner: &'b mut dyn Progress,
    original: Option<(&'a RgbImage, &'a GrayImage)>,
    height: usize,
    width: usize,
}

impl Control for Bridge<'_, '_> {
    fn cancelled(&self) -> bool {
        self.inner.cancelled()
    }
    fn image_step(&mut self, s: &sampler::ImageStep<'_>) {
        self.inner.image_step(s);
        let state = PreviewState {
            step: s.step,
            total: s.total,
            unmasked: s.unmasked,
            height: self.height,
            width: self.width,
            cells: s.cells,
            guess: s.guess,
            original: self.original,
        };
        self.inner.image_preview(self.engine, &state);
    }
    fn text_step(&mut self, s: &sampler::TextStep<'_>) {
        self.inner.text_step(s);
        self.inner.text_preview(self.engine, s);
    }
}

fn sample_with_previews(
    engine: &Engine,
    layout: &sampler::ImageLayout,
    settings: &ImageSettings,
    original: Option<(&RgbImage, &GrayImage)>,
    progress: &mut dyn Progress,
) -> Result<CodeGrid> {
    let mut bridge = Bridge { engine, inner: progress, original, height: layout.height, width: layout.width };
    sampler::sample_image(&engine.llada, &engine.special, layout, settings, &mut bridge)
}

impl Progress for sampler::Quiet {}
impl Progress for sampler::Callbacks<'_> {}
