//! Paths typed in the Studio: the small window that stands in for a file
//! dialog (File > Open, Save PNG, Model > Open model folder) where the
//! system shows none, and the save paths proposed there and in the close
//! question. Nothing here opens a system dialog (`panels/input.rs` does),
//! so tests drive this route as a user without a dialog would.

use std::path::{Path, PathBuf, MAIN_SEPARATOR};

use super::{PathKind, PathPrompt, Studio};

impl Studio {
    /// Opens the path field for `kind`, filled with where it starts: the last
    /// folder (opening), the path proposed for the document (saving), the
    /// folder of the last model (a model folder).
    pub fn open_path_prompt(&mut self, kind: PathKind) {
        let text = match kind {
            PathKind::Open => self.last_folder().map(|f| folder_text(&f)),
            PathKind::Save(id) => self.proposed_save_path(id, &[]).map(|p| p.display().to_string()),
            PathKind::ModelFolder => {
                self.settings.model_dir.as_deref().and_then(Path::parent).map(folder_text).or_else(|| self.last_folder().map(|f| folder_text(&f)))
            }
        };
        self.path_prompt = Some(PathPrompt { kind, text: text.unwrap_or_default(), error: None });
    }

    /// Uses the path typed: opens, saves or loads it, and closes the field.
    /// A path that cannot be used leaves everything as it was and keeps the
    /// field open, with a message naming the path, to correct it.
    pub fn submit_path_prompt(&mut self) -> bool {
        let Some(p) = self.path_prompt.clone() else { return false };
        let path = expand(&p.text);
        let shown = path.display().to_string();
        let result = if p.text.trim().is_empty() {
            Err("Type a path first.".to_string())
        } else {
            match p.kind {
                PathKind::Open if path.is_dir() => Err(format!("{shown} is a folder: add the name of an image in it.")),
                PathKind::Open if !path.is_file() => Err(format!("There is no file at {shown}.")),
                PathKind::Open => self.open_path(&path).then_some(()).ok_or_else(|| self.last_error(&shown)),
                PathKind::Save(_) if path.is_dir() => Err(format!("{shown} is a folder: add a file name ending in .png.")),
                PathKind::Save(id) => self.save_document(id, &path).then_some(()).ok_or_else(|| self.last_error(&shown)),
                PathKind::ModelFolder if !path.is_dir() => Err(format!("There is no folder at {shown}.")),
                PathKind::ModelFolder => {
                    self.load_model(&path);
                    Ok(())
                }
            }
        };
        match result {
            Ok(()) => {
                self.path_prompt = None;
                true
            }
            Err(e) => {
                if let Some(p) = self.path_prompt.as_mut() {
                    p.error = Some(e);
                }
                false
            }
        }
    }

    /// Where document `id` is saved unless the user says otherwise: where it
    /// was saved before; else beside the photo it came from as
    /// `NAME-unmask.png` (never over the photo); else (a sketch) in the last
    /// folder. A new name never replaces an existing file or one of `taken`.
    pub fn proposed_save_path(&self, id: u64, taken: &[PathBuf]) -> Option<PathBuf> {
        let d = self.documents().find(|d| d.id == id)?;
        if let Some(p) = &d.saved_to {
            return Some(p.clone());
        }
        let (folder, stem) = match &d.path {
            Some(p) => (p.parent().map(Path::to_path_buf), format!("{}-unmask", p.file_stem().unwrap_or_default().to_string_lossy())),
            None => (None, d.title()),
        };
        let folder = folder.filter(|f| !f.as_os_str().is_empty()).or_else(|| self.last_folder()).or_else(home).unwrap_or_else(|| PathBuf::from("."));
        // a tab's label ("sketch #3") may hold what a file name should not
        let stem = file_stem(&stem);
        (1..10_000).map(|i| folder.join(if i == 1 { format!("{stem}.png") } else { format!("{stem}-{i}.png") })).find(|p| !p.exists() && !taken.contains(p))
    }

    /// The reason of the last failure (shown as a notice too), naming `path`.
    fn last_error(&self, path: &str) -> String {
        let why = self.notices.last().map(|n| n.detail.clone()).unwrap_or_default();
        if why.contains(path) {
            why
        } else {
            format!("{path}: {why}")
        }
    }
}

/// A folder as the start of a path to type on: with its trailing separator.
fn folder_text(f: &Path) -> String {
    let s = f.display().to_string();
    if s.ends_with(MAIN_SEPARATOR) {
        s
    } else {
        format!("{s}{MAIN_SEPARATOR}")
    }
}

/// `text` as a plain file name stem: letters, digits, `.`, `_` and single
/// `-` between them ("sketch #3" -> "sketch-3").
fn file_stem(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() || c == '.' || c == '_' {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-').trim_start_matches('.');
    if out.is_empty() {
        "image".into()
    } else {
        out.into()
    }
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

/// The path a user typed or pasted: trimmed, quotes a file manager adds
/// removed, `~/` for the home folder, a `file://` address decoded.
pub(crate) fn expand(text: &str) -> PathBuf {
    let t = text.trim();
    let t = t.strip_prefix(['"', '\'']).and_then(|s| s.strip_suffix(['"', '\''])).unwrap_or(t);
    if let Some(rest) = t.strip_prefix("file://") {
        return PathBuf::from(percent_decode(rest));
    }
    match (t.strip_prefix("~/"), home()) {
        (Some(rest), Some(h)) => h.join(rest),
        _ => PathBuf::from(t),
    }
}

/// `%20` and the like back to bytes (a `file://` address from a file manager).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
