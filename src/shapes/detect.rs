//! A detector over the fixed palette, for evaluating generated images: finds
//! coloured blobs and names their colour, shape, size and layout cell.

use image::RgbImage;

use super::render::radius;
use super::world::{Color, Pos, Shape, Size, COLORS};

#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub color: Color,
    pub shape: Shape,
    pub size: Size,
    pub pos: Pos,
    pub area: usize,
}

/// Nearest palette colour when it is close enough; None for white or mixtures.
pub fn classify_pixel(p: [u8; 3]) -> Option<Color> {
    let d = |c: [u8; 3]| -> i32 { (0..3).map(|i| (p[i] as i32 - c[i] as i32).pow(2)).sum() };
    let white = d([255, 255, 255]);
    let (best, dist) = COLORS.iter().map(|&c| (c, d(c.rgb()))).min_by_key(|x| x.1)?;
    (dist < 60 * 60 && dist < white).then_some(best)
}

/// Connected blobs of one palette colour, large enough to be a shape.
pub fn detect(img: &RgbImage) -> Vec<Found> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let side = w.min(h) as u32;
    let labels: Vec<Option<Color>> = img.pixels().map(|p| classify_pixel(p.0)).collect();
    let mut seen = vec![false; w * h];
    let small_area = std::f32::consts::PI * radius(Size::Small, side).powi(2);
    let min_area = (small_area * 0.3) as usize;
    let mut out = Vec::new();
    for start in 0..w * h {
        let Some(color) = labels[start] else { continue };
        if seen[start] {
            continue;
        }
        let mut stack = vec![start];
        seen[start] = true;
        let mut pix = Vec::new();
        while let Some(i) = stack.pop() {
            pix.push(i);
            let (x, y) = (i % w, i / w);
            let mut push = |j: usize| {
                if !seen[j] && labels[j] == Some(color) {
                    seen[j] = true;
                    stack.push(j);
                }
            };
            if x > 0 {
                push(i - 1);
            }
            if x + 1 < w {
                push(i + 1);
            }
            if y > 0 {
                push(i - w);
            }
            if y + 1 < h {
                push(i + w);
            }
        }
        if pix.len() < min_area {
            continue;
        }
        let (mut x0, mut x1, mut y0, mut y1) = (usize::MAX, 0, usize::MAX, 0);
        let (mut sx, mut sy) = (0.0f32, 0.0f32);
        for &i in &pix {
            let (x, y) = (i % w, i / w);
            (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
            sx += x as f32 + 0.5;
            sy += y as f32 + 0.5;
        }
        let n = pix.len() as f32;
        let (cx, cy) = (sx / n, sy / n);
        let (bw, bh) = ((x1 - x0 + 1) as f32, (y1 - y0 + 1) as f32);
        let fill = n / (bw * bh);
        // a triangle is widest at its base; a star across its upper arms
        let mut widths = vec![0usize; y1 - y0 + 1];
        for &i in &pix {
            widths[i / w - y0] += 1;
        }
        let widest = widths.iter().enumerate().max_by_key(|&(r, &c)| (c, r)).map_or(0, |(r, _)| r);
        let widest_at = (widest as f32 + 0.5) / bh;
        let shape = if fill > 0.9 {
            Shape::Square
        } else if fill > 0.68 {
            Shape::Circle
        } else if widest_at > 0.7 && fill > 0.4 {
            Shape::Triangle
        } else {
            Shape::Star
        };
        // halfway between the small and the large diameter
        let mid = radius(Size::Small, side) + radius(Size::Large, side);
        let size = if bw.max(bh) > mid { Size::Large } else { Size::Small };
        let (col, row) = ((cx / (w as f32 / 3.0)).floor().clamp(0.0, 2.0) as u8, (cy / (h as f32 / 3.0)).floor().clamp(0.0, 2.0) as u8);
        out.push(Found { color, shape, size, pos: Pos(row * 3 + col), area: pix.len() });
    }
    out
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::super::render::render;
    use super::super::world::Scene;
    use super::*;

    #[test]
    fn detector_reads_back_rendered_scenes() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for i in 0..2000 {
            let scene = Scene::random(&mut rng);
            // the embedded model's size, and a larger one
            let img = render(&scene, if i % 2 == 0 { 48 } else { 64 });
            let mut found = detect(&img);
            assert_eq!(found.len(), scene.objects.len(), "{}", scene.caption());
            for o in &scene.objects {
                let i = found.iter().position(|f| f.pos == o.pos).unwrap_or_else(|| panic!("{} missing", o.describe()));
                let f = found.remove(i);
                assert_eq!((f.color, f.shape, f.size), (o.color, o.shape, o.size), "{}", scene.caption());
            }
        }
    }
}
