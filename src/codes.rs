//! CODES.json: a VQ code grid as `{"height": h, "width": w, "codes": [[row 0], ...]}`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::CodeGrid;

#[derive(Debug, Serialize, Deserialize)]
struct CodesJson {
    height: usize,
    width: usize,
    codes: Vec<Vec<u32>>,
}

pub fn to_json(grid: &CodeGrid) -> String {
    let rows = grid.codes.chunks(grid.width.max(1)).map(|r| r.to_vec()).collect();
    let j = CodesJson { height: grid.height, width: grid.width, codes: rows };
    serde_json::to_string(&j).unwrap_or_default()
}

pub fn write(path: &Path, grid: &CodeGrid) -> Result<()> {
    // atomic: a full disk never leaves a truncated file where a good one was
    crate::image_io::write_atomic(path, (to_json(grid) + "\n").as_bytes())
}

/// Whether `codes` holds `height` rows of `width` codes, at least one of
/// each; else what is wrong, in words.
fn check_shape(j: &CodesJson) -> std::result::Result<(), String> {
    let (h, w) = (j.height, j.width);
    let none = j.codes.iter().all(|r| r.is_empty());
    if h == 0 || w == 0 {
        let head = if none { "`codes` is empty: " } else { "" };
        return Err(format!("{head}the grid declares {h}x{w} cells (height x width); a codes file needs at least one row of at least one code"));
    }
    if none {
        return Err(format!("`codes` is empty, but the grid declares {h}x{w} cells (height x width): give {h} row(s) of {w} code(s)"));
    }
    if j.codes.len() != h {
        return Err(format!("`codes` has {} row(s) but `height` is {h}: each row of the grid is one list of codes", j.codes.len()));
    }
    if let Some((i, r)) = j.codes.iter().enumerate().find(|(_, r)| r.len() != w) {
        return Err(format!("row {i} of `codes` has {} code(s) but `width` is {w}: every row needs {w}", r.len()));
    }
    Ok(())
}

/// Reads and checks a grid; `codebook` bounds every code.
pub fn read(path: &Path, codebook: usize) -> Result<CodeGrid> {
    let text = crate::input::read_text_capped(path, crate::input::CODES_FILE, "CODES.json")?;
    let j: CodesJson = serde_json::from_str(&text).map_err(|e| Error::image(path, format!("not a CODES.json file: {e}")))?;
    check_shape(&j).map_err(|why| Error::image(path, why))?;
    let codes: Vec<u32> = j.codes.into_iter().flatten().collect();
    if let Some(bad) = codes.iter().find(|&&c| c as usize >= codebook) {
        return Err(Error::image(path, format!("code {bad} outside the model's codebook of {codebook}")));
    }
    Ok(CodeGrid { height: j.height, width: j.width, codes })
}
