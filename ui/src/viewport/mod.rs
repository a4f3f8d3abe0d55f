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
    /// Crop previews on the GPU, by their box.
    pub(crate) crop_tex: Vec<(unmask::crop::Rect, TextureHandle, u64)>,
    /// Points of the tool gesture in progress, in image pixels.
    pub(crate) gesture: Vec<(f32, f32)>,
    pub(crate) stroke_active: bool,
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
            crop_tex: Vec::new(),
            gesture: Vec::new(),
            stroke_active: false,
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

    pub(crate) fn fit(&mut self, size: (u32, u32)) {
        let r = self.rect.shrink(8.0);
        let s = (r.width() / size.0 as f32).min(r.height() / size.1 as f32).max(0.01);
        self.scale = s;
        self.origin = r.center() - Vec2::new(size.0 as f32, size.1 as f32) * s / 2.0;
        self.fit_pending = false;
        self.fitted_size = size;
    }

    /// Zooms by `factor` keeping the image point under `at` where it is.
    pub(crate) fn zoom_at(&mut self, factor: f32, at: Pos2) {
        let new = (self.scale * factor).clamp(0.02, 64.0);
        let p = self.to_image(at);
        self.scale = new;
        self.origin = Pos2::new(at.x - p.0 * new, at.y - p.1 * new);
    }

    pub(crate) fn actual_size(&mut self, size: (u32, u32), ppp: f32) {
        let center = self.rect.center();
        self.scale = 1.0 / ppp;
        self.origin = center - Vec2::new(size.0 as f32, size.1 as f32) * self.scale / 2.0;
    }
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
