//! Closing the window: File > Quit and the window's close button go through
//! one question when documents are unsaved. It lists every unsaved document
//! (not only the open one: a sketch in a tab is work too) with where it will
//! be saved, and saves exactly those, discards, or cancels.

use std::path::PathBuf;

use super::paths::expand;
use super::{ClosePrompt, SaveTarget, Studio};

impl Studio {
    /// Asks to close the window: it closes at the next frame when nothing is
    /// unsaved; otherwise the close question lists the unsaved documents.
    pub fn request_close(&mut self) {
        if self.allow_close || !self.has_unsaved_changes() {
            self.allow_close = true;
            self.close_now = true;
            return;
        }
        if self.close_prompt.is_some() {
            return;
        }
        let mut docs: Vec<_> = self.documents().filter(|d| d.dirty).map(|d| (d.id, d.title(), d.saved_to.is_some(), d.path.is_some())).collect();
        docs.sort_by_key(|d| d.0);
        let mut taken: Vec<PathBuf> = Vec::new();
        let mut targets = Vec::new();
        for (id, title, saved, opened) in docs {
            let what = if saved {
                "changed since it was saved"
            } else if opened {
                "changed since it was opened"
            } else {
                "never saved"
            };
            let path = self.proposed_save_path(id, &taken).unwrap_or_default();
            taken.push(path.clone());
            targets.push(SaveTarget { id, name: format!("{title}  ({what})"), path: path.display().to_string() });
        }
        self.close_prompt = Some(ClosePrompt { targets, error: None });
    }

    /// "Save all": saves each listed document to its path, then closes. The
    /// ones that could not be saved stay listed with the reason (the others
    /// are saved) and the window stays open.
    pub fn save_all_and_close(&mut self) -> bool {
        let Some(prompt) = self.close_prompt.take() else { return false };
        let mut left = Vec::new();
        let mut errors = Vec::new();
        for t in prompt.targets {
            if !self.documents().any(|d| d.id == t.id) {
                continue;
            }
            let path = expand(&t.path);
            if t.path.trim().is_empty() {
                errors.push(format!("{}: type where to save it", t.name));
            } else if !self.save_document(t.id, &path) {
                let why = self.notices.last().map(|n| n.detail.clone()).unwrap_or_default();
                errors.push(format!("{}: {why}", path.display()));
            } else {
                continue;
            }
            left.push(t);
        }
        if left.is_empty() {
            self.allow_close = true;
            self.close_now = true;
            return true;
        }
        self.close_prompt = Some(ClosePrompt { targets: left, error: Some(errors.join("\n")) });
        false
    }

    /// "Discard all": closes without saving.
    pub fn discard_and_close(&mut self) {
        self.close_prompt = None;
        self.allow_close = true;
        self.close_now = true;
    }

    /// "Cancel": the window stays open, nothing is saved or lost.
    pub fn cancel_close(&mut self) {
        self.close_prompt = None;
    }
}
