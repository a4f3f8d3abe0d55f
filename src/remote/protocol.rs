//! The wire format of `unmask serve` (docs/server-protocol.md is its
//! reference): a job is a [`JobRequest`] (JSON, images as base64 PNG or
//! JPEG), its events are [`WireEvent`]s, one JSON object per server-sent
//! event. Both directions convert to and from the engine's own [`Job`] and
//! [`Event`], so a remote job is the same job as a local one, bit for bit.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use image::{GrayImage, RgbImage};
use serde::{Deserialize, Serialize};

use crate::crop::{Context, Rect};
use crate::engine::ModelInfo;
use crate::error::{Error, Result};
use crate::image_io;
use crate::mask::Cover;
use crate::model::CodeGrid;
use crate::sampler::{ImageSettings, TextSettings};
use crate::tasks::{checks, FitMode, Job, Output, PreviewFill, Region, Work, MAX_REGIONS};
use crate::worker::{Event, JobId, PreviewOptions};

/// Bumped on any change a client of the previous version would misread.
/// 2: an inpaint carries `regions` (a mask and prompt each); version 1's
/// `prompt` + `mask` are still read, as one region.
pub const PROTOCOL: u32 = 2;
/// The largest request body: a 24 MP photo and its mask as base64 PNG with room to spare.
pub const MAX_BODY: usize = 256 << 20;
/// The largest image a request may carry, in pixels (a 64 MP photo).
pub const MAX_PIXELS: u64 = 64_000_000;
/// The longest prompt, instruction or question, in characters.
pub const MAX_PROMPT: usize = 4096;
/// Previews are decoded at most this often, whatever a client asks.
pub const MIN_PREVIEW_MS: u64 = 50;
/// The header that tells one client from another (see the protocol doc).
pub const CLIENT_HEADER: &str = "x-unmask-client";

/// How a client wants previews: `every_ms` null turns them off.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    pub every_ms: Option<u64>,
    #[serde(default)]
    pub fill: WireFill,
}

impl Default for PreviewRequest {
    fn default() -> Self {
        Self { every_ms: Some(250), fill: WireFill::BestGuess }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireFill {
    #[default]
    BestGuess,
    Neutral,
}

/// One region of an inpaint: its mask (an image like `image`) and its prompt.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionRequest {
    pub mask: String,
    pub prompt: String,
}

/// One job, as a client sends it (`POST /v1/jobs`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case", deny_unknown_fields)]
pub enum JobRequest {
    Generate {
        prompt: String,
        width: usize,
        height: usize,
        settings: ImageSettings,
        #[serde(default)]
        preview: PreviewRequest,
    },
    /// Also outpainting: the canvas already extended, `content` where it has pixels.
    /// `regions` run in order; a version-1 request's `prompt` + `mask` is one region.
    Inpaint {
        #[serde(default)]
        regions: Vec<RegionRequest>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt: Option<String>,
        image: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mask: Option<String>,
        #[serde(default)]
        codes: Option<CodeGrid>,
        #[serde(default)]
        grow: usize,
        /// Absent from older clients: `any`, the painted-area rule.
        #[serde(default)]
        cover: Cover,
        feather: f32,
        #[serde(default)]
        context: Context,
        #[serde(default)]
        content: Option<Rect>,
        settings: ImageSettings,
        #[serde(default)]
        preview: PreviewRequest,
    },
    Edit {
        instruction: String,
        image: String,
        #[serde(default)]
        fit: FitMode,
        settings: ImageSettings,
        #[serde(default)]
        preview: PreviewRequest,
    },
    Ask {
        question: String,
        image: String,
        #[serde(default)]
        fit: FitMode,
        gen_length: usize,
        settings: TextSettings,
        #[serde(default)]
        preview: PreviewRequest,
    },
}

/// What a finished job made.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WireOutput {
    /// `png`: the pixels (base64 PNG, no metadata); `parameters`: the text a
    /// local run writes into its PNG.
    Image { png: String, codes: Option<CodeGrid>, parameters: String, work: Work },
    Answer { text: String, ids: Vec<u32> },
}

/// One event of a job's stream. `job` is the server's id for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WireEvent {
    /// Waiting: `position` jobs run before this one (0: it is next). Sent
    /// when the job is accepted and whenever the queue moves.
    Queued { job: String, position: usize },
    Started { job: String, kind: String },
    /// After every step; `preview` (base64 PNG) only when one was due, with
    /// `preview_at` and `preview_region` as in [`Event::Progress`].
    Progress {
        job: String,
        step: usize,
        total: usize,
        unmasked: usize,
        cells: usize,
        #[serde(default)]
        preview: Option<String>,
        #[serde(default)]
        preview_at: Option<Rect>,
        #[serde(default)]
        preview_region: Option<String>,
    },
    Answer { job: String, text: String, step: usize, total: usize },
    Finished { job: String, elapsed_ms: u64, output: WireOutput },
    Failed { job: String, message: String },
    Cancelled { job: String },
}

impl WireEvent {
    pub fn job(&self) -> &str {
        match self {
            WireEvent::Queued { job, .. }
            | WireEvent::Started { job, .. }
            | WireEvent::Progress { job, .. }
            | WireEvent::Answer { job, .. }
            | WireEvent::Finished { job, .. }
            | WireEvent::Failed { job, .. }
            | WireEvent::Cancelled { job } => job,
        }
    }
    /// The job's last event: the stream ends after it.
    pub fn is_terminal(&self) -> bool {
        matches!(self, WireEvent::Finished { .. } | WireEvent::Failed { .. } | WireEvent::Cancelled { .. })
    }
}

/// `GET /health`: no token needed, so a load balancer can probe it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Health {
    pub ok: bool,
    pub protocol: u32,
    pub version: String,
}

/// `GET /v1/model`: the loaded model and the server's state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerInfo {
    pub protocol: u32,
    pub version: String,
    pub model: ModelInfo,
    /// Jobs waiting plus the one running, over all clients.
    pub queued: usize,
    pub limits: WireLimits,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireLimits {
    pub max_body_bytes: usize,
    pub max_pixels: u64,
    pub max_prompt_chars: usize,
}

impl WireLimits {
    pub fn current() -> Self {
        Self { max_body_bytes: MAX_BODY, max_pixels: MAX_PIXELS, max_prompt_chars: MAX_PROMPT }
    }
}

/// One of this client's jobs (`GET /v1/jobs`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobState {
    pub job: String,
    pub kind: String,
    /// `queued` or `running`.
    pub state: String,
    pub position: Option<usize>,
}

/// Every error body: `{"error": "..."}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

// ---- images ---------------------------------------------------------------

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes a base64 field; `field` names it in the error.
pub fn unb64(s: &str, field: &str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| Error::invalid(format!("`{field}` is not base64 ({e}): send the image file's bytes base64-encoded")))
}

fn png_b64(img: &RgbImage) -> Result<String> {
    Ok(b64(&image_io::png_bytes(img, None)?))
}

fn gray_png_b64(img: &GrayImage) -> Result<String> {
    let mut out = Vec::new();
    image::DynamicImage::ImageLuma8(img.clone())
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .map_err(|e| Error::invalid(format!("encoding a mask: {e}")))?;
    Ok(b64(&out))
}

/// A base64 image field decoded under the engine's decode limits and
/// [`MAX_PIXELS`] (checked from the header, before the pixels are decoded).
pub fn decode_image(s: &str, field: &str) -> Result<image::DynamicImage> {
    let bytes = unb64(s, field)?;
    let name = Path::new(field);
    let (w, h) = image::ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .ok()
        .and_then(|r| r.into_dimensions().ok())
        .ok_or_else(|| Error::image(name, "not a PNG, JPEG, WebP, BMP or GIF image, or its header is damaged"))?;
    if w as u64 * h as u64 > MAX_PIXELS {
        return Err(Error::image(name, format!("{w}x{h} px is over the server's limit of {MAX_PIXELS} pixels: send a smaller image")));
    }
    image_io::decode_bytes(&bytes, name)
}

fn fill_of(p: PreviewRequest) -> PreviewOptions {
    PreviewOptions {
        every: p.every_ms.map(|ms| Duration::from_millis(ms.max(MIN_PREVIEW_MS))),
        fill: match p.fill {
            WireFill::BestGuess => PreviewFill::BestGuess,
            WireFill::Neutral => PreviewFill::Neutral,
        },
    }
}

fn preview_request(p: PreviewOptions) -> PreviewRequest {
    PreviewRequest {
        every_ms: p.every.map(|d| d.as_millis() as u64),
        fill: match p.fill {
            PreviewFill::BestGuess => WireFill::BestGuess,
            PreviewFill::Neutral => WireFill::Neutral,
        },
    }
}

// ---- jobs -----------------------------------------------------------------

/// A job as the client sends it (images as PNG: lossless, so the server sees
/// the client's pixels).
pub fn request_of(job: &Job, preview: PreviewOptions) -> Result<JobRequest> {
    let preview = preview_request(preview);
    Ok(match job {
        Job::Generate { prompt, width, height, settings } => {
            JobRequest::Generate { prompt: prompt.clone(), width: *width, height: *height, settings: settings.clone(), preview }
        }
        Job::Inpaint { regions, image, codes, grow, cover, feather, context, content, settings } => JobRequest::Inpaint {
            regions: regions
                .iter()
                .map(|r| Ok(RegionRequest { mask: gray_png_b64(&r.mask)?, prompt: r.prompt.clone() }))
                .collect::<Result<_>>()?,
            prompt: None,
            image: png_b64(image)?,
            mask: None,
            codes: codes.clone(),
            grow: *grow,
            cover: *cover,
            feather: *feather,
            context: *context,
            content: *content,
            settings: settings.clone(),
            preview,
        },
        Job::Edit { instruction, image, fit, settings } => {
            JobRequest::Edit { instruction: instruction.clone(), image: png_b64(image)?, fit: *fit, settings: settings.clone(), preview }
        }
        Job::Ask { question, image, fit, gen_length, settings } => JobRequest::Ask {
            question: question.clone(),
            image: png_b64(image)?,
            fit: *fit,
            gen_length: *gen_length,
            settings: settings.clone(),
            preview,
        },
    })
}

fn check_text(text: &str, field: &str) -> Result<()> {
    let n = text.chars().count();
    if n > MAX_PROMPT {
        return Err(Error::invalid(format!("`{field}` is {n} characters, over the limit of {MAX_PROMPT}: shorten it")));
    }
    Ok(())
}

fn check_codes(codes: &CodeGrid, image: &RgbImage, info: &ModelInfo) -> Result<()> {
    let f = info.vq_factor;
    if codes.codes.len() != codes.height * codes.width {
        return Err(Error::invalid(format!("`codes`: {} codes for a {} x {} grid", codes.codes.len(), codes.height, codes.width)));
    }
    if (codes.width * f, codes.height * f) != (image.width() as usize, image.height() as usize) {
        return Err(Error::invalid(format!(
            "`codes`: a {} x {} grid does not describe a {}x{} image (factor {f}): send the image's own codes or none",
            codes.height,
            codes.width,
            image.width(),
            image.height()
        )));
    }
    if let Some(c) = codes.codes.iter().find(|&&c| c as usize >= info.codebook_size) {
        return Err(Error::invalid(format!("`codes`: code {c} is outside the codebook of {}", info.codebook_size)));
    }
    Ok(())
}

/// A request checked and turned into the engine's job: everything a request
/// can get wrong without running the model is refused here, before it queues.
pub fn job_of(req: JobRequest, info: &ModelInfo) -> Result<(Job, PreviewOptions)> {
    let f = info.vq_factor;
    match req {
        JobRequest::Generate { prompt, width, height, settings, preview } => {
            check_text(&prompt, "prompt")?;
            checks::side("`width`", width, "", f)?;
            checks::side("`height`", height, "", f)?;
            settings.check()?;
            Ok((Job::Generate { prompt, width, height, settings }, fill_of(preview)))
        }
        JobRequest::Inpaint { regions, prompt, image, mask, codes, grow, cover, feather, context, content, settings, preview } => {
            let image = image_io::to_rgb_on_white(&decode_image(&image, "image")?);
            let regions = regions_of(regions, prompt, mask, &image)?;
            checks::feather("`feather`", feather)?;
            if grow > 4096 {
                return Err(Error::invalid(format!("`grow` {grow}: use 0 to 4096 cells")));
            }
            if let Some(c) = content {
                if c.w == 0 || c.h == 0 || c.x as u64 + c.w as u64 > image.width() as u64 || c.y as u64 + c.h as u64 > image.height() as u64 {
                    return Err(Error::invalid(format!("`content` {}x{}+{}+{} is not inside the {}x{} image", c.w, c.h, c.x, c.y, image.width(), image.height())));
                }
            }
            if let Some(c) = &codes {
                check_codes(c, &image, info)?;
            }
            settings.check()?;
            Ok((Job::Inpaint { regions, image, codes, grow, cover, feather, context, content, settings }, fill_of(preview)))
        }
        JobRequest::Edit { instruction, image, fit, settings, preview } => {
            check_text(&instruction, "instruction")?;
            let image = image_io::to_rgb_on_white(&decode_image(&image, "image")?);
            settings.check()?;
            Ok((Job::Edit { instruction, image, fit, settings }, fill_of(preview)))
        }
        JobRequest::Ask { question, image, fit, gen_length, settings, preview } => {
            check_text(&question, "question")?;
            checks::answer(("`gen_length`", "`settings.block_length`"), gen_length, settings.block_length)?;
            checks::answer_steps("`settings.steps`", settings.steps, gen_length, settings.block_length)?;
            if !settings.temperature.is_finite() || settings.temperature < 0.0 {
                return Err(Error::invalid(format!("`settings.temperature` {}: use 0 or more", settings.temperature)));
            }
            let image = image_io::to_rgb_on_white(&decode_image(&image, "image")?);
            Ok((Job::Ask { question, image, fit, gen_length, settings }, fill_of(preview)))
        }
    }
}

/// An inpaint's regions, checked: `regions`, or version 1's `prompt` +
/// `mask` as one region (not both); each mask decoded at the image's size.
fn regions_of(regions: Vec<RegionRequest>, prompt: Option<String>, mask: Option<String>, image: &RgbImage) -> Result<Vec<Region>> {
    let regions = match (regions.is_empty(), prompt, mask) {
        (false, None, None) => regions,
        (true, Some(prompt), Some(mask)) => vec![RegionRequest { mask, prompt }],
        (true, None, None) => return Err(Error::invalid("`regions` is empty: send at least one { \"mask\", \"prompt\" }")),
        (false, _, _) => return Err(Error::invalid("send `regions` or (protocol 1) `prompt` + `mask`, not both")),
        (true, _, _) => return Err(Error::invalid("`prompt` and `mask` go together (protocol 1); send `regions` instead")),
    };
    if regions.len() > MAX_REGIONS {
        return Err(Error::invalid(format!("`regions` holds {}: the limit is {MAX_REGIONS}", regions.len())));
    }
    let (w, h) = (image.width() as u64, image.height() as u64);
    crate::tasks::budget::check_masks(regions.len(), w, h, &format!("`regions`: {} masks of {w}x{h} px", regions.len()))?;
    let one = regions.len() == 1;
    let mut out = Vec::with_capacity(regions.len());
    for (k, r) in regions.into_iter().enumerate() {
        let field = |f: &str| if one { f.to_string() } else { format!("regions[{k}].{f}") };
        check_text(&r.prompt, &field("prompt"))?;
        let mask = image_io::mask_of(&decode_image(&r.mask, &field("mask"))?);
        if mask.dimensions() != image.dimensions() {
            return Err(Error::invalid(format!(
                "`{}` is {}x{} but `image` is {}x{}: send a mask of the image's size",
                field("mask"),
                mask.width(),
                mask.height(),
                image.width(),
                image.height()
            )));
        }
        out.push(Region { mask, prompt: r.prompt });
    }
    Ok(out)
}

// ---- events ---------------------------------------------------------------

/// The worker's event for job `job` on the wire; `with_preview` false drops
/// the preview image (a client that reads slower than previews come).
pub fn wire_of(e: &Event, job: &str, with_preview: bool) -> Result<Option<WireEvent>> {
    let job = job.to_string();
    Ok(Some(match e {
        Event::Started { kind, .. } => WireEvent::Started { job, kind: kind.to_string() },
        Event::Progress { step, total, unmasked, cells, preview, preview_at, preview_region, .. } => {
            let preview = preview.as_ref().filter(|_| with_preview);
            WireEvent::Progress {
                job,
                step: *step,
                total: *total,
                unmasked: *unmasked,
                cells: *cells,
                preview: preview.map(png_b64).transpose()?,
                preview_at: preview.and(*preview_at),
                preview_region: preview_region.as_ref().filter(|_| preview.is_some()).map(gray_png_b64).transpose()?,
            }
        }
        Event::Answer { text, step, total, .. } => WireEvent::Answer { job, text: text.clone(), step: *step, total: *total },
        Event::Finished { output, elapsed, .. } => WireEvent::Finished {
            job,
            elapsed_ms: elapsed.as_millis() as u64,
            output: match output.as_ref() {
                Output::Image { image, codes, parameters, work } => {
                    WireOutput::Image { png: png_b64(image)?, codes: codes.clone(), parameters: parameters.clone(), work: work.clone() }
                }
                Output::Answer { text, ids } => WireOutput::Answer { text: text.clone(), ids: ids.clone() },
            },
        },
        Event::Failed { message, .. } => WireEvent::Failed { job, message: message.clone() },
        Event::Cancelled { .. } => WireEvent::Cancelled { job },
        Event::Loading { .. } | Event::Loaded(_) | Event::LoadFailed { .. } => return Ok(None),
    }))
}

fn kind_of(k: &str) -> &'static str {
    match k {
        "generate" => "generate",
        "inpaint" => "inpaint",
        "outpaint" => "outpaint",
        "edit" => "edit",
        "ask" => "ask",
        _ => "job",
    }
}

fn rgb_of(s: &str, field: &str) -> Result<RgbImage> {
    Ok(image_io::to_rgb_on_white(&decode_image(s, field)?))
}

/// A wire event as the engine's event for local job `id`; `None` for the
/// events a local worker has no counterpart of (`queued`).
pub fn event_of(w: WireEvent, id: JobId) -> Result<Option<Event>> {
    Ok(Some(match w {
        WireEvent::Queued { .. } => return Ok(None),
        WireEvent::Started { kind, .. } => Event::Started { id, kind: kind_of(&kind) },
        WireEvent::Progress { step, total, unmasked, cells, preview, preview_at, preview_region, .. } => Event::Progress {
            id,
            step,
            total,
            unmasked,
            cells,
            preview: preview.as_deref().map(|p| rgb_of(p, "preview")).transpose()?,
            preview_at,
            preview_region: preview_region.as_deref().map(|p| decode_image(p, "preview_region").map(|i| i.to_luma8())).transpose()?,
        },
        WireEvent::Answer { text, step, total, .. } => Event::Answer { id, text, step, total },
        WireEvent::Finished { elapsed_ms, output, .. } => Event::Finished {
            id,
            elapsed: Duration::from_millis(elapsed_ms),
            output: Box::new(match output {
                WireOutput::Image { png, codes, parameters, work } => Output::Image { image: rgb_of(&png, "output.png")?, codes, parameters, work },
                WireOutput::Answer { text, ids } => Output::Answer { text, ids },
            }),
        },
        WireEvent::Failed { message, .. } => Event::Failed { id, message },
        WireEvent::Cancelled { .. } => Event::Cancelled { id },
    }))
}
