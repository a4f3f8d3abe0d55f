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
    // only the region's bounding box needs a distance transform: a retouch
    // region is a small part of its crop
    let Some((x0, y0, x1, y1)) = bbox(region) else { return };
    let sub = image::imageops::crop_imm(region, x0, y0, x1 - x0, y1 - y0).to_image();
    // past the box is outside the region, except where the box meets the
    // crop's edge and the crop meets the picture frame
    let beyond = [x0 == 0 && at.0 == 0, y0 == 0 && at.1 == 0, x1 == w && at.0 + w >= ow, y1 == h && at.1 + h >= oh];
    let dist = inside_distance(&sub, beyond);
    let bw = x1 - x0;
    for (i, &d) in dist.iter().enumerate() {
        if d <= 0.0 {
            continue;
        }
        let (gx, gy) = (x0 + i as u32 % bw, y0 + i as u32 / bw);
        let (x, y) = (at.0 + gx, at.1 + gy);
        if x >= ow || y >= oh {
            continue;
        }
        // the first pixel inside has d = 1: the weight ramps to 1 over `feather` px
        let t = if feather <= 0.0 { 1.0 } else { (d / feather).min(1.0) };
        let g = generated.get_pixel(gx, gy);
        let o = out.get_pixel_mut(x, y);
        for c in 0..3 {
            o[c] = (o[c] as f32 * (1.0 - t) + g[c] as f32 * t).round() as u8;
        }
    }
}

/// The smallest box holding every region pixel (> 127), as (x0, y0, x1, y1).
fn bbox(region: &GrayImage) -> Option<(u32, u32, u32, u32)> {
    let w = region.width() as usize;
    let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
    for (y, row) in region.as_raw().chunks_exact(w.max(1)).enumerate() {
        let Some(first) = row.iter().position(|&v| v > 127) else { continue };
        let last = row.iter().rposition(|&v| v > 127).unwrap_or(first);
        (x0, x1) = (x0.min(first as u32), x1.max(last as u32 + 1));
        (y0, y1) = (y0.min(y as u32), y as u32 + 1);
    }
    (x0 != u32::MAX).then_some((x0, y0, x1, y1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_inside_a_crop_blends_only_inside_and_ramps_at_every_edge() {
        // a 4 x 4 region in the middle of a 16 x 16 crop placed inside a larger image
        let mut out = RgbImage::from_pixel(64, 64, image::Rgb([0, 0, 0]));
        let gen = RgbImage::from_pixel(16, 16, image::Rgb([200, 200, 200]));
        let region = GrayImage::from_fn(16, 16, |x, y| image::Luma([if (6..10).contains(&x) && (6..10).contains(&y) { 255 } else { 0 }]));
        composite_at(&mut out, (20, 20), &gen, &region, 2.0);
        for (x, y, p) in out.enumerate_pixels() {
            let inside = (26..30).contains(&x) && (26..30).contains(&y);
            if !inside {
                assert_eq!(p[0], 0, "{x},{y} outside the region");
            }
        }
        // the ring next to the region's edge is blended, not the generated value
        assert!(out.get_pixel(26, 27)[0] > 0 && out.get_pixel(26, 27)[0] < 200);
        assert!(out.get_pixel(29, 27)[0] > 0 && out.get_pixel(29, 27)[0] < 200);
        // a region touching the picture frame is not ramped there
        let mut out = RgbImage::from_pixel(16, 16, image::Rgb([0, 0, 0]));
        let region = GrayImage::from_fn(16, 16, |x, _| image::Luma([if x < 4 { 255 } else { 0 }]));
        composite_at(&mut out, (0, 0), &gen, &region, 2.0);
        assert_eq!(out.get_pixel(0, 8)[0], 200);
    }

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
