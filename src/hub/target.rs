//! The bundle folder a download makes (issue 30): `download` owns only what
//! it makes. An existing `--dir` is used only when it is a complete download
//! of the same repo and revision (reported as there, nothing fetched) or an
//! empty folder; anything else is refused before any network work, and
//! nothing in it is touched. The work happens in `DIR.incomplete`, which is
//! ours only when it holds our manifest (or is empty), and becomes `DIR` in
//! one rename, which fails rather than replace a folder that has files.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{check, Entry, Request, MANIFEST, SOURCE};
use crate::error::{Error, Result};

/// What a download was: written as the manifest of `DIR.incomplete` while
/// it runs, and as `unmask-source.json` in the finished bundle.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub repo: String,
    pub revision: String,
    pub commit: String,
    pub files: Vec<Entry>,
}

impl Record {
    /// A manifest or source file; older unmask wrote the bare file list.
    pub fn read(path: &Path) -> Option<Record> {
        let bytes = crate::input::read_capped(path, 16 << 20, "download manifest").ok()?;
        serde_json::from_slice::<Record>(&bytes).ok().or_else(|| {
            let files: Vec<Entry> = serde_json::from_slice(&bytes).ok()?;
            Some(Record { repo: String::new(), revision: String::new(), commit: String::new(), files })
        })
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        std::fs::write(path, serde_json::to_vec_pretty(self).unwrap_or_default()).map_err(|e| Error::bundle(path, format!("cannot write: {e}")))
    }

    fn is_of(&self, req: &Request) -> bool {
        self.repo == req.repo && (self.revision == req.revision || self.commit.eq_ignore_ascii_case(&req.revision))
    }

    /// The first file that is not there at its size, if any.
    fn missing(&self, dir: &Path) -> Option<&str> {
        self.files
            .iter()
            .find(|e| check::file_name(&e.name).is_err() || !std::fs::metadata(dir.join(&e.name)).is_ok_and(|m| m.is_file() && m.len() == e.size))
            .map(|e| e.name.as_str())
    }
}

pub fn partial_dir(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".incomplete");
    dir.with_file_name(name)
}

/// What to do with `req.dir`, decided from the disk alone.
pub enum Target {
    /// Fetch into `DIR.incomplete`, then rename it to `DIR` (absent or empty).
    Fetch,
    /// Already a complete download of this repo and revision.
    There(Record),
}

/// The first entry of a folder (sorted), for a message.
fn first_entry(dir: &Path) -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir).ok()?.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names.into_iter().next()
}

pub fn check(req: &Request) -> Result<Target> {
    let dir = &req.dir;
    let shown = dir.display();
    if !matches!(dir.components().next_back(), Some(Component::Normal(_))) {
        return Err(Error::invalid(format!("--dir {shown}: name the folder to create (not `.`, `..` or a root)")));
    }
    let untouched = "nothing in it was changed";
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::bundle(dir, format!("cannot look at it: {e}"))),
        Ok(m) => {
            // a finished download (through a link too) is reported, not refetched
            let record = Record::read(&dir.join(SOURCE)).filter(|_| std::fs::metadata(dir).is_ok_and(|m| m.is_dir()));
            if let Some(r) = &record {
                if !r.is_of(req) {
                    return Err(Error::invalid(format!(
                        "{shown} already holds {} (revision {}), not {} (revision {}): choose another --dir; {untouched}",
                        r.repo, r.revision, req.repo, req.revision
                    )));
                }
                if dir.join(MANIFEST).exists() {
                    // not ours to judge; fall through to the refusal below
                } else if let Some(f) = r.missing(dir) {
                    return Err(Error::invalid(format!(
                        "{shown} is a download of {} (revision {}) whose {f} is missing or changed: move it away and run again, or choose another --dir; {untouched}",
                        r.repo, r.revision
                    )));
                } else {
                    return Ok(Target::There(r.clone()));
                }
            }
            if m.file_type().is_symlink() {
                return Err(Error::invalid(format!("{shown} is a link: give the folder to create itself as --dir; {untouched}")));
            }
            if !m.is_dir() {
                return Err(Error::invalid(format!("{shown} exists and is not a folder: choose another --dir; {untouched}")));
            }
            if let Some(first) = first_entry(dir) {
                return Err(Error::invalid(if dir.join("config.json").is_file() {
                    format!("{shown} already holds a model that `unmask download` did not record as {} (revision {}): use it as it is with --model, or choose another --dir; {untouched}", req.repo, req.revision)
                } else {
                    format!("{shown} already exists and holds other files (e.g. {first}): `unmask download` only creates a new folder; choose another --dir; {untouched}")
                }));
            }
        }
    }
    let part = partial_dir(dir);
    match std::fs::symlink_metadata(&part) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::bundle(&part, format!("cannot look at it: {e}"))),
        Ok(m) => {
            let ours = m.is_dir() && (part.join(MANIFEST).is_file() || part.join(SOURCE).is_file() || first_entry(&part).is_none());
            if !ours {
                return Err(Error::invalid(format!(
                    "{} exists but is not an unfinished download (it has no {MANIFEST}): move it away or choose another --dir; {untouched}",
                    part.display()
                )));
            }
        }
    }
    Ok(Target::Fetch)
}

/// Readies `DIR.incomplete` for `record`: creates it, drops the files an
/// earlier manifest named that this one does not (ours: a download of
/// another revision), and writes the manifest.
pub fn prepare(part: &Path, record: &Record) -> Result<()> {
    std::fs::create_dir_all(part).map_err(|e| Error::bundle(part, format!("cannot create: {e}")))?;
    if let Some(old) = Record::read(&part.join(MANIFEST)).or_else(|| Record::read(&part.join(SOURCE))) {
        for e in &old.files {
            let keep = record.files.iter().any(|n| n.name == e.name && n.size == e.size);
            if !keep && check::file_name(&e.name).is_ok() && std::fs::symlink_metadata(part.join(&e.name)).is_ok_and(|m| m.is_file()) {
                let _ = std::fs::remove_file(part.join(&e.name));
            }
        }
    }
    let _ = std::fs::remove_file(part.join(SOURCE));
    record.write(&part.join(MANIFEST))
}

/// `DIR.incomplete`, complete, becomes `DIR`: the record first (so a crash
/// here leaves a folder still known as ours), then one rename, which fails
/// rather than replace anything but an empty folder.
pub fn finish(part: &Path, dir: &Path, record: &Record) -> Result<()> {
    record.write(&part.join(SOURCE))?;
    let _ = std::fs::remove_file(part.join(MANIFEST));
    std::fs::rename(part, dir).map_err(|e| {
        Error::invalid(format!(
            "{}: cannot move the finished download in place ({e}): it is complete in {}; move {} away and run again",
            dir.display(),
            part.display(),
            dir.display()
        ))
    })
}
