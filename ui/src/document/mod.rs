//! The open image and everything a user can lose: its versions (the history
//! strip), the painted regions (in `regions`: each a mask with its own
//! prompt), the undo/redo stack over both, and the Ask questions asked
//! about it. Pure state.

use std::path::PathBuf;

use image::{GrayImage, RgbImage};
use unmask::model::CodeGrid;

use crate::mask_paint::Dirty;

mod region;
mod regions;

pub use region::{Region, MAX_REGIONS, REGION_PALETTE};
use region::RegionState;

/// One image in the history strip.
#[derive(Clone)]
pub struct Version {
    pub image: RgbImage,
    /// The model's codes when the model made this image (retouching it again
    /// then needs no VQ round trip).
    pub codes: Option<CodeGrid>,
    pub label: String,
    /// The `parameters` text of the run that made it.
    pub parameters: Option<String>,
    /// Seed and settings of that run, to reuse.
    pub seed: Option<u64>,
    /// Where this version has pixels of its own, when that is not everywhere
    /// (an extended canvas: the border is for the model to fill).
    pub content: Option<unmask::crop::Rect>,
}

impl Version {
    pub fn new(image: RgbImage, label: &str) -> Self {
        Self { image, codes: None, label: label.into(), parameters: None, seed: None, content: None }
    }
}

/// One question of the Ask history and its answer. Kept per document: an
/// answer is about that document's image, never another tab's.
#[derive(Debug, Clone, PartialEq)]
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

#[derive(Clone)]
enum Action {
    /// An edit of the regions (a stroke, a prompt, a new, deleted, renamed
    /// or moved region); holds the regions before it.
    Regions { before: Box<RegionState> },
    /// A switch of the current version (a new result or a pick from the
    /// strip), with the regions before it (a new size blanks them).
    Select { from: usize, to: usize, before: Box<RegionState> },
}

static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Undo keeps this many steps (masks are full copies).
const UNDO_LIMIT: usize = 64;

pub struct Document {
    /// Unique among the documents of one session (opening order).
    pub id: u64,
    pub path: Option<PathBuf>,
    pub versions: Vec<Version>,
    pub current: usize,
    /// The selected region's mask (white = regenerate); the tools paint
    /// here. The other regions' masks are in `regions`.
    pub mask: GrayImage,
    /// The regions in run order; never empty (a document with one region is
    /// the single mask of old).
    regions: Vec<Region>,
    /// Index into `regions` of the one `mask` belongs to.
    selected: usize,
    undo: Vec<Action>,
    redo: Vec<Action>,
    /// Changes since the last save.
    pub dirty: bool,
    /// The file this document was last saved to (Save proposes it again;
    /// `path` alone may be the photo it was opened from, never overwritten).
    pub saved_to: Option<PathBuf>,
    /// The Ask history about this document. While the document is the open
    /// one it lives in `Studio::chat` (the Ask panel reads it there) and this
    /// is empty; it moves back here when another document is opened.
    pub chat: Vec<ChatTurn>,
    /// Bumped on every change of what the canvas draws (pixels, masks,
    /// regions shown) so views know to refresh textures.
    pub revision: u64,
    /// Bumped on every undo step, text edits (prompts, names) included: a
    /// prompt edit needs no new textures, but the session saves on it.
    pub edits: u64,
    empty_cache: std::cell::RefCell<(u64, Vec<Option<bool>>)>,
    bounds_cache: std::cell::RefCell<(u64, Vec<Option<crate::mask_paint::Dirty>>)>,
}

impl Document {
    pub fn new(image: RgbImage, path: Option<PathBuf>, label: &str) -> Self {
        let mask = GrayImage::new(image.width(), image.height());
        Self {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            path,
            versions: vec![Version::new(image, label)],
            current: 0,
            mask,
            regions: vec![Region::first()],
            selected: 0,
            undo: Vec::new(),
            redo: Vec::new(),
            dirty: false,
            saved_to: None,
            chat: Vec::new(),
            revision: 0,
            edits: 0,
            empty_cache: std::cell::RefCell::new((u64::MAX, Vec::new())),
            bounds_cache: std::cell::RefCell::new((u64::MAX, Vec::new())),
        }
    }

    /// The tab's label: the file name, else the first version's label.
    pub fn title(&self) -> String {
        self.path.as_ref().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| self.versions[0].label.clone())
    }

    pub fn image(&self) -> &RgbImage {
        &self.versions[self.current].image
    }

    pub fn version(&self) -> &Version {
        &self.versions[self.current]
    }

    pub fn original(&self) -> &RgbImage {
        &self.versions[0].image
    }

    pub fn size(&self) -> (u32, u32) {
        self.image().dimensions()
    }

    fn push(&mut self, a: Action) {
        self.push_text(a);
        self.revision += 1;
    }

    /// An undo step that changes no pixel (a prompt, a name).
    fn push_text(&mut self, a: Action) {
        self.undo.push(a);
        if self.undo.len() > UNDO_LIMIT {
            self.undo.remove(0);
        }
        self.redo.clear();
        self.edits += 1;
    }

    /// Call before a mask edit (one stroke = one undo step).
    pub fn begin_mask_edit(&mut self) {
        self.begin_region_edit();
    }

    /// Call before any edit of the regions: it becomes one undo step.
    pub(crate) fn begin_region_edit(&mut self) {
        let before = Box::new(self.region_state());
        self.push(Action::Regions { before });
        self.dirty_regions();
    }

    /// Call before an edit of a region's prompt or name: one undo step that
    /// leaves the canvas's textures and plans as they are.
    pub(crate) fn begin_text_edit(&mut self) {
        let before = Box::new(self.region_state());
        self.push_text(Action::Regions { before });
    }

    /// Applies a mask tool to the selected region as one undoable step;
    /// what it paints is taken from the other regions (they never overlap).
    pub fn edit_mask(&mut self, f: impl FnOnce(&mut GrayImage) -> Dirty) -> Dirty {
        self.begin_mask_edit();
        let d = f(&mut self.mask);
        self.claim(d);
        self.revision += 1;
        d
    }

    /// Adds a result as a new version and makes it current; the regions
    /// are kept so the same areas can be retouched again.
    pub fn add_version(&mut self, v: Version) {
        let (w, h) = v.image.dimensions();
        self.versions.push(v);
        let to = self.versions.len() - 1;
        let from = self.current;
        let before = Box::new(self.region_state());
        self.push(Action::Select { from, to, before });
        self.current = to;
        if self.mask.dimensions() != (w, h) {
            self.blank_regions(w, h);
        }
        self.dirty = true;
    }

    /// Adds the canvas grown by the given borders as a new version
    /// (undoable like a result): the regions move with the picture and the
    /// border becomes a region of its own, selected, for the next retouch
    /// to fill.
    pub fn extend(&mut self, left: u32, right: u32, top: u32, bottom: u32) -> unmask::Result<()> {
        let (img, mask, content) = unmask::tasks::inpaint::extend_canvas(self.image(), left, right, top, bottom)?;
        let (w, h) = img.dimensions();
        let mut v = Version::new(img, &format!("extend {w}x{h}"));
        v.content = Some(content);
        self.versions.push(v);
        let to = self.versions.len() - 1;
        let before = Box::new(self.region_state());
        self.push(Action::Select { from: self.current, to, before });
        self.current = to;
        self.dirty = true;
        self.shift_regions(w, h, left, top);
        self.add_border_region(mask);
        self.revision += 1;
        Ok(())
    }

    /// Makes version `to` current (from the history strip), undoably.
    pub fn select(&mut self, to: usize) {
        if to >= self.versions.len() || to == self.current {
            return;
        }
        let before = Box::new(self.region_state());
        self.push(Action::Select { from: self.current, to, before });
        self.current = to;
        let (w, h) = self.versions[to].image.dimensions();
        if self.mask.dimensions() != (w, h) {
            self.blank_regions(w, h);
        }
        self.dirty = true;
    }

    /// Drops the undo and redo steps (a document read back from a session
    /// starts with none).
    pub fn forget_undo(&mut self) {
        self.undo.clear();
        self.redo.clear();
    }

    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }
    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    pub fn undo(&mut self) -> bool {
        let Some(a) = self.undo.pop() else { return false };
        let inverse = self.apply_inverse(a);
        self.redo.push(inverse);
        self.revision += 1;
        self.edits += 1;
        true
    }

    pub fn redo(&mut self) -> bool {
        let Some(a) = self.redo.pop() else { return false };
        let inverse = self.apply_inverse(a);
        self.undo.push(inverse);
        self.revision += 1;
        self.edits += 1;
        true
    }

    /// Restores the state an action recorded and returns the action that
    /// would restore the state it replaced.
    fn apply_inverse(&mut self, a: Action) -> Action {
        match a {
            Action::Regions { before } => {
                let now = self.replace_regions(*before);
                Action::Regions { before: Box::new(now) }
            }
            Action::Select { from, to, before } => {
                let now = self.replace_regions(*before);
                self.current = from;
                self.dirty = true;
                Action::Select { from: to, to: from, before: Box::new(now) }
            }
        }
    }
}

/// Borders (left, right, top, bottom) that bring `w x h` to aspect `aw:ah`
/// by growing one dimension, split evenly.
pub fn aspect_borders(w: u32, h: u32, aw: u32, ah: u32) -> (u32, u32, u32, u32) {
    let (w64, h64, aw, ah) = (w as u64, h as u64, aw.max(1) as u64, ah.max(1) as u64);
    if w64 * ah < h64 * aw {
        // too narrow: widen
        let nw = (h64 * aw).div_ceil(ah);
        let add = (nw - w64) as u32;
        (add / 2, add - add / 2, 0, 0)
    } else {
        let nh = (w64 * ah).div_ceil(aw);
        let add = (nh - h64) as u32;
        (0, 0, add / 2, add - add / 2)
    }
}

#[cfg(test)]
mod tests;
