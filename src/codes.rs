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

/// Reads and checks a grid; `codebook` bounds every code.
pub fn read(path: &Path, codebook: usize) -> Result<CodeGrid> {
    let text = crate::input::read_text_capped(path, crate::input::CODES_FILE, "CODES.json")?;
    let j: CodesJson = serde_json::from_str(&text).map_err(|e| Error::image(path, format!("not a CODES.json file: {e}")))?;
    if j.codes.len() != j.height || j.codes.iter().any(|r| r.len() != j.width) || j.height == 0 || j.width == 0 {
        return Err(Error::image(path, format!("`codes` must be {} rows of {} codes", j.height, j.width)));
    }
    let codes: Vec<u32> = j.codes.into_iter().flatten().collect();
    if let Some(bad) = codes.iter().find(|&&c| c as usize >= codebook) {
        return Err(Error::image(path, format!("code {bad} outside the model's codebook of {codebook}")));
    }
    Ok(CodeGrid { height: j.height, width: j.width, codes })
}
