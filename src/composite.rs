//! Puts regenerated pixels back into the original: decoded pixels inside the
//! regenerated region, the original outside, blended across a feather band on
//! the inside of the region's edge. Outside the region every pixel is the
//! original, bit for bit.

use image::{GrayImage, RgbImage};

/// Distance (px) from each pixel to the nearest pixel outside the region
/// (0 outside), by a two-pass 3-4 chamfer transform scaled to pixels.
/// `beyond`: whether past the left, top, right, bottom edge counts as inside.
fn inside_distance(region: &GrayImage, beyond: [bool; 4]) -> Vec<f32> {
    let (w, h) = (region.width() as usize, region.height() as usize);
    let big = f32::MAX / 4.0;
    let mut d: Vec<f32> = region.pixels().map(|p| if p[0] > 127 { big } else { 0.0 }).collect();
    let (a, b) = (1.0f32, 4.0f32 / 3.0);
    let at = |d: &Vec<f32>, x: isize, y: isize| -> f32 {
        // beyond the picture frame counts as inside, so the band hugs the
        // region's own boundary; beyond a crop's edge inside the picture, outside
        if x < 0 {
            if beyond[0] { big } else { 0.0 }
        } else if y < 0 {
            if beyond[1] { big } else { 0.0 }
        } else if x >= w as isize {
            if beyond[2] { big } else { 0.0 }
        } else if y >= h as isize {
            if beyond[3] { big } else { 0.0 }
        } else {
            d[y as usize * w + x as usize]
        }
    };
    for y in 0..h as isize {
        for x in 0..w as isize {
            let i = y as usize * w + x as usize;
            if d[i] > 0.0 {
                let m = (at(&d, x - 1, y) + a).min(at(&d, x, y - 1) + a).min(at(&d, x - 1, y - 1) + b).min(at(&d, x + 1, y - 1) + b);
                d[i] = d[i].min(m);
            }
        }
    }
    for y in (0..h as isize).rev() {
        for x in (0..w as isize).rev() {
            let i = y as usize * w + x as usize;
            if d[i] > 0.0 {
                let m = (at(&d, x + 1, y) + a).min(at(&d, x, y + 1) + a).min(at(&d, x + 1, y + 1) + b).min(at(&d, x - 1, y + 1) + b);
                d[i] = d[i].min(m);
            }
        }
    }
    d
}

/// `region`: 255 where pixels were regenerated. `feather` in pixels (0 = hard edge).
pub fn composite(original: &RgbImage, generated: &RgbImage, region: &GrayImage, feather: f32) -> RgbImage {
    let mut out = original.clone();
    composite_at(&mut out, (0, 0), generated, region, feather);
    out
}

/// Composites `generated` (with its `region`) into `out` with its top-left
/// corner at `at`, in place: a crop pasted back into the full-size image.
/// Pixels of `out` outside the region are not touched.
pub fn composite_at(out: &mut RgbImage, at: (u32, u32), generated: &RgbImage, region: &GrayImage, feather: f32) {
    let (w, h) = generated.dimensions();
    let (ow, oh) = out.dimensions();
    let beyond = [at.0 == 0, at.1 == 0, at.0 + w >= ow, at.1 + h >= oh];
    let dist = inside_distance(region, beyond);
    for (i, g) in generated.pixels().enumerate() {
        let d = dist[i];
        let (x, y) = (at.0 + i as u32 % w, at.1 + i as u32 / w);
        if d <= 0.0 || x >= ow || y >= oh {
            continue;
        }
        // the first pixel inside has d = 1: the weight ramps to 1 over `feather` px
        let t = if feather <= 0.0 { 1.0 } else { (d / feather).min(1.0) };
        let o = out.get_pixel_mut(x, y);
        for c in 0..3 {
            o[c] = (o[c] as f32 * (1.0 - t) + g[c] as f32 * t).round() as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_is_original_and_deep_inside_is_generated() {
        let orig = RgbImage::from_pixel(16, 8, image::Rgb([10, 20, 30]));
        let gen = RgbImage::from_pixel(16, 8, image::Rgb([200, 100, 50]));
        let region = GrayImage::from_fn(16, 8, |x, _| image::Luma([if x >= 8 { 255 } else { 0 }]));
        let out = composite(&orig, &gen, &region, 2.0);
        for x in 0..8 {
            assert_eq!(out.get_pixel(x, 3), orig.get_pixel(x, 3));
        }
        assert_eq!(out.get_pixel(15, 3), gen.get_pixel(15, 3));
        let edge = out.get_pixel(8, 3)[0];
        assert!(edge > 10 && edge < 200, "edge pixel blends: {edge}");
    }
}
