//! Scenes drawn as real drawings vary, for the VQ encoder's inputs: the
//! encoder learns to give the designed codes for all of these; the decoder
//! still draws the canonical scene (`render.rs`).
//!
//! Why: drawn only by `render.rs`, the encoder learnt that renderer's exact
//! pixels (a circle 16 px across drawn by another library was read as a
//! square; a colour question about it was wrong half the time). The world now
//! covers, at 48 px (radius in px; `render::radius` is 4 small, 7.04 large):
//!
//! | size | radius | across | answer |
//! |---|---|---|---|
//! | small | 3.0 to 5.3 | 6 to 10.6 px | small |
//! | large | 5.9 to 8.6 | 11.8 to 17.2 px | large |
//!
//! centred anywhere that keeps the shape within a pixel of its cell, with
//! hard or anti-aliased edges, each colour channel within 14 of the palette,
//! a white or near-white ground, and a quarter of images JPEG-compressed
//! (quality 40-95) and a quarter resized down or up and back.

use image::{imageops::FilterType, RgbImage};
use rand::Rng;
use unmask::shapes::render::{inside, radius};
use unmask::shapes::world::{Scene, Size};

/// Radius factors over `render::radius` per size (small, large).
pub const SMALL_SCALE: (f32, f32) = (0.75, 1.32);
pub const LARGE_SCALE: (f32, f32) = (0.84, 1.22);

fn jitter(c: u8, rng: &mut impl Rng) -> u8 {
    (c as i32 + rng.random_range(-14..=14)).clamp(0, 255) as u8
}

/// One scene drawn with random size, offset, edges, colour, ground and
/// degradation from `rng`.
pub fn render_varied(scene: &Scene, side: u32, rng: &mut impl Rng) -> RgbImage {
    let g = if rng.random_bool(0.3) { rng.random_range(238..=255) } else { 255 };
    let mut img = RgbImage::from_pixel(side, side, image::Rgb([g, g, g]));
    let cell = side as f32 / 3.0;
    // supersampling per axis: 1 = hard edges
    let ss: u32 = if rng.random_bool(0.5) { 4 } else { 1 };
    for o in &scene.objects {
        let (lo, hi) = match o.size {
            Size::Small => SMALL_SCALE,
            Size::Large => LARGE_SCALE,
        };
        let r = radius(o.size, side) * rng.random_range(lo..hi);
        let slack = (cell / 2.0 - r + 1.0).max(0.0);
        let cx = (o.pos.col() as f32 + 0.5) * cell + rng.random_range(-slack..=slack);
        let cy = (o.pos.row() as f32 + 0.5) * cell + rng.random_range(-slack..=slack);
        let rgb = o.color.rgb().map(|c| jitter(c, rng));
        let reach = r * 1.25;
        let (x0, x1) = ((cx - reach).floor().max(0.0) as u32, ((cx + reach).ceil().max(0.0) as u32).min(side));
        let (y0, y1) = ((cy - reach).floor().max(0.0) as u32, ((cy + reach).ceil().max(0.0) as u32).min(side));
        for y in y0..y1 {
            for x in x0..x1 {
                let mut hit = 0;
                for sy in 0..ss {
                    for sx in 0..ss {
                        let (px, py) = (x as f32 + (sx as f32 + 0.5) / ss as f32, y as f32 + (sy as f32 + 0.5) / ss as f32);
                        hit += u32::from(inside(o.shape, px - cx, py - cy, r));
                    }
                }
                if hit > 0 {
                    let a = hit as f32 / (ss * ss) as f32;
                    let p = img.get_pixel_mut(x, y);
                    for k in 0..3 {
                        p[k] = (rgb[k] as f32 * a + p[k] as f32 * (1.0 - a)).round() as u8;
                    }
                }
            }
        }
    }
    match rng.random_range(0..4) {
        0 => jpeg(&img, rng.random_range(40..=95)).unwrap_or(img),
        1 => {
            let s = if rng.random_bool(0.5) { rng.random_range(side * 2 / 3..side) } else { rng.random_range(side + 8..side * 2) };
            let f = if rng.random_bool(0.5) { FilterType::Triangle } else { FilterType::CatmullRom };
            let mid = image::imageops::resize(&img, s, s, f);
            image::imageops::resize(&mid, side, side, f)
        }
        _ => img,
    }
}

fn jpeg(img: &RgbImage, quality: u8) -> Option<RgbImage> {
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality).encode_image(img).ok()?;
    image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg).ok().map(|i| i.to_rgb8())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use unmask::shapes::world::{Color, Object, Pos, Shape};

    #[test]
    fn varied_renders_differ_and_keep_the_object_in_its_cell() {
        let scene = Scene { objects: vec![Object { shape: Shape::Square, color: Color::Blue, size: Size::Large, pos: Pos(0) }] };
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let imgs: Vec<RgbImage> = (0..8).map(|_| render_varied(&scene, 48, &mut rng)).collect();
        assert!(imgs.windows(2).any(|w| w[0] != w[1]), "renders vary");
        for img in &imgs {
            // nothing blue outside the top-left cell and its one-pixel margin
            for (x, y, p) in img.enumerate_pixels() {
                let blue = p[2] > 150 && p[0] < 120;
                assert!(!blue || (x < 18 && y < 18), "blue at ({x}, {y})");
            }
        }
    }
}
