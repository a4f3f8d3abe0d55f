//! The Studio's state and what the user can do with it. Every action is a
//! plain method (tests call them, and so do the widgets); the model runs on
//! the engine's worker thread, so nothing here waits on it.
//!
//! This file holds the state and the queries every part reads; each child
//! module adds the actions of one topic to [`Studio`] and depends only on
//! this file, `state` and the children listed before it:
//! `runs` (starting and cancelling runs), `documents` (open, save, tabs,
//! versions, Extend canvas), `model` (model folders, the server, the
//! download), `recovery` (the session kept on disk), `plan` (the crops and
//! cells a retouch will work on), `events` (the worker's events, once a
//! frame), `startup` ([`Studio::new`]).

use std::path::PathBuf;
use std::sync::Arc;

use unmask::engine::ModelInfo;

use crate::backend::Backend;
use crate::document::{Document, Version};
use crate::settings::Settings;
use crate::viewport::{Thumbnails, View};

mod documents;
mod events;
mod model;
mod plan;
mod recovery;
mod runs;
mod startup;
mod state;

pub use state::{ChatTurn, Mode, ModelStatus, Notice, Run, RunKind, Tool};

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
    pub mode: Mode,
    pub tool: Tool,
    pub prompt: String,
    pub question: String,
    pub chat: Vec<ChatTurn>,
    pub run: Option<Run>,
    /// Finished variants waiting for the user's pick, and their document.
    pub variants: Vec<Version>,
    variants_doc: Option<u64>,
    /// Open documents other than `doc` (tabs).
    pub background: Vec<Document>,
    pub notices: Vec<Notice>,
    /// Set while the user holds the compare key.
    pub comparing: bool,
    /// The close was stopped to ask about unsaved changes.
    pub confirm_close: bool,
    pub allow_close: bool,
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
        self.notices.push(Notice { title: title.into(), detail: detail.into(), is_error });
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
        self.doc.as_ref().is_some_and(|d| d.dirty) || self.background.iter().any(|d| d.dirty)
    }
}
