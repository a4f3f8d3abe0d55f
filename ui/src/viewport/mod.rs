//! The canvas's view state: the screen transform (zoom and pan) and the
//! textures it has uploaded, with the keys that say when one is stale; and
//! the history strip's thumbnails. Plain state: the Studio owns one of each,
//! the canvas draws with them; nothing here knows the Studio.

use egui::{Pos2, Rect, TextureHandle, TextureOptions, Vec2};
use image::RgbImage;

pub(crate) mod pixels;

use pixels::color_image;

/// Screen transform and textures of the canvas.
pub(crate) struct View {
    /// Screen points per image pixel.
    pub(crate) scale: f32,
    /// Screen position of the image's top-left corner.
    pub(crate) origin: Pos2,
    pub(crate) fit_pending: bool,
    pub(crate) rect: Rect,
    /// The image size the view was fitted to: another size refits.
    pub(crate) fitted_size: (u32, u32),
    /// Texture, buffer address, version, sharp (nearest) filtering.
    pub(crate) image_tex: Option<(TextureHandle, u64, usize, bool)>,
    pub(crate) mask_tex: Option<(TextureHandle, u64)>,
    pub(crate) preview_tex: Option<(TextureHandle, u64)>,
    pub(crate) compare_tex: Option<TextureHandle>,
    pub(crate) cells: Option<(u64, Vec<Rect>)>,
    /// The context crops of the current mask (document pixels), same key as `cells`.
    pub(crate) crops: Vec<unmask::crop::Crop>,
    /// The region (index into the document's list) of each crop in `crops`
    /// and of each cell in `cells`: drawn in its colour.
    pub(crate) crop_regions: Vec<usize>,
    pub(crate) cell_regions: Vec<usize>,
    /// The regions' labels as last drawn: region, screen box.
    pub(crate) label_boxes: Vec<(usize, Rect)>,
    /// Crop previews on the GPU, by their box.
    pub(crate) crop_tex: Vec<(unmask::crop::Rect, TextureHandle, u64)>,
    /// Points of the tool gesture in progress, in image pixels.
    pub(crate) gesture: Vec<(f32, f32)>,
    pub(crate) stroke_active: bool,
    /// The user zoomed or panned since the last fit: a resized canvas then
    /// keeps their view instead of refitting.
    pub(crate) user_moved: bool,
    /// The canvas rectangle of the last fit (another one refits).
    pub(crate) fitted_rect: Rect,
    /// The mask overlay's colour, and the automatic one per image (buffer address).
    pub(crate) overlay_rgb: [u8; 3],
    pub(crate) auto_overlay: Option<(u64, [u8; 3])>,
    /// The mask overlay is drawn. A result landing hides it (the result is
    /// what one wants to see); painting or the Show mask toggle (M) brings it back.
    pub(crate) mask_shown: bool,
    /// (document, versions, current) as last drawn: a new version appearing is a result landing.
    pub(crate) seen: Option<(u64, usize, usize)>,
    /// The (document, version) the run in flight started from.
    pub(crate) run_from: Option<(u64, usize)>,
    /// (document, version, parent) of versions made while the canvas watched.
    pub(crate) parents: Vec<(u64, usize, usize)>,
    /// Before/after split: the part of the image width left of the divider.
    pub(crate) split: Option<f32>,
    pub(crate) divider_drag: bool,
    /// The split's "before" texture: texture, buffer address.
    pub(crate) split_tex: Option<(TextureHandle, u64)>,
    /// What the split drew last: (version, screen rect, uv) left, then right.
    pub(crate) split_drawn: Option<[(usize, Rect, Rect); 2]>,
    /// The variant under the pointer in the strip (the strip sets it each
    /// frame, before the canvas draws it instead of the current version).
    pub(crate) hover_variant: Option<usize>,
    pub(crate) variant_tex: Option<(TextureHandle, u64)>,
    /// The variant the canvas drew last frame, if any.
    pub(crate) shown_variant: Option<usize>,
}

impl Default for View {
    fn default() -> Self {
        Self {
            scale: 0.0,
            origin: Pos2::ZERO,
            fit_pending: true,
            rect: Rect::NOTHING,
            fitted_size: (0, 0),
            image_tex: None,
            mask_tex: None,
            preview_tex: None,
            compare_tex: None,
            cells: None,
            crops: Vec::new(),
            crop_regions: Vec::new(),
            cell_regions: Vec::new(),
            label_boxes: Vec::new(),
            crop_tex: Vec::new(),
            gesture: Vec::new(),
            stroke_active: false,
            user_moved: false,
            fitted_rect: Rect::NOTHING,
            overlay_rgb: [255, 60, 60],
            auto_overlay: None,
            mask_shown: true,
            seen: None,
            run_from: None,
            parents: Vec::new(),
            split: None,
            divider_drag: false,
            split_tex: None,
            split_drawn: None,
            hover_variant: None,
            variant_tex: None,
            shown_variant: None,
        }
    }
}

impl View {
    pub(crate) fn image_filter_sharp(&self) -> Option<bool> {
        self.image_tex.as_ref().map(|t| t.3)
    }

    pub(crate) fn stroke_active(&self) -> bool {
        self.stroke_active
    }

    pub(crate) fn to_screen(&self, p: (f32, f32)) -> Pos2 {
        Pos2::new(self.origin.x + p.0 * self.scale, self.origin.y + p.1 * self.scale)
    }

    pub(crate) fn to_image(&self, p: Pos2) -> (f32, f32) {
        ((p.x - self.origin.x) / self.scale, (p.y - self.origin.y) / self.scale)
    }

    /// The whole image in the canvas rectangle (which the panels around it,
    /// the version strip included, are already cut from).
    pub(crate) fn fit(&mut self, size: (u32, u32)) {
        let r = self.rect.shrink(8.0);
        let s = (r.width() / size.0 as f32).min(r.height() / size.1 as f32).max(0.01);
        self.scale = s;
        self.origin = r.center() - Vec2::new(size.0 as f32, size.1 as f32) * s / 2.0;
        self.fit_pending = false;
        self.fitted_size = size;
        self.fitted_rect = self.rect;
        self.user_moved = false;
    }

    /// Whether to fit before drawing: a new image, a fit asked for, or a
    /// canvas of another size (the window resized, or panels settling in
    /// the first frames) while the user has not moved the view by hand.
    pub(crate) fn needs_fit(&self, size: (u32, u32)) -> bool {
        self.fit_pending || self.scale <= 0.0 || self.fitted_size != size || (!self.user_moved && self.fitted_rect != self.rect)
    }

    /// Zooms by `factor` keeping the image point under `at` where it is.
    pub(crate) fn zoom_at(&mut self, factor: f32, at: Pos2) {
        let new = (self.scale * factor).clamp(0.02, 64.0);
        let p = self.to_image(at);
        self.scale = new;
        self.origin = Pos2::new(at.x - p.0 * new, at.y - p.1 * new);
        self.user_moved = true;
    }

    pub(crate) fn pan(&mut self, by: Vec2) {
        if by != Vec2::ZERO {
            self.origin += by;
            self.user_moved = true;
        }
    }

    pub(crate) fn actual_size(&mut self, size: (u32, u32), ppp: f32) {
        let center = self.rect.center();
        self.scale = 1.0 / ppp;
        self.origin = center - Vec2::new(size.0 as f32, size.1 as f32) * self.scale / 2.0;
        self.user_moved = true;
    }

    /// The brush radius in image pixels: the size is in screen points.
    pub(crate) fn brush_radius(&self, size: f32) -> f32 {
        size / 2.0 / self.scale.max(1e-6)
    }
}

/// `size` fitted into `rect` with a margin, centred (a picture shown on its
/// own, outside the document's view: a sketch's preview, a variant).
pub(crate) fn centred(rect: Rect, size: (u32, u32)) -> Rect {
    let (w, h) = (size.0.max(1) as f32, size.1.max(1) as f32);
    let s = ((rect.width() - 16.0) / w).min((rect.height() - 16.0) / h).max(0.0);
    Rect::from_center_size(rect.center(), Vec2::new(w * s, h * s))
}

/// The before/after split of `img` (screen) at `frac` of its width: the
/// screen rectangle and texture coordinates of the left ("before") part,
/// then of the right ("after") part. Each texture covers the whole image,
/// so the two sides meet at the same image column.
pub(crate) fn split_regions(img: Rect, frac: f32) -> [(Rect, Rect); 2] {
    let f = frac.clamp(0.0, 1.0);
    let x = img.left() + img.width() * f;
    let left = Rect::from_min_max(img.min, Pos2::new(x, img.max.y));
    let right = Rect::from_min_max(Pos2::new(x, img.min.y), img.max);
    let uv_left = Rect::from_min_max(Pos2::ZERO, Pos2::new(f, 1.0));
    let uv_right = Rect::from_min_max(Pos2::new(f, 0.0), Pos2::new(1.0, 1.0));
    [(left, uv_left), (right, uv_right)]
}

/// Small textures of history versions, made once per image.
#[derive(Default)]
pub(crate) struct Thumbnails {
    made: std::collections::HashMap<usize, TextureHandle>,
}

impl Thumbnails {
    /// Versions are never changed once made, so the pixel buffer's address
    /// names one for as long as it lives.
    pub(crate) fn get(&mut self, ctx: &egui::Context, img: &RgbImage) -> TextureHandle {
        let key = img.as_ptr() as usize;
        self.made
            .entry(key)
            .or_insert_with(|| {
                let h = 48u32;
                let w = ((img.width() as f32 * h as f32 / img.height().max(1) as f32).round() as u32).clamp(1, 192);
                let small = image::imageops::resize(img, w, h, image::imageops::FilterType::Triangle);
                ctx.load_texture(format!("thumb-{key}"), color_image(&small), TextureOptions::LINEAR)
            })
            .clone()
    }
}
