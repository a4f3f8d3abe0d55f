//! A second renderer of scenes, for evaluation only: pictures "drawn
//! elsewhere". Independent code (tiny-skia's anti-aliased rasterizer, not
//! `render.rs`), its own geometry (a shape is sized by how far it reaches
//! across, squares fill 0.86 of that, triangles are as wide as they reach,
//! stars have a 0.4 inner ratio), and sizes and offsets the world's renderer
//! never draws: small shapes 7 to 9.5 px across and large ones 15 to 16.5 px
//! at 48 px (the world: 8 and about 14), each off its cell's centre by up to
//! what keeps it within half a pixel of the cell. Training never sees it.

use image::RgbImage;
use rand::Rng;
use tiny_skia::{FillRule, Paint, PathBuilder, Pixmap, Transform};

use super::world::{Object, Scene, Shape, Size};

/// How far a foreign shape of `size` reaches across, in px at 48 px.
pub const SMALL_ACROSS: (f32, f32) = (7.0, 9.5);
pub const LARGE_ACROSS: (f32, f32) = (15.0, 16.5);

fn path(shape: Shape, cx: f32, cy: f32, across: f32) -> Option<tiny_skia::Path> {
    let h = across / 2.0;
    match shape {
        Shape::Circle => PathBuilder::from_circle(cx, cy, h),
        Shape::Square => {
            let s = across * 0.86;
            tiny_skia::Rect::from_xywh(cx - s / 2.0, cy - s / 2.0, s, s).map(PathBuilder::from_rect)
        }
        Shape::Triangle => {
            let mut pb = PathBuilder::new();
            pb.move_to(cx, cy - h);
            pb.line_to(cx + h, cy + h * 0.85);
            pb.line_to(cx - h, cy + h * 0.85);
            pb.close();
            pb.finish()
        }
        Shape::Star => {
            let mut pb = PathBuilder::new();
            for i in 0..10 {
                let a = -std::f32::consts::FRAC_PI_2 + i as f32 * std::f32::consts::PI / 5.0;
                let r = if i % 2 == 0 { h * 1.05 } else { h * 1.05 * 0.4 };
                let (x, y) = (cx + r * a.cos(), cy + r * a.sin());
                if i == 0 {
                    pb.move_to(x, y)
                } else {
                    pb.line_to(x, y)
                }
            }
            pb.close();
            pb.finish()
        }
    }
}

/// Where and how large `o` is drawn on a `side`-px canvas: (cx, cy, across).
fn placement(o: &Object, side: u32, rng: &mut impl Rng) -> (f32, f32, f32) {
    let k = side as f32 / 48.0;
    let (lo, hi) = match o.size {
        Size::Small => SMALL_ACROSS,
        Size::Large => LARGE_ACROSS,
    };
    let across = rng.random_range(lo..hi) * k;
    let cell = side as f32 / 3.0;
    let slack = ((cell - across) / 2.0).max(0.0) + 0.5 * k;
    let (cx, cy) = ((o.pos.col() as f32 + 0.5) * cell, (o.pos.row() as f32 + 0.5) * cell);
    (cx + rng.random_range(-slack..=slack), cy + rng.random_range(-slack..=slack), across)
}

/// Draws `scene` on white, anti-aliased, with sizes and offsets from `rng`.
pub fn render_foreign(scene: &Scene, side: u32, rng: &mut impl Rng) -> RgbImage {
    let Some(mut pm) = Pixmap::new(side, side) else { return RgbImage::from_pixel(side, side, image::Rgb([255, 255, 255])) };
    pm.fill(tiny_skia::Color::WHITE);
    for o in &scene.objects {
        let (cx, cy, across) = placement(o, side, rng);
        let [r, g, b] = o.color.rgb();
        let mut paint = Paint::default();
        paint.set_color_rgba8(r, g, b, 255);
        paint.anti_alias = true;
        if let Some(p) = path(o.shape, cx, cy, across) {
            pm.fill_path(&p, &paint, FillRule::Winding, Transform::identity(), None);
        }
    }
    // opaque everywhere, so premultiplied RGBA is plain RGBA
    let rgb: Vec<u8> = pm.data().chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
    RgbImage::from_raw(side, side, rgb).unwrap_or_else(|| RgbImage::new(side, side))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shapes::world::{Color, Pos};
    use rand::SeedableRng;

    #[test]
    fn a_large_foreign_circle_is_wider_than_the_worlds_and_anti_aliased() {
        let scene = Scene { objects: vec![Object { shape: Shape::Circle, color: Color::Red, size: Size::Large, pos: Pos(4) }] };
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let img = render_foreign(&scene, 48, &mut rng);
        let red = |p: &image::Rgb<u8>| p[0] > 200 && p[1] < 120;
        let row: Vec<u32> = (0..48).filter(|&x| red(img.get_pixel(x, 24))).collect();
        let across = row.len();
        assert!((14..=17).contains(&across), "{across} px across");
        let own = super::super::render::render(&scene, 48);
        let own_across = (0..48).filter(|&x| red(own.get_pixel(x, 24))).count();
        assert!(across > own_across, "foreign {across} vs own {own_across}");
        // blended edge pixels: neither white nor the palette colour
        assert!(img.pixels().any(|p| p[0] > 225 && p[1] > 60 && p[1] < 240), "anti-aliased edges");
    }
}
