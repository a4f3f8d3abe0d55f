//! The Studio's state and what the user can do with it. Every action is a
//! plain method (tests call them, and so do the widgets); the model runs on
//! the engine's worker thread, so nothing here waits on it.
//!
//! This file holds the state and the queries every part reads; each child
//! module adds the actions of one topic to [`Studio`] and depends only on
//! this file, `state` and the children listed before it:
//! `regions` (the open document's regions and the prompt field that
//! edits the selected one's prompt), `runs` (starting and cancelling
//! runs), `documents` (open, save, tabs, versions, Extend canvas), `model` (model folders, the server, the
//! download), `recovery` (the session kept on disk), `plan` (the crops and
//! cells a retouch will work on), `events` (the worker's events, once a
//! frame), `paths` (paths typed in the Studio instead of a file dialog, the
//! last folder), `closing` (the question before closing with unsaved
//! documents), `startup` ([`Studio::new`]).

use std::path::PathBuf;
use std::sync::Arc;

use unmask::engine::ModelInfo;

use crate::backend::Backend;
use crate::document::{Document, Version};
use crate::settings::Settings;
use crate::viewport::{Thumbnails, View};

mod closing;
mod documents;
mod events;
mod model;
mod paths;
mod plan;
mod recovery;
mod regions;
mod runs;
mod startup;
mod state;

pub use state::{ChatTurn, ClosePrompt, Describing, Mode, ModelStatus, Notice, NoticeKind, PathKind, PathPrompt, Run, RunKind, SaveTarget, Tool};

/// Notices kept at most (the oldest go first).
const MAX_NOTICES: usize = 12;

pub struct StudioOptions {
    /// Where settings persist; `None` keeps them in memory only.
    pub settings_path: Option<PathBuf>,
    /// Model folder to load at start (else the saved one, else the embedded model).
    pub model_dir: Option<PathBuf>,
    /// Image to open at start.
    pub open: Option<PathBuf>,
    /// Repainted when the worker has news.
    pub ctx: Option<egui::Context>,
    /// Where the session is kept for crash recovery; `None` keeps nothing.
    pub session_dir: Option<PathBuf>,
}

pub struct Studio {
    pub settings: Settings,
    settings_path: Option<PathBuf>,
    saved_settings: Settings,
    worker: Backend,
    pub model: ModelStatus,
    pub doc: Option<Document>,
    /// Set it with [`Studio::set_mode`]: Retouch and Sketch keep a prompt each.
    pub mode: Mode,
    pub tool: Tool,
    /// The prompt of the mode last switched to by [`Studio::set_mode`]
    /// (`prompt_mode`); the other image mode's waits in `parked_prompt`.
    pub prompt: String,
    parked_prompt: String,
    prompt_mode: Mode,
    pub question: String,
    /// Ask about the whole image even when the selected region is painted
    /// (else Ask answers about that region's context crop).
    pub ask_whole: bool,
    /// A Describe run's state (with `RunKind::Describe`).
    pub describing: Option<Describing>,
    /// The region being renamed and the name typed so far.
    pub(crate) renaming: Option<(usize, String)>,
    /// The open document's Ask history (each document keeps its own: the
    /// others' are in their `Document::chat`).
    pub chat: Vec<ChatTurn>,
    pub run: Option<Run>,
    /// The serial the next run gets ([`Run::serial`]).
    next_run: u64,
    /// Finished variants waiting for the user's pick, and their document.
    pub variants: Vec<Version>,
    variants_doc: Option<u64>,
    /// Open documents other than `doc` (tabs).
    pub background: Vec<Document>,
    pub notices: Vec<Notice>,
    /// Set while the user holds the compare key.
    pub comparing: bool,
    /// The close was stopped to ask about these unsaved documents.
    pub close_prompt: Option<ClosePrompt>,
    /// The window may close (everything saved, or the user chose to discard).
    pub allow_close: bool,
    /// The window is to be closed at the next frame (File > Quit, "Save all").
    pub(crate) close_now: bool,
    /// The path field standing in for a file dialog, when open.
    pub path_prompt: Option<PathPrompt>,
    /// Why the system's file dialogs are not used (none could be shown, or
    /// UNMASK_NO_FILE_DIALOG is set): File > Open, Save and Model > Open
    /// model folder then ask for a path in the Studio.
    pub no_file_dialog: Option<String>,
    /// The folder of the last image opened or saved (the path field starts there).
    last_folder: Option<PathBuf>,
    /// The loaded model's bundle on disk, in bytes (the status bar shows it
    /// as the Model menu does); `None` for a server's model.
    pub(crate) model_size: Option<u64>,
    pub(crate) view: View,
    pub(crate) thumbs: Thumbnails,
    next_seed: u64,
    session: Option<crate::session::SessionWriter>,
    session_dir: Option<PathBuf>,
    /// A session that did not close cleanly was found: (documents in it); the
    /// user is asked to restore or discard it before anything is saved over it.
    pub restore_offer: Option<usize>,
    /// Borders of the Extend canvas panel (left, right, top, bottom).
    pub extend_by: [u32; 4],
    /// Text guidance of edits: the release's 2.5 unless the model says otherwise.
    edit_cfg: f32,
    /// The model download (Model > Download Lumina-DiMOO...), running or just ended.
    pub download: Option<crate::models::Download>,
    /// The download dialog is open.
    pub download_open: bool,
    /// The model picker's list, read when first shown (and after a download or load).
    pub known_models: Option<Vec<crate::models::Known>>,
    /// Model > Connect to server... is open; what its fields hold.
    pub connect_open: bool,
    pub connect_url: String,
    pub connect_token: String,
    repaint: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl Studio {
    pub fn notify(&mut self, title: &str, detail: &str, is_error: bool) {
        self.notify_as(NoticeKind::Info, None, title, detail, is_error);
    }

    /// Posts a notice. One of a kind other than `Info` replaces the older
    /// ones of its kind (so a run whose eight variants fail alike leaves
    /// one notice, the last with the count); an identical one replaces its twin.
    pub(crate) fn notify_as(&mut self, kind: NoticeKind, run: Option<u64>, title: &str, detail: &str, is_error: bool) {
        self.notices.retain(|n| if kind == NoticeKind::Info { n.title != title || n.detail != detail } else { n.kind != kind });
        self.notices.push(Notice { title: title.into(), detail: detail.into(), is_error, kind, run });
        if self.notices.len() > MAX_NOTICES {
            self.notices.remove(0);
        }
    }

    /// A run refused before it started; the reason is in the title, the
    /// line always shown (not under "details").
    pub(crate) fn refuse(&mut self, why: &str) {
        self.notify_as(NoticeKind::Refused, None, &format!("Cannot run: {why}"), "", true);
    }

    /// A run of `serial` gave a result: the refusals, failures and cancels
    /// of earlier runs are stale now.
    pub(crate) fn clear_stale_run_notices(&mut self, serial: u64) {
        use NoticeKind::{Cancelled, Refused, RunFailed};
        self.notices.retain(|n| !matches!(n.kind, Refused | RunFailed | Cancelled) || n.run == Some(serial));
    }

    pub fn dismiss_all_notices(&mut self) {
        self.notices.clear();
    }

    /// Switches the mode; Retouch and Sketch each keep their own prompt
    /// (a sketch's description is no retouch instruction).
    pub fn set_mode(&mut self, mode: Mode) {
        if mode != Mode::Ask && mode != self.prompt_mode {
            std::mem::swap(&mut self.prompt, &mut self.parked_prompt);
            self.prompt_mode = mode;
        }
        self.mode = mode;
    }

    /// The prompt `mode` runs with (empty for Ask, which has a question).
    pub fn prompt_of(&self, mode: Mode) -> &str {
        match mode {
            Mode::Ask => "",
            m if m == self.prompt_mode => &self.prompt,
            _ => &self.parked_prompt,
        }
    }

    /// The server jobs run on, if any (the status bar shows it).
    pub fn server(&self) -> Option<&str> {
        self.worker.server()
    }

    pub fn model_info(&self) -> Option<&ModelInfo> {
        match &self.model {
            ModelStatus::Ready(i) => Some(i),
            _ => None,
        }
    }

    pub fn is_running(&self) -> bool {
        self.run.is_some()
    }

    pub fn has_unsaved_changes(&self) -> bool {
        self.documents().any(|d| d.dirty)
    }

    /// Every open document, the ones in tabs first, the open one last.
    pub fn documents(&self) -> impl Iterator<Item = &Document> {
        self.background.iter().chain(self.doc.as_ref())
    }

    /// The folder a path field or a dialog starts in: the last one an image
    /// was opened from or saved to (this session, else the recent files').
    pub fn last_folder(&self) -> Option<PathBuf> {
        self.last_folder.clone().or_else(|| self.settings.recent_files.first().and_then(|p| p.parent()).map(|p| p.to_path_buf()))
    }
}
