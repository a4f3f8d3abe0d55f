//! The plain values the Studio's state is made of: the mode and tool, the
//! model's status, a run in progress, the user's notices, the question
//! before closing and the path field that stands in for a file dialog.
//! No behaviour beyond reading them; the canvas and the panels use them too.

use std::path::PathBuf;
use std::time::Instant;

use image::{GrayImage, RgbImage};
use unmask::crop::Rect;
use unmask::engine::ModelInfo;
use unmask::worker::JobId;

pub use crate::document::ChatTurn;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Retouch,
    Sketch,
    Ask,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Brush,
    Eraser,
    Rectangle,
    Lasso,
}

#[derive(Debug, Clone)]
pub enum ModelStatus {
    None,
    Loading(PathBuf),
    Ready(Box<ModelInfo>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    Retouch,
    Edit,
    Sketch,
    Ask,
    /// Questions about a region's crop whose answers become its prompt.
    Describe,
}

/// A Describe in progress: the region, its crop and the answers so far.
#[derive(Debug, Clone)]
pub struct Describing {
    pub doc_id: u64,
    pub region: usize,
    /// The region's name when it started (the answer goes nowhere if the
    /// region was deleted or moved meanwhile).
    pub name: String,
    pub crop: RgbImage,
    pub answers: Vec<String>,
    pub recipe: unmask::bundle::Describe,
}

/// A run in progress (one or more variant jobs).
pub struct Run {
    pub kind: RunKind,
    pub jobs: Vec<(JobId, u64)>,
    pub finished: usize,
    pub step: usize,
    pub total: usize,
    pub started: Instant,
    /// Progress events seen (tests check streaming with it).
    pub progress_events: usize,
    /// The latest preview: the whole result, or (inpainting) one crop at
    /// working size with the document box it is drawn into.
    pub preview: Option<RgbImage>,
    pub preview_at: Option<Rect>,
    /// With `preview_at`: the crop's regenerated cells (only they are drawn).
    pub preview_region: Option<GrayImage>,
    /// Finished crops' last previews, kept on the canvas while later crops run.
    pub done_crops: Vec<(Rect, RgbImage, Option<GrayImage>)>,
    pub preview_revision: u64,
    /// The document the run belongs to (its result goes there).
    pub doc_id: Option<u64>,
    /// Variant jobs that failed.
    pub failed: usize,
    /// Numbers the runs of a session: a run's notices name it, so its
    /// variants failing alike make one notice.
    pub serial: u64,
}

impl Run {
    /// Seconds left, from the pace so far.
    pub fn eta(&self) -> Option<f64> {
        let done = self.finished * self.total + self.step;
        let all = self.jobs.len() * self.total;
        (done > 0).then(|| self.started.elapsed().as_secs_f64() / done as f64 * (all - done) as f64)
    }
}

/// What a notice is about: a newer notice of a kind other than `Info`
/// replaces the older one of that kind (the user wants the latest word, not
/// a pile of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// Anything else; an identical one is not shown twice.
    Info,
    /// A run refused before it started ("Cannot run: ...").
    Refused,
    /// A run that failed: one notice per run, however many variants failed.
    RunFailed,
    /// A run the user cancelled.
    Cancelled,
}

/// A message for the user: the title and the first line of `detail` are
/// always shown, the rest of `detail` on demand.
#[derive(Debug, Clone)]
pub struct Notice {
    pub title: String,
    pub detail: String,
    pub is_error: bool,
    pub kind: NoticeKind,
    /// The run it is about ([`Run::serial`]), if any.
    pub run: Option<u64>,
}

/// A document the close question lists: saved to `path` by "Save all".
#[derive(Debug, Clone)]
pub struct SaveTarget {
    pub id: u64,
    /// What the user knows it by: its tab's name and what is unsaved.
    pub name: String,
    /// Where it is saved; proposed, editable (never the photo it came from).
    pub path: String,
}

/// The question before closing with unsaved documents (every one of them,
/// not only the open one).
#[derive(Debug, Clone, Default)]
pub struct ClosePrompt {
    pub targets: Vec<SaveTarget>,
    /// Why the last "Save all" stopped (the documents not saved stay listed).
    pub error: Option<String>,
}

/// What a path typed in the Studio is for (when no system file dialog is
/// there to ask).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// File > Open...
    Open,
    /// File > Save PNG... of the document with this id.
    Save(u64),
    /// Model > Open model folder...
    ModelFolder,
}

/// The small window with a path field that stands in for a file dialog.
#[derive(Debug, Clone)]
pub struct PathPrompt {
    pub kind: PathKind,
    pub text: String,
    /// Why the last path given was not used (it names the path).
    pub error: Option<String>,
}
