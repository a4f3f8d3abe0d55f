//! The regions of an `inpaint` from its flags: `--mask` + `--prompt` (one
//! region), `--region MASK PROMPT` repeated, or a `--regions` JSON file.
//! Every mask is checked against the image's size and the memory budget
//! before it is read.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use unmask::error::{Error, Result};
use unmask::image_io;
use unmask::tasks::{self, Region, MAX_REGIONS};

/// A `--regions` file's entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    mask: PathBuf,
    prompt: String,
}

/// The largest `--regions` file read: a list of paths and prompts, not data.
const MAX_REGIONS_FILE: u64 = 1 << 20;

/// The (mask path, prompt, flag that named it) list the flags give.
fn listed(prompt: Option<String>, mask: Option<PathBuf>, region: Vec<String>, regions: Option<PathBuf>) -> Result<Vec<(PathBuf, String, String)>> {
    if let (Some(prompt), Some(mask)) = (prompt, mask) {
        return Ok(vec![(mask, prompt, "--mask".into())]);
    }
    if let Some(file) = regions {
        return read_file(&file);
    }
    if region.is_empty() {
        return Err(Error::invalid("say what to regenerate: --mask MASK.png --prompt \"...\", or --region MASK.png \"PROMPT\" (repeat for more), or --regions FILE.json"));
    }
    // clap hands the pairs over flat: MASK, PROMPT, MASK, PROMPT, ...
    Ok(region.chunks(2).enumerate().map(|(k, p)| (PathBuf::from(&p[0]), p[1].clone(), format!("--region {} (the {})", p[0], ordinal(k + 1)))).collect())
}

fn read_file(file: &Path) -> Result<Vec<(PathBuf, String, String)>> {
    let name = file.display();
    let len = std::fs::metadata(file).map_err(|e| Error::invalid(format!("--regions {name}: {e}")))?.len();
    if len > MAX_REGIONS_FILE {
        return Err(Error::invalid(format!("--regions {name} is {len} bytes; a regions file lists masks and prompts and stays under {MAX_REGIONS_FILE}")));
    }
    let text = std::fs::read_to_string(file).map_err(|e| Error::invalid(format!("--regions {name}: {e}")))?;
    let entries: Vec<Entry> = serde_json::from_str(&text).map_err(|e| {
        Error::invalid(format!("--regions {name}: {e}; write a list like [{{\"mask\": \"sky.png\", \"prompt\": \"a stormy sky\"}}]"))
    })?;
    if entries.is_empty() {
        return Err(Error::invalid(format!("--regions {name} lists no region: give at least one {{\"mask\", \"prompt\"}}")));
    }
    let base = file.parent().unwrap_or(Path::new("."));
    Ok(entries.into_iter().enumerate().map(|(k, e)| (base.join(&e.mask), e.prompt, format!("--regions {name}, entry {}", k + 1))).collect())
}

fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// The job's regions, every mask read and checked against `(w, h)`.
pub fn read(prompt: Option<String>, mask: Option<PathBuf>, region: Vec<String>, regions: Option<PathBuf>, w: u32, h: u32) -> Result<Vec<Region>> {
    let list = listed(prompt, mask, region, regions)?;
    if list.len() > MAX_REGIONS {
        return Err(Error::invalid(format!("{} regions: the limit is {MAX_REGIONS} in one run; merge regions or run them in parts", list.len())));
    }
    tasks::budget::check_masks(list.len(), w as u64, h as u64, &format!("{} region masks of {w}x{h} px", list.len()))?;
    let mut out = Vec::with_capacity(list.len());
    for (path, prompt, flag) in list {
        let m = image_io::mask_of(&image_io::open(&path).map_err(|e| Error::invalid(format!("{flag}: {e}")))?);
        if m.dimensions() != (w, h) {
            return Err(Error::invalid(format!(
                "{flag}: {}: mask is {}x{} but the image is {w}x{h}: paint each mask on the same image",
                path.display(),
                m.width(),
                m.height()
            )));
        }
        out.push(Region::new(m, prompt));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_pairs_become_regions_in_order_naming_each_flag() {
        let l = listed(None, None, vec!["a.png".into(), "sky".into(), "b.png".into(), "hat".into()], None).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!((l[1].0.to_str().unwrap(), l[1].1.as_str()), ("b.png", "hat"));
        assert!(l[1].2.contains("2nd"), "{}", l[1].2);
    }

    #[test]
    fn no_region_at_all_says_which_flags_to_give() {
        let e = listed(None, None, Vec::new(), None).unwrap_err().to_string();
        assert!(e.contains("--region") && e.contains("--mask"), "{e}");
    }

    #[test]
    fn a_regions_file_resolves_masks_beside_it_and_refuses_nonsense() {
        let d = std::env::temp_dir().join(format!("unmask-regions-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let f = d.join("r.json");
        std::fs::write(&f, r#"[{"mask": "m.png", "prompt": "a hat"}]"#).unwrap();
        let l = read_file(&f).unwrap();
        assert_eq!(l[0].0, d.join("m.png"));
        std::fs::write(&f, r#"{"mask": "m.png"}"#).unwrap();
        let e = read_file(&f).unwrap_err().to_string();
        assert!(e.contains("--regions") && e.contains("[{"), "{e}");
        std::fs::write(&f, "[]").unwrap();
        assert!(read_file(&f).unwrap_err().to_string().contains("no region"));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
