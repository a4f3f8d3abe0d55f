//! The product's tasks end to end on a loaded [`Engine`]: images in, fitted and
//! encoded; a layout; the sampler; decoding and compositing out. Front ends and
//! the worker call these; they hold no state between calls.

pub mod budget;
pub mod checks;
pub mod inpaint;

use image::{GrayImage, RgbImage};
use serde::{Deserialize, Serialize};

use crate::composite::composite;
use crate::crop::{Context, Crop, Rect};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::image_io::{self, Fit};
pub use crate::mask::Cover;
use crate::model::CodeGrid;
use crate::sampler::{self, Control, ImageSettings, Prompter, TextSettings};

/// Bucket areas of the reference: edit inputs ~512^2, understanding ~1024^2.
pub const EDIT_AREA: usize = 512 * 512;
pub const ASK_AREA: usize = 1024 * 1024;

/// How an input image is sized for the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
    /// Regenerates the white part of each region's mask (same size as
    /// `image`), region after region in their order, each from its own
    /// prompt, on context crops at the model's working size (see
    /// [`crate::crop`]): the cells `cover` selects run, only the painted
    /// pixels change (see [`inpaint`]); a region sees the result of those
    /// before it. One region is the plain retouch. `codes`: the image's own
    /// codes when the model made it, so kept cells need no VQ round trip.
    /// `content`: where the image has pixels (an outpaint's input); every
    /// cell reaching past it regenerates.
    Inpaint {
        regions: Vec<Region>,
        image: RgbImage,
        codes: Option<CodeGrid>,
        grow: usize,
        cover: Cover,
        feather: f32,
        context: Context,
        content: Option<Rect>,
        settings: ImageSettings,
    },
    Edit { instruction: String, image: RgbImage, fit: FitMode, settings: ImageSettings },
    Ask { question: String, image: RgbImage, fit: FitMode, gen_length: usize, settings: TextSettings },
}

/// One painted area of an inpaint job and what it becomes.
#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    /// Same size as the job's image; white (above [`crate::mask::PAINTED_ABOVE`]) = regenerate.
    pub mask: GrayImage,
    pub prompt: String,
}

impl Region {
    pub fn new(mask: GrayImage, prompt: impl Into<String>) -> Self {
        Self { mask, prompt: prompt.into() }
    }
}

/// The most regions one job may hold: each is at least one model run, and a
/// list longer than this is a mistake, not a retouch.
pub const MAX_REGIONS: usize = 64;

impl Job {
    /// A one-region inpaint (today's retouch) with the usual defaults: no
    /// codes, no growth, the painted-area rule, no outpaint border.
    pub fn inpaint(prompt: impl Into<String>, image: RgbImage, mask: GrayImage, feather: f32, context: Context, settings: ImageSettings) -> Job {
        Job::Inpaint {
            regions: vec![Region::new(mask, prompt)],
            image,
            codes: None,
            grow: 0,
            cover: Cover::default(),
            feather,
            context,
            content: None,
            settings,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Job::Generate { .. } => "generate",
            // an outpaint is an inpaint of its extended canvas; its result says which it was
            Job::Inpaint { content: Some(_), .. } => "outpaint",
            Job::Inpaint { .. } => "inpaint",
            Job::Edit { .. } => "edit",
            Job::Ask { .. } => "ask",
        }
    }
}

/// Where and at what size the model worked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Work {
    /// The inpaint crops, in the order they ran (empty for other tasks).
    pub crops: Vec<Crop>,
    /// The size the model saw (the first crop's, for inpainting).
    pub width: u32,
    pub height: u32,
    /// Inpainting: the region (index into the job's list) each crop served.
    #[serde(default)]
    pub region_of: Vec<usize>,
}

#[derive(Debug, Clone)]
pub enum Output {
    /// `codes`: the model's codes when they decode to `image` at its own size
    /// (a generated image, or an inpaint whose crops all ran at scale 1);
    /// `None` when the model worked at another scale.
    Image { image: RgbImage, codes: Option<CodeGrid>, parameters: String, work: Work },
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
    /// Inpainting: the working image and its regenerated region, to composite into.
    pub original: Option<(&'a RgbImage, &'a GrayImage)>,
    /// Inpainting: which crop this is and where it lies in the document.
    pub placement: Option<Placement>,
}

/// Which crop of an inpaint job a step belongs to, and where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// The crop's box in the document (may reach past the right and bottom
    /// edges by the cell padding); a preview is drawn scaled into it.
    pub at: Rect,
    /// This crop's place among all crops of all regions, and their number.
    pub index: usize,
    pub count: usize,
    /// The region the crop serves (index into the job's list), and how many there are.
    pub region: usize,
    pub regions: usize,
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
    let _timer = crate::profile::phase("previews");
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

/// A task's bucket on a model: the release's area (`EDIT_AREA`, `ASK_AREA`)
/// with sides on multiples of 32, or, where the bundle's working area is
/// smaller (the embedded model's 48 x 48), that area on the model's own cells:
/// such a model sees every photo at its own scale.
pub fn bucket(info: &crate::engine::ModelInfo, release_area: usize) -> Fit {
    let f = info.vq_factor;
    if info.work_area.area < release_area {
        Fit::Bucket { area: info.work_area.area, multiple: f }
    } else {
        Fit::Bucket { area: release_area, multiple: f.max(32) }
    }
}

/// How an image of `w x h` is fitted for a task with bucket `bucket`.
fn fit_choice(w: usize, h: usize, mode: FitMode, factor: usize, bucket: Fit) -> Fit {
    let area = match bucket {
        Fit::Bucket { area, .. } => area,
        Fit::Native => usize::MAX,
    };
    let native_ok = w % factor == 0 && h % factor == 0 && w * h <= area;
    match mode {
        FitMode::Native => Fit::Native,
        FitMode::Auto if native_ok => Fit::Native,
        FitMode::Bucket | FitMode::Auto => bucket,
    }
}

fn at_least_a_cell(w: usize, h: usize, factor: usize) -> Result<()> {
    if w < factor || h < factor {
        return Err(Error::invalid(format!(
            "the image is {w}x{h} px, smaller than one {factor}x{factor} token cell: give an image at least {factor} px a side"
        )));
    }
    Ok(())
}

/// The size the model sees a `w x h` input at (what the Studio shows before a run).
pub fn fit_size(w: usize, h: usize, mode: FitMode, factor: usize, bucket: Fit) -> Result<(usize, usize)> {
    at_least_a_cell(w, h, factor)?;
    image_io::fit_size(w, h, fit_choice(w, h, mode, factor, bucket), factor)
}

/// Fits an input image for a task with bucket `bucket` (see [`bucket`]).
/// An image smaller than one cell holds nothing to read: refused, not enlarged.
pub fn fit_input(img: &RgbImage, mode: FitMode, factor: usize, bucket: Fit) -> Result<RgbImage> {
    at_least_a_cell(img.width() as usize, img.height() as usize, factor)?;
    let fit = fit_choice(img.width() as usize, img.height() as usize, mode, factor, bucket);
    image_io::fit(img, fit, factor)
}

/// `parameters` text in the convention other image tools read.
pub fn parameters_text(engine: &Engine, job: &Job, width: usize, height: usize, work: &Work) -> String {
    let (prompt, s) = match job {
        Job::Generate { prompt, settings, .. } => (prompt.clone(), settings),
        Job::Inpaint { regions, settings, .. } => (prompt_lines(regions), settings),
        Job::Edit { instruction, settings, .. } => (instruction.clone(), settings),
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
    if (work.width as usize, work.height as usize) != (width, height) || !work.crops.is_empty() {
        t += &format!(", Working size: {}x{}", work.width, work.height);
    }
    if let Job::Inpaint { context, cover, .. } = job {
        t += &format!(", Context: {context}, Cover: {cover}");
    }
    let several = matches!(job, Job::Inpaint { regions, .. } if regions.len() > 1);
    for (i, c) in work.crops.iter().enumerate() {
        let r = c.source;
        let of = match work.region_of.get(i) {
            Some(k) if several => format!(" (region {})", k + 1),
            _ => String::new(),
        };
        t += &format!(", Crop {}{of}: {}x{}+{}+{} -> {}x{}", i + 1, r.w, r.h, r.x, r.y, c.work_w, c.work_h);
    }
    t
}

/// The prompt lines of `parameters`: one region's prompt as it is (what
/// other tools read as the prompt), several as `Region k: prompt` lines.
fn prompt_lines(regions: &[Region]) -> String {
    match regions {
        [one] => one.prompt.clone(),
        many => many.iter().enumerate().map(|(k, r)| format!("Region {}: {}", k + 1, r.prompt)).collect::<Vec<_>>().join("\n"),
    }
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
            budget::check_image(engine, &layout, settings, &format!("the size {width}x{height}"))?;
            let codes = sample_with_previews(engine, &layout, settings, None, None, progress)?;
            let image = image_io::from_rgb(&engine.vq.decode(&codes)?);
            let work = Work { crops: Vec::new(), width: *width as u32, height: *height as u32, region_of: Vec::new() };
            Ok(Output::Image { parameters: parameters_text(engine, job, *width, *height, &work), image, codes: Some(codes), work })
        }
        Job::Inpaint { regions, image, codes, grow, cover, feather, context, content, settings } => {
            let req = inpaint::Inpaint {
                regions,
                image,
                codes: codes.as_ref(),
                grow: *grow,
                cover: *cover,
                feather: *feather,
                context: *context,
                content: *content,
                settings,
            };
            let done = inpaint::run(engine, &req, progress)?;
            let first = done.crops.first().map(|c| (c.work_w, c.work_h)).unwrap_or((0, 0));
            let work = Work { crops: done.crops, width: first.0, height: first.1, region_of: done.region_of };
            Ok(Output::Image {
                parameters: parameters_text(engine, job, image.width() as usize, image.height() as usize, &work),
                image: done.image,
                codes: done.codes,
                work,
            })
        }
        Job::Edit { instruction, image, fit, settings } => {
            let input = fit_input(image, *fit, factor, bucket(&engine.info, EDIT_AREA))?;
            let label = format!("an edit at {}x{}", input.width(), input.height());
            budget::check_vq(engine, input.width() as usize, input.height() as usize, &label)?;
            let grid = engine.vq.encode(&image_io::to_rgb(&input))?;
            let layout = prompter.edit(instruction, &grid)?;
            budget::check_image(engine, &layout, settings, &label)?;
            let codes = sample_with_previews(engine, &layout, settings, None, None, progress)?;
            let decoded = image_io::from_rgb(&engine.vq.decode(&codes)?);
            let work = Work { crops: Vec::new(), width: decoded.width(), height: decoded.height(), region_of: Vec::new() };
            // the document keeps its size: the model's bucket is scaled back
            let (image, codes) = if decoded.dimensions() == image.dimensions() {
                (decoded, Some(codes))
            } else {
                (image::imageops::resize(&decoded, image.width(), image.height(), image::imageops::FilterType::CatmullRom), None)
            };
            Ok(Output::Image {
                parameters: parameters_text(engine, job, image.width() as usize, image.height() as usize, &work),
                image,
                codes,
                work,
            })
        }
        Job::Ask { question, image, fit, gen_length, settings } => {
            if *gen_length > budget::MAX_ANSWER {
                return Err(Error::invalid(format!("the answer length {gen_length} is past the limit of {} positions", budget::MAX_ANSWER)));
            }
            let input = fit_input(image, *fit, factor, bucket(&engine.info, ASK_AREA))?;
            budget::check_vq(engine, input.width() as usize, input.height() as usize, &format!("reading a {}x{} image", input.width(), input.height()))?;
            let grid = engine.vq.encode(&image_io::to_rgb(&input))?;
            let layout = prompter.understanding(question, &grid, *gen_length)?;
            budget::check_answer(engine, &layout, &format!("the answer length {gen_length}"))?;
            let mut bridge = Bridge { engine, inner: progress, original: None, placement: None, height: 0, width: 0 };
            let answer = {
                let _timer = crate::profile::phase("sampling");
                sampler::sample_text(&engine.llada, &engine.special, &layout, settings, &mut bridge)?
            };
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
    placement: Option<Placement>,
    height: usize,
    width: usize,
}

impl Control for Bridge<'_, '_> {
    fn cancelled(&self) -> bool {
        self.inner.cancelled()
    }
    fn image_step(&mut self, s: &sampler::ImageStep<'_>) {
        // a job of several crops counts its steps across all of them
        let (k, n) = self.placement.map_or((0, 1), |p| (p.index, p.count));
        let (step, total) = (k * s.total + s.step, n * s.total);
        self.inner.image_step(&sampler::ImageStep { step, total, cells: s.cells, guess: s.guess, unmasked: s.unmasked });
        let state = PreviewState {
            step,
            total,
            unmasked: s.unmasked,
            height: self.height,
            width: self.width,
            cells: s.cells,
            guess: s.guess,
            original: self.original,
            placement: self.placement,
        };
        self.inner.image_preview(self.engine, &state);
    }
    fn text_step(&mut self, s: &sampler::TextStep<'_>) {
        self.inner.text_step(s);
        self.inner.text_preview(self.engine, s);
    }
}

pub(crate) fn sample_with_previews(
    engine: &Engine,
    layout: &sampler::ImageLayout,
    settings: &ImageSettings,
    original: Option<(&RgbImage, &GrayImage)>,
    placement: Option<Placement>,
    progress: &mut dyn Progress,
) -> Result<CodeGrid> {
    let mut bridge = Bridge { engine, inner: progress, original, placement, height: layout.height, width: layout.width };
    let _timer = crate::profile::phase("sampling");
    sampler::sample_image(&engine.llada, &engine.special, layout, settings, &mut bridge)
}

impl Progress for sampler::Quiet {}
impl Progress for sampler::Callbacks<'_> {}
