//! The plain values the Studio's state is made of: the mode and tool, the
//! model's status, a run in progress, the Ask chat and the user's notices.
//! No behaviour beyond reading them; the canvas and the panels use them too.

use std::path::PathBuf;
use std::time::Instant;

use image::{GrayImage, RgbImage};
use unmask::crop::Rect;
use unmask::engine::ModelInfo;
use unmask::worker::JobId;

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
}

impl Run {
    /// Seconds left, from the pace so far.
    pub fn eta(&self) -> Option<f64> {
        let done = self.finished * self.total + self.step;
        let all = self.jobs.len() * self.total;
        (done > 0).then(|| self.started.elapsed().as_secs_f64() / done as f64 * (all - done) as f64)
    }
}

pub struct ChatTurn {
    pub question: String,
    pub answer: String,
    /// The run ended (answered, failed or cancelled)
    pub done: bool,
    /// The model's answer arrived (it may be empty)
    pub answered: bool,
}

impl ChatTurn {
    /// What the Ask panel shows after "A:".
    pub fn shown_answer(&self) -> String {
        if !self.done {
            if self.answer.is_empty() { "...".into() } else { self.answer.replace('\u{FFFD}', "?") }
        } else if !self.answered {
            "(no answer: the run did not finish)".into()
        } else if self.answer.trim().is_empty() {
            // a question form the model never learnt; say so rather than show nothing
            "(no answer: the model may not know this kind of question; its model card lists the ones it does)".into()
        } else {
            // model text can hold undecodable bytes; show them as '?'
            self.answer.replace('\u{FFFD}', "?")
        }
    }
}

/// A message for the user; `detail` is shown on demand.
#[derive(Debug, Clone)]
pub struct Notice {
    pub title: String,
    pub detail: String,
    pub is_error: bool,
}
