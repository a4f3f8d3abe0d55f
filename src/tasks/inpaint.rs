//! Inpainting a photo of any size: each context crop (see [`crate::crop`]) is
//! cut out, scaled to its working size, regenerated, scaled back and pasted
//! into the full-resolution image.
//!
//! The contract: **the painted area is the changed area.** The model
//! regenerates whole token cells (every cell the paint touches, or with
//! [`Cover::Half`] cells more than half painted, grown by `grow`), but the
//! result is composited through the painted mask itself, feathered `feather`
//! px inward from the painted edge. Pixels outside the painted mask equal
//! the input bit for bit; painted pixels beyond the feather band are the
//! model's. An outpaint's painted mask is its new border, so the original
//! picture is kept exactly.
//!
//! A job holds one or more regions (a mask and its prompt each). They run in
//! their order, every crop of one before the next region, each crop cut from
//! the image as the regions before it left it: a region's context shows its
//! neighbours' new content. Where masks overlap, the later region's pixels
//! stand.

use image::imageops::{self, FilterType};
use image::{GrayImage, ImageBuffer, Pixel, RgbImage};

use super::{sample_with_previews, Placement, Region, MAX_REGIONS};
use crate::composite::composite_at;
use crate::crop::{self, Context, Crop, Rect};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::image_io;
use crate::mask::{self, Cover};
use crate::model::CodeGrid;
use crate::sampler::{ImageSettings, Prompter};
use crate::tasks::Progress;

/// An inpaint job's inputs, borrowed from the [`super::Job`].
pub struct Inpaint<'a> {
    pub regions: &'a [Region],
    pub image: &'a RgbImage,
    pub codes: Option<&'a CodeGrid>,
    pub grow: usize,
    pub cover: Cover,
    pub feather: f32,
    pub context: Context,
    pub content: Option<Rect>,
    pub settings: &'a ImageSettings,
}

/// The part of `img` under `r`, where `r` may reach past the right and bottom
/// edges (the cell padding): those pixels replicate the edge.
pub fn crop_replicated<P: Pixel>(img: &ImageBuffer<P, Vec<P::Subpixel>>, r: Rect) -> ImageBuffer<P, Vec<P::Subpixel>> {
    let (w, h) = img.dimensions();
    ImageBuffer::from_fn(r.w, r.h, |x, y| *img.get_pixel((r.x + x).min(w - 1), (r.y + y).min(h - 1)))
}

/// The cells a crop regenerates, on its working grid: those `cover`
/// selects from the painted mask (mapped to working size), grown by `grow`
/// cells, plus every cell that holds a pixel outside `content` (an outpaint
/// border has nothing to keep). The Studio's overlay and the run both use this.
pub fn crop_cells(mask: &GrayImage, c: &Crop, factor: usize, grow: usize, cover: Cover, content: Option<Rect>) -> Result<(usize, usize, Vec<bool>)> {
    let m = crop_replicated(mask, c.source);
    let (h, w, cells) = match cover {
        Cover::Half => {
            let m = if c.native() { m } else { imageops::resize(&m, c.work_w, c.work_h, FilterType::Triangle) };
            mask::cells_from_mask(&m, factor)?
        }
        Cover::Any => touched_cells(&m, c, factor),
    };
    let mut cells = mask::grow(&cells, h, w, grow);
    if let Some(k) = content {
        let (sx, sy) = (c.source.w as f64 / c.work_w as f64, c.source.h as f64 / c.work_h as f64);
        let f = factor as f64;
        for r in 0..h {
            for col in 0..w {
                let x0 = c.source.x as f64 + col as f64 * f * sx;
                let x1 = x0 + f * sx;
                let y0 = c.source.y as f64 + r as f64 * f * sy;
                let y1 = y0 + f * sy;
                // a pixel is outside when its span reaches past the content box
                let outside = x0 < k.x as f64 || y0 < k.y as f64 || x1 > k.x1() as f64 + 1e-9 || y1 > k.y1() as f64 + 1e-9;
                if outside {
                    cells[r * w + col] = true;
                }
            }
        }
    }
    Ok((h, w, cells))
}

/// The working cells holding at least one painted pixel of `m` (the crop's
/// source, `c.source` sized): a source pixel spans `work / source` working
/// pixels, so it may touch several cells when enlarged.
fn touched_cells(m: &GrayImage, c: &Crop, factor: usize) -> (usize, usize, Vec<bool>) {
    let (h, w) = (c.work_h as usize / factor, c.work_w as usize / factor);
    let mut cells = vec![false; h * w];
    let (sw, sh) = (c.source.w as u64, c.source.h as u64);
    let (ww, wh) = (c.work_w as u64, c.work_h as u64);
    // the cells a source span [p, p + 1) covers along one axis
    let span = |p: u64, src: u64, work: u64, n: usize| {
        let a = (p * work / src) as usize / factor;
        let b = (((p + 1) * work).div_ceil(src) as usize).saturating_sub(1) / factor;
        (a.min(n - 1), b.min(n - 1))
    };
    for (y, row) in m.as_raw().chunks_exact(sw as usize).enumerate() {
        let mut x = 0;
        while x < row.len() {
            if row[x] <= mask::PAINTED_ABOVE {
                x += 1;
                continue;
            }
            // a painted run: its cells in one go
            let x0 = x;
            while x < row.len() && row[x] > mask::PAINTED_ABOVE {
                x += 1;
            }
            let (c0, _) = span(x0 as u64, sw, ww, w);
            let (_, c1) = span(x as u64 - 1, sw, ww, w);
            let (r0, r1) = span(y as u64, sh, wh, h);
            for r in r0..=r1 {
                cells[r * w + c0..=r * w + c1].fill(true);
            }
        }
    }
    (h, w, cells)
}

/// The crops an inpaint of `mask` will run (what the CLI prints before it starts).
/// The working area is the bundle's, shrunk to what fits the memory budget
/// (see [`super::budget::fitted_work_area`]).
pub fn plan(engine: &Engine, image: &RgbImage, mask: &GrayImage, codes: Option<&CodeGrid>, context: Context, settings: &ImageSettings) -> Result<Vec<Crop>> {
    same_size(image, mask)?;
    let f = engine.vq.factor();
    let native = codes_fit(image, codes, f)?.is_some();
    crop::plan(mask, f, context, super::budget::fitted_work_area(engine, settings), native)
}

fn same_size(image: &RgbImage, m: &GrayImage) -> Result<()> {
    if m.dimensions() != image.dimensions() {
        return Err(Error::invalid(format!(
            "mask is {}x{} but the image is {}x{}: paint the mask on the same image",
            m.width(),
            m.height(),
            image.width(),
            image.height()
        )));
    }
    Ok(())
}

/// The image's own codes when they cover it cell for cell; an error when
/// codes were given for another image.
fn codes_fit<'a>(image: &RgbImage, codes: Option<&'a CodeGrid>, factor: usize) -> Result<Option<&'a CodeGrid>> {
    let (gh, gw) = ((image.height() as usize).div_ceil(factor), (image.width() as usize).div_ceil(factor));
    match codes {
        Some(c) if (c.height, c.width) != (gh, gw) => Err(Error::invalid(format!(
            "the codes are a {} x {} grid but the image is {}x{} px = {gh} x {gw} cells: pass the codes this image was made with, or none",
            c.height,
            c.width,
            image.width(),
            image.height()
        ))),
        other => Ok(other),
    }
}

/// The result: the full-size image, and the codes when they still describe
/// it cell for cell (every crop native).
pub struct Inpainted {
    pub image: RgbImage,
    pub codes: Option<CodeGrid>,
    pub crops: Vec<Crop>,
    /// The region each crop served, index into the job's list.
    pub region_of: Vec<usize>,
}

/// One crop of one region, planned before any model work.
struct Planned {
    region: usize,
    crop: Crop,
    h: usize,
    w: usize,
    cells: Vec<bool>,
}

/// Every region's crops and cells, in run order: a list that is empty, too
/// long, of another size than the image, or with a region that selects no
/// cell fails here, before the model runs once.
fn plan_all(engine: &Engine, job: &Inpaint<'_>, native: bool) -> Result<Vec<Planned>> {
    let n = job.regions.len();
    if n == 0 {
        return Err(Error::invalid("an inpaint needs at least one region: a mask and its prompt"));
    }
    if n > MAX_REGIONS {
        return Err(Error::invalid(format!("{n} regions: the limit is {MAX_REGIONS} in one run; merge regions or run them in parts")));
    }
    let factor = engine.vq.factor();
    let area = super::budget::fitted_work_area(engine, job.settings);
    let mut planned = Vec::new();
    for (k, r) in job.regions.iter().enumerate() {
        // several regions: every refusal says which one
        let named = |e: Error| if n > 1 { Error::invalid(format!("region {} (\"{}\"): {e}", k + 1, short(&r.prompt))) } else { e };
        same_size(job.image, &r.mask).map_err(named)?;
        let before = planned.len();
        for c in crop::plan(&r.mask, factor, job.context, area, native).map_err(named)? {
            let (h, w, cells) = crop_cells(&r.mask, &c, factor, job.grow, job.cover, job.content).map_err(named)?;
            if cells.iter().any(|&x| x) {
                planned.push(Planned { region: k, crop: c, h, w, cells });
            }
        }
        if planned.len() == before {
            return Err(named(Error::invalid(format!(
                "the mask selects no token cell: with --cover half a cell regenerates only when more than half of it is painted; \
                 paint more, or use --cover any (every cell the paint touches; only painted pixels change either way). {}",
                image_io::MASK_RULE
            ))));
        }
    }
    Ok(planned)
}

/// A prompt cut to a readable length for an error message.
fn short(prompt: &str) -> String {
    let mut s: String = prompt.chars().take(40).collect();
    if prompt.chars().count() > 40 {
        s.push('…');
    }
    s
}

pub fn run(engine: &Engine, job: &Inpaint<'_>, progress: &mut dyn Progress) -> Result<Inpainted> {
    let image = job.image;
    let (iw, ih) = (image.width() as u64, image.height() as u64);
    super::budget::check_retouch(iw, ih, &format!("retouching a {iw}x{ih} image"))?;
    let factor = engine.vq.factor();
    let f = factor as u32;
    let own = codes_fit(image, job.codes, factor)?;
    // every region's crops and cells first: a mask that selects nothing fails before any model work
    let planned = plan_all(engine, job, own.is_some())?;
    let prompter = Prompter::new(&engine.tokenizer, engine.special);
    let mut out = image.clone();
    let mut codes = own.cloned();
    let all_native = planned.iter().all(|p| p.crop.native());
    let (n, regions) = (planned.len(), job.regions.len());
    for (k, p) in planned.iter().enumerate() {
        let (c, region) = (&p.crop, &job.regions[p.region]);
        if !c.native() {
            // this crop changes pixels the codes describe: later crops encode afresh
            codes = None;
        }
        let src = crop_replicated(&out, c.source);
        let work = if c.native() { src } else { imageops::resize(&src, c.work_w, c.work_h, FilterType::CatmullRom) };
        let grid = match &codes {
            Some(all) => sub_grid(all, c, f),
            None => engine.vq.encode(&image_io::to_rgb(&work))?,
        };
        let cells_px = mask::cells_to_pixels(&p.cells, p.h, p.w, factor);
        // what is pasted back: the painted pixels of the regenerated cells
        let painted = crop_replicated(&region.mask, c.source);
        let layout = prompter.inpaint(&region.prompt, &grid, &p.cells)?;
        super::budget::check_image(engine, &layout, job.settings, &format!("the retouch crop at {}x{}", c.work_w, c.work_h))?;
        let place = Placement { at: c.source, index: k, count: n, region: p.region, regions };
        let result = sample_with_previews(engine, &layout, job.settings, Some((&work, &cells_px)), Some(place), progress)?;
        let decoded = image_io::from_rgb(&engine.vq.decode(&result)?);
        if c.native() {
            composite_at(&mut out, (c.source.x, c.source.y), &decoded, &painted_in(&painted, &cells_px), job.feather);
            if let Some(all) = codes.as_mut() {
                put_grid(all, &result, c, f);
            }
        } else {
            let back = imageops::resize(&decoded, c.source.w, c.source.h, FilterType::CatmullRom);
            let cells_px = imageops::resize(&cells_px, c.source.w, c.source.h, FilterType::Nearest);
            composite_at(&mut out, (c.source.x, c.source.y), &back, &painted_in(&painted, &cells_px), job.feather);
        }
        // a whole-image native crop leaves the model's codes of the padded
        // image; later native crops (other regions) update them in place
        if codes.is_none() && all_native && (c.source.x, c.source.y) == (0, 0) {
            let (gh, gw) = ((image.height()).div_ceil(f) as usize, (image.width()).div_ceil(f) as usize);
            if (result.height, result.width) == (gh, gw) {
                codes = Some(result);
            }
        }
    }
    let region_of = planned.iter().map(|p| p.region).collect();
    Ok(Inpainted { image: out, codes: codes.filter(|_| all_native), crops: planned.into_iter().map(|p| p.crop).collect(), region_of })
}

/// The painted pixels (255) that lie in regenerated cells (`region`, same
/// size): with [`Cover::Any`] every painted pixel; with `Half` a stroke in a
/// cell under half painted stays as it was, as the model never redrew it.
fn painted_in(painted: &GrayImage, region: &GrayImage) -> GrayImage {
    let mut out = painted.clone();
    for (o, r) in out.iter_mut().zip(region.iter()) {
        *o = if *o > mask::PAINTED_ABOVE && *r > mask::PAINTED_ABOVE { 255 } else { 0 };
    }
    out
}

fn sub_grid(all: &CodeGrid, c: &Crop, f: u32) -> CodeGrid {
    let (r0, c0) = ((c.source.y / f) as usize, (c.source.x / f) as usize);
    let (h, w) = ((c.source.h / f) as usize, (c.source.w / f) as usize);
    let mut codes = Vec::with_capacity(h * w);
    for r in r0..r0 + h {
        codes.extend_from_slice(&all.codes[r * all.width + c0..r * all.width + c0 + w]);
    }
    CodeGrid { height: h, width: w, codes }
}

fn put_grid(all: &mut CodeGrid, part: &CodeGrid, c: &Crop, f: u32) {
    let (r0, c0) = ((c.source.y / f) as usize, (c.source.x / f) as usize);
    for r in 0..part.height {
        let dst = (r0 + r) * all.width + c0;
        all.codes[dst..dst + part.width].copy_from_slice(&part.codes[r * part.width..(r + 1) * part.width]);
    }
}

/// An image grown by the given borders (left, right, top, bottom) for
/// outpainting: the new border holds the nearest edge pixel (the model
/// replaces it; only the feather blends it), the mask is white on the border,
/// and the returned box is where the input now lies.
pub fn extend_canvas(image: &RgbImage, left: u32, right: u32, top: u32, bottom: u32) -> Result<(RgbImage, GrayImage, Rect)> {
    let (w, h) = image.dimensions();
    let (nw, nh) = (w as u64 + left as u64 + right as u64, h as u64 + top as u64 + bottom as u64);
    if nw > image_io::MAX_SIDE as u64 || nh > image_io::MAX_SIDE as u64 {
        return Err(Error::invalid(format!(
            "the extended canvas would be {nw}x{nh} px; the limit is {} px a side: add less",
            image_io::MAX_SIDE
        )));
    }
    if left as u64 + right as u64 + top as u64 + bottom as u64 == 0 {
        return Err(Error::invalid("nothing to add: give at least one of --left, --right, --top, --bottom in pixels"));
    }
    // before the canvas exists: a 16k canvas is 1 GiB of pixels before any run
    super::budget::check_extended(w, h, left, right, top, bottom)?;
    let (nw, nh) = (nw as u32, nh as u32);
    let at = Rect { x: left, y: top, w, h };
    let img = RgbImage::from_fn(nw, nh, |x, y| {
        let sx = x.saturating_sub(left).min(w - 1);
        let sy = y.saturating_sub(top).min(h - 1);
        *image.get_pixel(sx, sy)
    });
    let mask = GrayImage::from_fn(nw, nh, |x, y| {
        let inside = x >= at.x && x < at.x1() && y >= at.y && y < at.y1();
        image::Luma([if inside { 0 } else { 255 }])
    });
    Ok((img, mask, at))
}
