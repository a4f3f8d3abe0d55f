//! Rasterising mask tools onto the painted mask (white = regenerate): brush
//! and eraser strokes, rectangles, lassos. Pure pixel code, no egui.

use image::{GrayImage, Luma};

/// A pixel rectangle `[x0, x1) x [y0, y1)` that a tool changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dirty {
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
}

impl Dirty {
    pub fn union(self, o: Dirty) -> Dirty {
        Dirty { x0: self.x0.min(o.x0), y0: self.y0.min(o.y0), x1: self.x1.max(o.x1), y1: self.y1.max(o.y1) }
    }
    pub fn is_empty(&self) -> bool {
        self.x0 >= self.x1 || self.y0 >= self.y1
    }
    pub fn whole(m: &GrayImage) -> Dirty {
        Dirty { x0: 0, y0: 0, x1: m.width(), y1: m.height() }
    }
}

fn clip(m: &GrayImage, x0: f32, y0: f32, x1: f32, y1: f32) -> Dirty {
    let c = |v: f32, max: u32| (v.max(0.0) as u32).min(max);
    Dirty { x0: c(x0.floor(), m.width()), y0: c(y0.floor(), m.height()), x1: c(x1.ceil(), m.width()), y1: c(y1.ceil(), m.height()) }
}

/// Paints (or erases) a disc of `radius` at every point of the segment a-b.
pub fn stroke_segment(m: &mut GrayImage, a: (f32, f32), b: (f32, f32), radius: f32, erase: bool) -> Dirty {
    let r = radius.max(0.5);
    let d = clip(m, a.0.min(b.0) - r, a.1.min(b.1) - r, a.0.max(b.0) + r + 1.0, a.1.max(b.1) + r + 1.0);
    let value = if erase { 0 } else { 255 };
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    for y in d.y0..d.y1 {
        for x in d.x0..d.x1 {
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            // distance from the pixel centre to the segment
            let t = if len2 > 0.0 { (((px - a.0) * dx + (py - a.1) * dy) / len2).clamp(0.0, 1.0) } else { 0.0 };
            let (qx, qy) = (a.0 + t * dx - px, a.1 + t * dy - py);
            if qx * qx + qy * qy <= r * r {
                m.put_pixel(x, y, Luma([value]));
            }
        }
    }
    d
}

/// Fills (or clears) the rectangle spanned by two corners.
pub fn rectangle(m: &mut GrayImage, a: (f32, f32), b: (f32, f32), erase: bool) -> Dirty {
    let d = clip(m, a.0.min(b.0), a.1.min(b.1), a.0.max(b.0), a.1.max(b.1));
    let value = if erase { 0 } else { 255 };
    for y in d.y0..d.y1 {
        for x in d.x0..d.x1 {
            m.put_pixel(x, y, Luma([value]));
        }
    }
    d
}

/// Fills (or clears) a closed polygon, even-odd rule at pixel centres.
pub fn lasso(m: &mut GrayImage, points: &[(f32, f32)], erase: bool) -> Dirty {
    if points.len() < 3 {
        return Dirty { x0: 0, y0: 0, x1: 0, y1: 0 };
    }
    let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for &(x, y) in points {
        (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
    }
    let d = clip(m, x0, y0, x1 + 1.0, y1 + 1.0);
    let value = if erase { 0 } else { 255 };
    for y in d.y0..d.y1 {
        let py = y as f32 + 0.5;
        let mut xs: Vec<f32> = Vec::new();
        for i in 0..points.len() {
            let (a, b) = (points[i], points[(i + 1) % points.len()]);
            if (a.1 <= py) != (b.1 <= py) {
                xs.push(a.0 + (py - a.1) / (b.1 - a.1) * (b.0 - a.0));
            }
        }
        xs.sort_by(|a, b| a.total_cmp(b));
        for pair in xs.chunks(2) {
            if let [s, e] = pair {
                for x in d.x0..d.x1 {
                    let px = x as f32 + 0.5;
                    if px >= *s && px < *e {
                        m.put_pixel(x, y, Luma([value]));
                    }
                }
            }
        }
    }
    d
}

pub fn invert(m: &mut GrayImage) -> Dirty {
    for p in m.pixels_mut() {
        p[0] = 255 - p[0];
    }
    Dirty::whole(m)
}

pub fn clear(m: &mut GrayImage) -> Dirty {
    for p in m.pixels_mut() {
        p[0] = 0;
    }
    Dirty::whole(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brush_covers_the_segment_and_eraser_removes_it() {
        let mut m = GrayImage::new(20, 10);
        stroke_segment(&mut m, (2.0, 5.0), (17.0, 5.0), 2.0, false);
        assert_eq!(m.get_pixel(10, 5)[0], 255);
        assert_eq!(m.get_pixel(10, 0)[0], 0);
        stroke_segment(&mut m, (10.0, 5.0), (10.0, 5.0), 3.0, true);
        assert_eq!(m.get_pixel(10, 5)[0], 0);
        assert_eq!(m.get_pixel(3, 5)[0], 255);
    }

    #[test]
    fn lasso_fills_the_inside_only() {
        let mut m = GrayImage::new(10, 10);
        lasso(&mut m, &[(1.0, 1.0), (9.0, 1.0), (9.0, 9.0), (1.0, 9.0)], false);
        assert_eq!(m.get_pixel(5, 5)[0], 255);
        assert_eq!(m.get_pixel(0, 0)[0], 0);
        invert(&mut m);
        assert_eq!(m.get_pixel(0, 0)[0], 255);
    }
}
