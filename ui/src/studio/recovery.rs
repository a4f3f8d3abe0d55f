//! The session kept on disk for crash recovery: offered back after a crash,
//! saved as documents change, ended by a clean exit.

use std::time::Duration;

use super::{ChatTurn, Mode, Studio};
use crate::document::Document;

impl Studio {
    /// Brings back the documents of a session that did not close cleanly;
    /// the ones open now stay open beside them.
    pub fn restore_session(&mut self) {
        let Some(dir) = self.session_dir.clone() else { return };
        self.restore_offer = None;
        let (docs, problems) = crate::session::restore(&dir);
        let n = docs.len();
        // the prompts come back unless the user has typed new ones since
        let kept = crate::session::prompts(&dir);
        if self.prompt.is_empty() && self.parked_prompt.is_empty() {
            let (now, other) = if self.prompt_mode == Mode::Sketch { (kept.sketch, kept.retouch) } else { (kept.retouch, kept.sketch) };
            (self.prompt, self.parked_prompt) = (now, other);
        }
        for d in docs {
            self.push_document(d, true);
        }
        if !problems.is_empty() {
            self.notify("Part of the last session could not be restored", &problems.join("\n"), true);
        } else {
            self.notify(&format!("Restored {n} document(s) from the last session"), &dir.display().to_string(), false);
        }
        self.session = Some(crate::session::SessionWriter::new(dir));
        self.save_session();
    }

    /// Drops the session that did not close cleanly.
    pub fn discard_session(&mut self) {
        let Some(dir) = self.session_dir.clone() else { return };
        self.restore_offer = None;
        let _ = std::fs::remove_dir_all(&dir);
        self.session = Some(crate::session::SessionWriter::new(dir));
    }

    /// Queues a save of every open document when something changed.
    pub fn save_session(&mut self) {
        let (retouch, sketch) = (self.prompt_of(Mode::Retouch).to_string(), self.prompt_of(Mode::Sketch).to_string());
        let Some(w) = self.session.as_mut() else { return };
        // the open document's Ask history is `chat`; the tabs' are their own
        let open = self.doc.as_ref().map(|d| (d, self.chat.as_slice()));
        let last_is_open = open.is_some();
        let all = self.background.iter().map(|d| (d, d.chat.as_slice())).chain(open);
        // a document with nothing done to it is not worth offering back
        let docs: Vec<(&Document, &[ChatTurn])> =
            all.filter(|(d, c)| d.dirty || d.versions.len() > 1 || !d.mask_is_empty() || !c.is_empty()).collect();
        let last_is_open = last_is_open && docs.last().map(|d| d.0.id) == self.doc.as_ref().map(|d| d.id);
        w.save(&docs, &crate::session::Prompts { retouch, sketch }, last_is_open);
        let failed = w.error.lock().ok().and_then(|mut e| e.take());
        if let Some(e) = failed {
            self.notify("Could not keep the session on disk (crash recovery is off)", &e, true);
        }
    }

    /// Waits until the session on disk is up to date (tests, scripts).
    pub fn flush_session(&mut self) -> bool {
        self.save_session();
        self.session.as_ref().is_none_or(|w| w.flush(Duration::from_secs(30)))
    }

    /// A clean exit: the session is not offered back next time.
    pub fn end_session(&mut self) {
        if let Some(w) = self.session.take() {
            w.end();
        }
    }
}
