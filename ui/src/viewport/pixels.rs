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

/// The regions' overlay (each mask with its colour, later ones over
/// earlier ones), downscaled like [`fitted`] when it must be.
pub(crate) fn fitted_overlay(layers: &[(&GrayImage, [u8; 3])], max_side: usize) -> ColorImage {
    let Some((first, _)) = layers.first() else { return ColorImage::new([1, 1], vec![egui::Color32::TRANSPARENT]) };
    let (w, h) = (first.width() as usize, first.height() as usize);
    if w.max(h) <= max_side {
        return overlay(layers, Dirty::whole(first));
    }
    let s = max_side as f32 / w.max(h) as f32;
    let (nw, nh) = (((w as f32 * s) as u32).max(1), ((h as f32 * s) as u32).max(1));
    let small: Vec<GrayImage> = layers.iter().map(|(m, _)| image::imageops::resize(*m, nw, nh, image::imageops::FilterType::Nearest)).collect();
    let small_layers: Vec<(&GrayImage, [u8; 3])> = small.iter().zip(layers).map(|(m, (_, c))| (m, *c)).collect();
    overlay(&small_layers, Dirty::whole(&small[0]))
}

/// Overlay pixels (translucent, each region in its colour) for a rectangle
/// of the masks (all of one size).
pub(crate) fn overlay(layers: &[(&GrayImage, [u8; 3])], d: Dirty) -> ColorImage {
    let (w, h) = ((d.x1 - d.x0) as usize, (d.y1 - d.y0) as usize);
    let mut rgba = vec![0u8; w * h * 4];
    for (mask, rgb) in layers {
        let on_px = [rgb[0], rgb[1], rgb[2], 110];
        for y in d.y0..d.y1 {
            for x in d.x0..d.x1 {
                if mask.get_pixel(x, y)[0] > 127 {
                    let o = (((y - d.y0) as usize) * w + (x - d.x0) as usize) * 4;
                    rgba[o..o + 4].copy_from_slice(&on_px);
                }
            }
        }
    }
    ColorImage::from_rgba_unmultiplied([w, h], &rgba)
}

/// The image's mean hue in degrees, each pixel's hue weighted by its
/// saturation (grey pixels have no say) and averaged around the circle;
/// `None` when no hue stands out. About 64k pixels are sampled, so a 12 MP
/// photo costs a millisecond or two (and it is asked once per version).
pub(crate) fn mean_hue(img: &RgbImage) -> Option<f32> {
    let n = img.width() as u64 * img.height() as u64;
    let stride = ((n / 65_536) as usize).max(1);
    let (mut sx, mut sy, mut weight) = (0.0f64, 0.0f64, 0.0f64);
    for p in img.as_raw().chunks_exact(3).step_by(stride) {
        let [r, g, b] = [p[0] as f32, p[1] as f32, p[2] as f32];
        let (max, min) = (r.max(g).max(b), r.min(g).min(b));
        let c = max - min;
        // grey pixels count towards the mean (they dilute it) but have no hue
        weight += 1.0;
        if c < 1.0 {
            continue;
        }
        let h = if max == r {
            ((g - b) / c).rem_euclid(6.0)
        } else if max == g {
            (b - r) / c + 2.0
        } else {
            (r - g) / c + 4.0
        } * 60.0;
        let w = (c / 255.0) as f64;
        let a = (h as f64).to_radians();
        (sx, sy) = (sx + w * a.cos(), sy + w * a.sin());
    }
    // a mean vector this short: grey, or hues all around that cancel out
    if weight == 0.0 || (sx * sx + sy * sy).sqrt() / weight < 0.05 {
        return None;
    }
    Some((sy.atan2(sx).to_degrees() as f32).rem_euclid(360.0))
}

/// Texture options: sharp pixels when zoomed in, smooth when zoomed out.
pub(crate) fn options(scale: f32) -> TextureOptions {
    if scale >= 2.0 {
        TextureOptions::NEAREST
    } else {
        TextureOptions::LINEAR
    }
}
