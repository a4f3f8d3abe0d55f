//! Where the model looks when it retouches: the context crop (issue 15).
//!
//! A retouch of a 24 MP photo must cost what its region costs, not what the
//! photo costs, and the model must see the region at the scale it was trained
//! at. So each mask island's bounding box is grown by a context margin,
//! clamped to the image, and scaled so that its area is at most the model's
//! working area with sides on the VQ grid. Pure pixel geometry: the UI draws
//! the same boxes the engine runs.
//!
//! The rules, in order:
//! - **Margin** (`Context::Auto`): the island's own width (height) on each
//!   side, at least 4 cells; then at least `sqrt(working area) / max_upscale`
//!   a side (so a 10 px blemish still gets context), aspect at most 4 (the
//!   buckets' limit), clamped to the image. `Margin(px)` grows by exactly that
//!   much (aspect rule still applies); `Whole` is the whole image.
//! - **Scale**: `s = min(sqrt(working area / crop area), max_upscale)`; with
//!   `Whole`, `s <= 1` (today's behaviour on images that fit). A crop is
//!   never enlarged past `max_upscale` (4 by default: beyond it the model only
//!   invents detail the photo never had; the embedded model's bundle says 1,
//!   its world has one scale).
//! - **Native** (the image's own codes are known, and the crop fits the
//!   working area at scale 1): the crop is snapped outwards to whole cells and
//!   run at scale 1, so kept cells keep the model's codes with no VQ round trip.
//! - **Islands**: each island starts as its own crop; two crops are merged
//!   while the merged crop still runs at half or more of the scale of the
//!   finer of the two (so near strokes share one run, far ones get their own),
//!   and always while there are more than [`MAX_CROPS`].

use image::GrayImage;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How much of the image around the mask the model sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Context {
    /// About the region's own size on each side (see the module rules).
    #[default]
    Auto,
    /// This many pixels on each side of the region.
    Margin(u32),
    /// The whole image.
    Whole,
}

impl std::fmt::Display for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Context::Auto => write!(f, "auto"),
            Context::Margin(m) => write!(f, "{m} px"),
            Context::Whole => write!(f, "whole image"),
        }
    }
}

/// The model's working area: how many pixels one run sees at most, and how
/// far a small crop may be enlarged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WorkArea {
    pub area: usize,
    pub max_upscale: f64,
}

impl WorkArea {
    /// Lumina-DiMOO's: 1024 x 1024, enlarged at most 4 times.
    pub const RELEASE: WorkArea = WorkArea { area: 1024 * 1024, max_upscale: 4.0 };

    fn side(&self) -> f64 {
        (self.area as f64).sqrt()
    }
}

/// A rectangle in image pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl Rect {
    pub fn x1(&self) -> u32 {
        self.x + self.w
    }
    pub fn y1(&self) -> u32 {
        self.y + self.h
    }
    fn union(&self, o: &Rect) -> Rect {
        let (x, y) = (self.x.min(o.x), self.y.min(o.y));
        Rect { x, y, w: self.x1().max(o.x1()) - x, h: self.y1().max(o.y1()) - y }
    }
    fn area(&self) -> f64 {
        self.w as f64 * self.h as f64
    }
}

/// One model run: the part of the image it sees and the size it sees it at.
/// `source` lies in the image padded right and bottom to whole cells.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Crop {
    pub source: Rect,
    pub work_w: u32,
    pub work_h: u32,
}

impl Crop {
    /// Working pixels per image pixel (horizontal; vertical differs by at most a cell).
    pub fn scale(&self) -> f64 {
        self.work_w as f64 / self.source.w as f64
    }
    /// Run at scale 1 on whole cells: kept cells can keep the image's own codes.
    pub fn native(&self) -> bool {
        (self.work_w, self.work_h) == (self.source.w, self.source.h)
    }
    pub fn describe(&self) -> String {
        let s = self.source;
        format!("{}x{} at {},{} -> {}x{} (scale {:.3})", s.w, s.h, s.x, s.y, self.work_w, self.work_h, self.scale())
    }
}

/// Most runs one job makes; more islands are merged until they fit.
pub const MAX_CROPS: usize = 8;
/// Islands are found on blocks of this many pixels (a 24 MP mask is 375k blocks).
const BLOCK: u32 = 8;

/// Bounding boxes of the mask's islands (8-connected, on `BLOCK`-pixel
/// blocks, so strokes closer than a block are one island). White (> 127) is
/// the region.
pub fn islands(mask: &GrayImage) -> Vec<Rect> {
    let (w, h) = mask.dimensions();
    let (bw, bh) = (w.div_ceil(BLOCK) as usize, h.div_ceil(BLOCK) as usize);
    let mut on = vec![false; bw * bh];
    let b = BLOCK as usize;
    for (y, row) in mask.as_raw().chunks_exact(w.max(1) as usize).enumerate() {
        let by = y / b;
        // a photo's mask is mostly black: whole zero blocks are skipped 8 bytes at a time
        for (bx, block) in row.chunks(b).enumerate() {
            let zero = match <[u8; 8]>::try_from(block) {
                Ok(a) => u64::from_ne_bytes(a) == 0,
                Err(_) => block.iter().all(|&v| v == 0),
            };
            if !zero && block.iter().any(|&v| v > 127) {
                on[by * bw + bx] = true;
            }
        }
    }
    let mut seen = vec![false; bw * bh];
    let mut out = Vec::new();
    let mut stack = Vec::new();
    for start in 0..on.len() {
        if !on[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
        while let Some(i) = stack.pop() {
            let (bx, by) = (i % bw, i / bw);
            (x0, y0, x1, y1) = (x0.min(bx), y0.min(by), x1.max(bx), y1.max(by));
            for ny in by.saturating_sub(1)..(by + 2).min(bh) {
                for nx in bx.saturating_sub(1)..(bx + 2).min(bw) {
                    let j = ny * bw + nx;
                    if on[j] && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        let (px0, py0) = ((x0 * b) as u32, (y0 * b) as u32);
        let (px1, py1) = ((((x1 + 1) * b) as u32).min(w), (((y1 + 1) * b) as u32).min(h));
        out.push(Rect { x: px0, y: py0, w: px1 - px0, h: py1 - py0 });
    }
    out
}

/// Grows `[a, b)` to at least `want` long inside `[0, limit)`, around its centre.
fn grow_span(a: u32, b: u32, want: u32, limit: u32) -> (u32, u32) {
    let want = want.min(limit);
    if b - a >= want {
        return (a, b);
    }
    let extra = want - (b - a);
    let mut a2 = a.saturating_sub(extra / 2);
    let mut b2 = a2 + want;
    if b2 > limit {
        b2 = limit;
        a2 = limit - want;
    }
    (a2, b2)
}

/// The planner's view of one job.
struct Planner {
    /// Image size (unpadded) and padded to whole cells.
    w: u32,
    h: u32,
    pw: u32,
    ph: u32,
    factor: u32,
    context: Context,
    work: WorkArea,
    native: bool,
}

impl Planner {
    /// The context box of an island box.
    fn context_box(&self, b: &Rect) -> Rect {
        let (x0, y0, x1, y1) = match self.context {
            Context::Whole => return Rect { x: 0, y: 0, w: self.w, h: self.h },
            Context::Margin(m) => (b.x.saturating_sub(m), b.y.saturating_sub(m), (b.x1() + m).min(self.w), (b.y1() + m).min(self.h)),
            Context::Auto => {
                let min_margin = 4 * self.factor;
                let (mx, my) = (b.w.max(min_margin), b.h.max(min_margin));
                let (x0, y0, x1, y1) = (b.x.saturating_sub(mx), b.y.saturating_sub(my), (b.x1() + mx).min(self.w), (b.y1() + my).min(self.h));
                let min_side = (self.work.side() / self.work.max_upscale).ceil() as u32;
                let (x0, x1) = grow_span(x0, x1, min_side, self.w);
                let (y0, y1) = grow_span(y0, y1, min_side, self.h);
                (x0, y0, x1, y1)
            }
        };
        self.aspect_capped(x0, y0, x1, y1)
    }

    /// Grows the short side until the aspect ratio is at most 4.
    fn aspect_capped(&self, x0: u32, y0: u32, x1: u32, y1: u32) -> Rect {
        let (x0, x1) = grow_span(x0, x1, (y1 - y0).div_ceil(4), self.w);
        let (y0, y1) = grow_span(y0, y1, (x1 - x0).div_ceil(4), self.h);
        Rect { x: x0, y: y0, w: x1 - x0, h: y1 - y0 }
    }

    /// The run for a context box: snapped and at scale 1 when native, else scaled.
    fn crop(&self, b: &Rect) -> Crop {
        let f = self.factor;
        if self.native {
            let (x0, y0) = (b.x / f * f, b.y / f * f);
            let (x1, y1) = (b.x1().div_ceil(f) * f, b.y1().div_ceil(f) * f);
            let s = Rect { x: x0, y: y0, w: x1.min(self.pw) - x0, h: y1.min(self.ph) - y0 };
            if s.area() <= self.work.area as f64 {
                return Crop { source: s, work_w: s.w, work_h: s.h };
            }
        }
        let fit = (self.work.area as f64 / b.area()).sqrt();
        let limit = if self.context == Context::Whole { 1.0 } else { self.work.max_upscale };
        let s = fit.min(limit);
        if (s - 1.0).abs() < 1e-9 {
            // scale 1: pad to whole cells (edge replication, as for the whole
            // image), no resampling
            let (cw, ch) = (b.w.div_ceil(f) * f, b.h.div_ceil(f) * f);
            let (x1, y1) = ((b.x + cw).min(self.pw), (b.y + ch).min(self.ph));
            let src = Rect { x: x1 - cw, y: y1 - ch, w: cw, h: ch };
            if src.area() <= self.work.area as f64 {
                return Crop { source: src, work_w: cw, work_h: ch };
            }
        }
        let round = |v: f64| ((v / f as f64).round() as u32).max(1) * f;
        let (mut tw, mut th) = (round(b.w as f64 * s), round(b.h as f64 * s));
        while (tw as usize * th as usize) > self.work.area && (tw > f || th > f) {
            if tw >= th {
                tw -= f;
            } else {
                th -= f;
            }
        }
        Crop { source: *b, work_w: tw, work_h: th }
    }
}

/// Islands beyond this many are first grouped by a 4 x 4 tiling of the image
/// (a speckled mask can have 100,000; the pairwise merge below is quadratic).
const MAX_ISLANDS: usize = 32;

fn group(isl: &[Rect], w: u32, h: u32) -> Vec<Rect> {
    if isl.len() <= MAX_ISLANDS {
        return isl.to_vec();
    }
    let mut tiles: Vec<Option<Rect>> = vec![None; 16];
    for b in isl {
        let (cx, cy) = (b.x + b.w / 2, b.y + b.h / 2);
        let t = ((cy as u64 * 4 / h as u64) * 4 + cx as u64 * 4 / w as u64) as usize;
        tiles[t] = Some(tiles[t].map_or(*b, |u| u.union(b)));
    }
    tiles.into_iter().flatten().collect()
}

/// The runs of an inpaint job over `mask` (the image's size, unpadded).
/// `native`: the image's own codes are known (prefer scale 1).
pub fn plan(mask: &GrayImage, factor: usize, context: Context, work: WorkArea, native: bool) -> Result<Vec<Crop>> {
    let (w, h) = mask.dimensions();
    let f = factor as u32;
    if w == 0 || h == 0 || f == 0 {
        return Err(Error::invalid("empty image or mask"));
    }
    if work.area < factor * factor || !(work.max_upscale >= 1.0) {
        return Err(Error::invalid(format!("working area {} px / upscale {}: the model needs at least one cell", work.area, work.max_upscale)));
    }
    let p = Planner { w, h, pw: w.div_ceil(f) * f, ph: h.div_ceil(f) * f, factor: f, context, work, native };
    let isl = islands(mask);
    if isl.is_empty() {
        return Err(Error::invalid(crate::image_io::empty_mask_message(mask)));
    }
    if context == Context::Whole {
        return Ok(vec![p.crop(&p.context_box(&isl[0]))]);
    }
    let mut boxes: Vec<Rect> = group(&isl, w, h).iter().map(|b| p.context_box(b)).collect();
    loop {
        let scales: Vec<f64> = boxes.iter().map(|b| p.crop(b).scale()).collect();
        let mut best: Option<(f64, usize, usize)> = None;
        for i in 0..boxes.len() {
            for j in i + 1..boxes.len() {
                let u = boxes[i].union(&boxes[j]);
                let u = p.aspect_capped(u.x, u.y, u.x1(), u.y1());
                let ratio = p.crop(&u).scale() / scales[i].max(scales[j]);
                if best.is_none_or(|b| ratio > b.0) {
                    best = Some((ratio, i, j));
                }
            }
        }
        match best {
            Some((ratio, i, j)) if ratio >= 0.5 || boxes.len() > MAX_CROPS => {
                let u = boxes[i].union(&boxes[j]);
                boxes[i] = p.aspect_capped(u.x, u.y, u.x1(), u.y1());
                boxes.swap_remove(j);
            }
            _ => break,
        }
    }
    // top-to-bottom, left-to-right: the order a person reads progress in
    boxes.sort_by_key(|b| (b.y, b.x));
    Ok(boxes.iter().map(|b| p.crop(b)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disc(mask: &mut GrayImage, cx: u32, cy: u32, r: u32) {
        for y in cy - r..cy + r {
            for x in cx - r..cx + r {
                let (dx, dy) = (x as i64 - cx as i64, y as i64 - cy as i64);
                if dx * dx + dy * dy < (r * r) as i64 {
                    mask.put_pixel(x, y, image::Luma([255]));
                }
            }
        }
    }

    #[test]
    fn a_small_region_of_a_big_photo_gets_a_context_crop_at_the_working_area() {
        let mut m = GrayImage::new(6000, 4000);
        disc(&mut m, 3000, 2000, 150);
        let crops = plan(&m, 16, Context::Auto, WorkArea::RELEASE, false).unwrap();
        assert_eq!(crops.len(), 1);
        let c = crops[0];
        // 300 px island + 300 px each side = 900 px, scaled up to fill 1024^2
        assert!(c.source.x <= 2850 && c.source.x1() >= 3150, "{c:?}");
        assert_eq!((c.source.w, c.source.h), (912, 912), "island box on 8 px blocks + its size each side");
        assert!(c.work_w % 16 == 0 && c.work_h % 16 == 0);
        assert!((c.work_w * c.work_h) as usize <= 1024 * 1024);
        assert!(c.work_w >= 1008, "{c:?}");
    }

    #[test]
    fn far_islands_get_their_own_crops_and_near_ones_share() {
        let mut m = GrayImage::new(6000, 4000);
        disc(&mut m, 400, 400, 100);
        disc(&mut m, 5600, 3600, 100);
        assert_eq!(plan(&m, 16, Context::Auto, WorkArea::RELEASE, false).unwrap().len(), 2);
        let mut m = GrayImage::new(6000, 4000);
        disc(&mut m, 1000, 1000, 100);
        disc(&mut m, 1400, 1000, 100);
        assert_eq!(plan(&m, 16, Context::Auto, WorkArea::RELEASE, false).unwrap().len(), 1);
    }

    #[test]
    fn small_crops_are_enlarged_at_most_max_upscale() {
        let mut m = GrayImage::new(2000, 2000);
        disc(&mut m, 1000, 1000, 5);
        let c = plan(&m, 16, Context::Auto, WorkArea::RELEASE, false).unwrap()[0];
        assert!(c.scale() <= 4.0 + 1e-9 && c.scale() > 3.5, "{c:?}");
        assert!(c.source.w >= 256, "min side sqrt(area)/4: {c:?}");
    }

    #[test]
    fn whole_context_on_an_image_that_fits_is_the_padded_image_at_scale_one() {
        let mut m = GrayImage::new(40, 24);
        disc(&mut m, 20, 12, 5);
        let c = plan(&m, 4, Context::Whole, WorkArea::RELEASE, false).unwrap();
        assert_eq!(c, vec![Crop { source: Rect { x: 0, y: 0, w: 40, h: 24 }, work_w: 40, work_h: 24 }]);
        let m = GrayImage::from_pixel(42, 23, image::Luma([255]));
        let c = plan(&m, 4, Context::Whole, WorkArea::RELEASE, false).unwrap()[0];
        assert_eq!((c.source.w, c.source.h, c.work_w, c.work_h), (44, 24, 44, 24));
        assert!(c.native());
    }

    #[test]
    fn native_crops_are_cell_aligned_at_scale_one() {
        let mut m = GrayImage::new(1024, 1024);
        disc(&mut m, 301, 517, 40);
        let c = plan(&m, 16, Context::Auto, WorkArea::RELEASE, true).unwrap()[0];
        assert!(c.native());
        assert_eq!((c.source.x % 16, c.source.y % 16, c.source.w % 16, c.source.h % 16), (0, 0, 0, 0));
    }

    #[test]
    fn a_speckled_mask_plans_quickly_into_few_crops() {
        // 40,000 one-pixel islands, every 30 px
        let mut m = GrayImage::new(6000, 6000);
        for y in (0..6000).step_by(30) {
            for x in (0..6000).step_by(30) {
                m.put_pixel(x, y, image::Luma([255]));
            }
        }
        assert!(islands(&m).len() > 10_000);
        let crops = plan(&m, 16, Context::Auto, WorkArea::RELEASE, false).unwrap();
        assert!(!crops.is_empty() && crops.len() <= MAX_CROPS, "{}", crops.len());
    }

    #[test]
    fn aspect_stays_within_four() {
        let mut m = GrayImage::new(6000, 4000);
        for x in 100..5900 {
            for y in 2000..2010 {
                m.put_pixel(x, y, image::Luma([255]));
            }
        }
        for c in plan(&m, 16, Context::Auto, WorkArea::RELEASE, false).unwrap() {
            assert!(c.source.w <= 4 * c.source.h + 4 && c.source.h <= 4 * c.source.w + 4, "{c:?}");
        }
    }
}
