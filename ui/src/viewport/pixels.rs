//! Pixels for the canvas's textures: images and crop previews as egui
//! images, downscaled to what the GPU allows, the mask as a translucent
//! overlay, and the filtering for a zoom.

use egui::{ColorImage, TextureOptions};
use image::{GrayImage, RgbImage};

use crate::mask_paint::Dirty;

pub(crate) fn color_image(img: &RgbImage) -> ColorImage {
    ColorImage::from_rgb([img.width() as usize, img.height() as usize], img.as_raw())
}

/// A crop preview: its regenerated cells opaque, the rest transparent, so
/// the document's own (sharper) pixels show around them.
pub(crate) fn crop_image(img: &RgbImage, region: Option<&GrayImage>) -> ColorImage {
    let Some(m) = region.filter(|m| m.dimensions() == img.dimensions()) else { return color_image(img) };
    let mut rgba = Vec::with_capacity(img.as_raw().len() / 3 * 4);
    for (p, a) in img.pixels().zip(m.pixels()) {
        rgba.extend_from_slice(&[p[0], p[1], p[2], if a[0] > 127 { 255 } else { 0 }]);
    }
    ColorImage::from_rgba_unmultiplied([img.width() as usize, img.height() as usize], &rgba)
}

/// A texture no larger than the GPU allows: larger images are shown
/// downscaled (the document keeps every pixel).
pub(crate) fn fitted(img: &RgbImage, max_side: usize) -> ColorImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w.max(h) <= max_side {
        return color_image(img);
    }
    let s = max_side as f32 / w.max(h) as f32;
    let (nw, nh) = (((w as f32 * s) as u32).max(1), ((h as f32 * s) as u32).max(1));
    color_image(&image::imageops::resize(img, nw, nh, image::imageops::FilterType::Triangle))
}

/// The mask overlay, downscaled like [`fitted`] when it must be.
pub(crate) fn fitted_overlay(mask: &GrayImage, max_side: usize) -> ColorImage {
    let (w, h) = (mask.width() as usize, mask.height() as usize);
    if w.max(h) <= max_side {
        return overlay(mask, Dirty::whole(mask));
    }
    let s = max_side as f32 / w.max(h) as f32;
    let (nw, nh) = (((w as f32 * s) as u32).max(1), ((h as f32 * s) as u32).max(1));
    let small = image::imageops::resize(mask, nw, nh, image::imageops::FilterType::Nearest);
    overlay(&small, Dirty::whole(&small))
}

/// Mask overlay pixels for a rectangle of the mask.
pub(crate) fn overlay(mask: &GrayImage, d: Dirty) -> ColorImage {
    let (w, h) = ((d.x1 - d.x0) as usize, (d.y1 - d.y0) as usize);
    let mut rgba = Vec::with_capacity(w * h * 4);
    for y in d.y0..d.y1 {
        for x in d.x0..d.x1 {
            let on = mask.get_pixel(x, y)[0] > 127;
            rgba.extend_from_slice(if on { &[255, 64, 64, 110] } else { &[0, 0, 0, 0] });
        }
    }
    ColorImage::from_rgba_unmultiplied([w, h], &rgba)
}

/// Texture options: sharp pixels when zoomed in, smooth when zoomed out.
pub(crate) fn options(scale: f32) -> TextureOptions {
    if scale >= 2.0 {
        TextureOptions::NEAREST
    } else {
        TextureOptions::LINEAR
    }
}
