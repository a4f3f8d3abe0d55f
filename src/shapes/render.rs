//! Draws a scene: flat palette colours on white, no anti-aliasing (every pixel
//! is exactly a palette colour or white).

use image::RgbImage;

use super::world::{Object, Scene, Shape, Size, WHITE};

/// Radius of a shape in pixels on a `side`-pixel canvas.
pub fn radius(size: Size, side: u32) -> f32 {
    let cell = side as f32 / 3.0;
    match size {
        Size::Small => 0.25 * cell,
        Size::Large => 0.44 * cell,
    }
}

pub fn center(obj: &Object, side: u32) -> (f32, f32) {
    let cell = side as f32 / 3.0;
    ((obj.pos.col() as f32 + 0.5) * cell, (obj.pos.row() as f32 + 0.5) * cell)
}

fn star_polygon(r: f32) -> Vec<(f32, f32)> {
    (0..10)
        .map(|i| {
            let a = -std::f32::consts::FRAC_PI_2 + i as f32 * std::f32::consts::PI / 5.0;
            let rr = if i % 2 == 0 { r } else { r * 0.45 };
            (rr * a.cos(), rr * a.sin())
        })
        .collect()
}

fn in_polygon(p: (f32, f32), poly: &[(f32, f32)]) -> bool {
    let mut inside = false;
    for i in 0..poly.len() {
        let (a, b) = (poly[i], poly[(i + 1) % poly.len()]);
        if (a.1 > p.1) != (b.1 > p.1) && p.0 < a.0 + (p.1 - a.1) / (b.1 - a.1) * (b.0 - a.0) {
            inside = !inside;
        }
    }
    inside
}

/// Is the offset (dx, dy) from the centre inside a shape of radius r?
pub fn inside(shape: Shape, dx: f32, dy: f32, r: f32) -> bool {
    match shape {
        Shape::Circle => dx * dx + dy * dy <= r * r,
        Shape::Square => dx.abs() <= r * 0.82 && dy.abs() <= r * 0.82,
        Shape::Triangle => {
            let (top, bottom) = (-r, r * 0.8);
            dy >= top && dy <= bottom && dx.abs() <= (dy - top) / (bottom - top) * r
        }
        Shape::Star => in_polygon((dx, dy), &star_polygon(r * 1.1)),
    }
}

pub fn render(scene: &Scene, side: u32) -> RgbImage {
    let mut img = RgbImage::from_pixel(side, side, image::Rgb(WHITE));
    for o in &scene.objects {
        let (cx, cy) = center(o, side);
        let r = radius(o.size, side);
        let (x0, x1) = ((cx - r * 1.2).floor().max(0.0) as u32, ((cx + r * 1.2).ceil() as u32).min(side));
        let (y0, y1) = ((cy - r * 1.2).floor().max(0.0) as u32, ((cy + r * 1.2).ceil() as u32).min(side));
        for y in y0..y1 {
            for x in x0..x1 {
                if inside(o.shape, x as f32 + 0.5 - cx, y as f32 + 0.5 - cy, r) {
                    img.put_pixel(x, y, image::Rgb(o.color.rgb()));
                }
            }
        }
    }
    img
}
