//! Painted pixel masks -> the token cells that regenerate: every cell the
//! painted area touches ([`Cover::Any`], the default), or the release's rule
//! of a mask average > 0.5 (spec section 5, [`Cover::Half`], which the golden
//! fixtures use); optional grow by cells. Which pixels then change is the
//! painted mask's business, not the cells' (see `tasks::inpaint`).

use image::GrayImage;
use serde::{Deserialize, Serialize};

/// Which token cells a painted mask regenerates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cover {
    /// Every cell holding at least one painted pixel: a stroke thinner than a
    /// cell still regenerates.
    #[default]
    Any,
    /// Cells more than half painted (the released code's rule).
    Half,
}

impl std::fmt::Display for Cover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Cover::Any => "any",
            Cover::Half => "half",
        })
    }
}

impl std::str::FromStr for Cover {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "any" => Ok(Cover::Any),
            "half" => Ok(Cover::Half),
            _ => Err(format!("{s:?}: use any (every cell the paint touches) or half (cells more than half painted)")),
        }
    }
}

/// A mask pixel is painted above this value (of 255).
pub const PAINTED_ABOVE: u8 = 127;

use crate::error::{Error, Result};

/// Cells of an `h x w` grid (cell side `factor` px) whose mask average > 0.5.
/// White (255) means regenerate.
pub fn cells_from_mask(mask: &GrayImage, factor: usize) -> Result<(usize, usize, Vec<bool>)> {
    let (mw, mh) = (mask.width() as usize, mask.height() as usize);
    if mw % factor != 0 || mh % factor != 0 {
        return Err(Error::invalid(format!("mask {mw}x{mh} is not a whole number of {factor}-pixel cells")));
    }
    let (h, w) = (mh / factor, mw / factor);
    let mut out = vec![false; h * w];
    let denom = (factor * factor) as f64 * 255.0;
    for r in 0..h {
        for c in 0..w {
            let mut sum = 0u64;
            for y in r * factor..(r + 1) * factor {
                for x in c * factor..(c + 1) * factor {
                    sum += mask.get_pixel(x as u32, y as u32)[0] as u64;
                }
            }
            out[r * w + c] = sum as f64 / denom > 0.5;
        }
    }
    Ok((h, w, out))
}

/// Dilates a cell mask by `by` cells in every direction (a square).
pub fn grow(cells: &[bool], h: usize, w: usize, by: usize) -> Vec<bool> {
    if by == 0 {
        return cells.to_vec();
    }
    let mut out = vec![false; cells.len()];
    for r in 0..h {
        for c in 0..w {
            if cells[r * w + c] {
                for rr in r.saturating_sub(by)..(r + by + 1).min(h) {
                    for cc in c.saturating_sub(by)..(c + by + 1).min(w) {
                        out[rr * w + cc] = true;
                    }
                }
            }
        }
    }
    out
}

/// The cell mask as pixels (255 inside), `w*factor x h*factor`.
pub fn cells_to_pixels(cells: &[bool], h: usize, w: usize, factor: usize) -> GrayImage {
    GrayImage::from_fn((w * factor) as u32, (h * factor) as u32, |x, y| {
        let (r, c) = (y as usize / factor, x as usize / factor);
        image::Luma([if cells[r * w + c] { 255 } else { 0 }])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_above_half_selects_a_cell() {
        // 2x2 cells of 2 px; cell (0,0) 3/4 white, cell (0,1) exactly half white
        let mut m = GrayImage::new(4, 4);
        for (x, y) in [(0, 0), (1, 0), (0, 1), (2, 0), (3, 0)] {
            m.put_pixel(x, y, image::Luma([255]));
        }
        let (h, w, cells) = cells_from_mask(&m, 2).unwrap();
        assert_eq!((h, w), (2, 2));
        assert_eq!(cells, vec![true, false, false, false]);
    }

    #[test]
    fn grow_adds_whole_cells_and_stops_at_edges() {
        let mut cells = vec![false; 9];
        cells[0] = true;
        let g = grow(&cells, 3, 3, 1);
        assert_eq!(g, vec![true, true, false, true, true, false, false, false, false]);
    }
}
