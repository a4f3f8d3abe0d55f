//! The open image and everything a user can lose: its versions (the history
//! strip), the painted mask, the undo/redo stack over both, and the Ask
//! questions asked about it. Pure state.

use std::path::PathBuf;

use image::{GrayImage, RgbImage};
use unmask::model::CodeGrid;

use crate::mask_paint::Dirty;

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
    /// A mask edit; holds the mask before it.
    Mask { before: GrayImage },
    /// A switch of the current version (a new result or a pick from the strip).
    Select { from: usize, to: usize, mask_before: GrayImage },
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
    pub mask: GrayImage,
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
    /// Bumped on every change so views know to refresh textures.
    pub revision: u64,
    empty_cache: std::cell::Cell<(u64, bool)>,
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
            undo: Vec::new(),
            redo: Vec::new(),
            dirty: false,
            saved_to: None,
            chat: Vec::new(),
            revision: 0,
            empty_cache: std::cell::Cell::new((u64::MAX, true)),
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
        self.undo.push(a);
        if self.undo.len() > UNDO_LIMIT {
            self.undo.remove(0);
        }
        self.redo.clear();
        self.revision += 1;
    }

    /// Call before a mask edit (one stroke = one undo step).
    pub fn begin_mask_edit(&mut self) {
        let before = self.mask.clone();
        self.push(Action::Mask { before });
    }

    /// Applies a mask tool as one undoable step.
    pub fn edit_mask(&mut self, f: impl FnOnce(&mut GrayImage) -> Dirty) -> Dirty {
        self.begin_mask_edit();
        let d = f(&mut self.mask);
        self.revision += 1;
        d
    }

    /// Adds a result as a new version and makes it current; the mask is kept
    /// so the same region can be retouched again.
    pub fn add_version(&mut self, v: Version) {
        let (w, h) = v.image.dimensions();
        self.versions.push(v);
        let to = self.versions.len() - 1;
        let from = self.current;
        let mask_before = self.mask.clone();
        self.push(Action::Select { from, to, mask_before });
        self.current = to;
        if self.mask.dimensions() != (w, h) {
            self.mask = GrayImage::new(w, h);
        }
        self.dirty = true;
    }

    /// Adds the canvas grown by the given borders as a new version whose mask
    /// is the border (undoable like a result): the next retouch fills it.
    pub fn extend(&mut self, left: u32, right: u32, top: u32, bottom: u32) -> unmask::Result<()> {
        let (img, mask, content) = unmask::tasks::inpaint::extend_canvas(self.image(), left, right, top, bottom)?;
        let (w, h) = img.dimensions();
        let mut v = Version::new(img, &format!("extend {w}x{h}"));
        v.content = Some(content);
        self.add_version(v);
        self.mask = mask;
        self.revision += 1;
        Ok(())
    }

    /// Makes version `to` current (from the history strip), undoably.
    pub fn select(&mut self, to: usize) {
        if to >= self.versions.len() || to == self.current {
            return;
        }
        let mask_before = self.mask.clone();
        self.push(Action::Select { from: self.current, to, mask_before });
        self.current = to;
        let (w, h) = self.versions[to].image.dimensions();
        if self.mask.dimensions() != (w, h) {
            self.mask = GrayImage::new(w, h);
        }
        self.dirty = true;
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
        true
    }

    pub fn redo(&mut self) -> bool {
        let Some(a) = self.redo.pop() else { return false };
        let inverse = self.apply_inverse(a);
        self.undo.push(inverse);
        self.revision += 1;
        true
    }

    /// Restores the state an action recorded and returns the action that
    /// would restore the state it replaced.
    fn apply_inverse(&mut self, a: Action) -> Action {
        match a {
            Action::Mask { before } => {
                let now = std::mem::replace(&mut self.mask, before);
                Action::Mask { before: now }
            }
            Action::Select { from, to, mask_before } => {
                let now_mask = std::mem::replace(&mut self.mask, mask_before);
                self.current = from;
                self.dirty = true;
                Action::Select { from: to, to: from, mask_before: now_mask }
            }
        }
    }

    /// Whether nothing is painted; cached per revision (the UI asks every frame).
    pub fn mask_is_empty(&self) -> bool {
        let (rev, empty) = self.empty_cache.get();
        if rev == self.revision && rev != u64::MAX {
            return empty;
        }
        let empty = self.mask.pixels().all(|p| p[0] == 0);
        self.empty_cache.set((self.revision, empty));
        empty
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
mod tests {
    use super::*;

    #[test]
    fn undo_restores_image_and_mask_and_redo_reapplies() {
        let mut d = Document::new(RgbImage::new(8, 8), None, "original");
        d.edit_mask(|m| crate::mask_paint::rectangle(m, (0.0, 0.0), (4.0, 4.0), false));
        let painted = d.mask.clone();
        d.add_version(Version::new(RgbImage::from_pixel(8, 8, image::Rgb([9, 9, 9])), "r"));
        assert_eq!(d.current, 1);
        assert!(d.undo());
        assert_eq!(d.current, 0);
        assert_eq!(d.mask, painted);
        assert!(d.undo());
        assert!(d.mask_is_empty());
        assert!(d.redo());
        assert!(d.redo());
        assert_eq!(d.current, 1);
    }
}
