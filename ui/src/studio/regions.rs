//! The open document's regions as the user works them: new, select,
//! rename, reorder, hide, delete, and their prompts. The selected region's
//! prompt is the Retouch prompt field (`Studio::prompt`, or parked while
//! Sketch is shown); it is written back into the document (`flush_prompt`,
//! an undo step when it changed) before anything else reads or replaces
//! it, and read from it (`load_prompt`) when another region or document
//! becomes the selected one.

use super::{Mode, Studio};

impl Studio {
    /// The Retouch prompt field's text, wherever it is parked.
    pub(crate) fn retouch_prompt_mut(&mut self) -> &mut String {
        if self.prompt_mode == Mode::Retouch {
            &mut self.prompt
        } else {
            &mut self.parked_prompt
        }
    }

    /// Writes the prompt field into the selected region (an undo step when
    /// it changed). Called when an edit of the prompt ends and before the
    /// regions are read, undone or switched.
    pub fn flush_prompt(&mut self) {
        let p = self.prompt_of(Mode::Retouch).to_string();
        if let Some(d) = self.doc.as_mut() {
            let i = d.selected_region();
            d.set_region_prompt(i, &p);
        }
    }

    /// The prompt field shows the selected region's prompt.
    pub(crate) fn load_prompt(&mut self) {
        let Some(p) = self.doc.as_ref().map(|d| d.regions()[d.selected_region()].prompt.clone()) else { return };
        *self.retouch_prompt_mut() = p;
    }

    /// Adds a region to the open document and selects it (button "New
    /// region", key N); the tools paint into it from now on.
    pub fn new_region(&mut self) {
        self.flush_prompt();
        let Some(doc) = self.doc.as_mut() else { return self.refuse("open an image first") };
        if doc.add_region().is_none() {
            let n = doc.regions().len();
            return self.notify("No more regions", &format!("a run takes at most {n} regions: paint into one of them, or delete one"), true);
        }
        self.load_prompt();
        self.view.mask_shown = true;
        if self.mode == Mode::Ask {
            self.set_mode(Mode::Retouch);
        }
    }

    /// Makes region `i` the one the tools paint into and the prompt field edits.
    pub fn select_region(&mut self, i: usize) {
        if self.doc.as_ref().is_none_or(|d| d.selected_region() == i || i >= d.regions().len()) {
            return;
        }
        self.flush_prompt();
        if let Some(d) = self.doc.as_mut() {
            d.select_region(i);
        }
        self.load_prompt();
    }

    /// Deletes region `i` with its mask and prompt (undoable).
    pub fn delete_region(&mut self, i: usize) {
        self.flush_prompt();
        if let Some(d) = self.doc.as_mut() {
            d.delete_region(i);
        }
        self.load_prompt();
        self.view.mask_tex = None;
    }

    pub fn rename_region(&mut self, i: usize, name: &str) {
        self.flush_prompt();
        if let Some(d) = self.doc.as_mut() {
            d.rename_region(i, name);
        }
    }

    /// Moves region `i` to place `to` of the run order (undoable).
    pub fn move_region(&mut self, i: usize, to: usize) {
        self.flush_prompt();
        if let Some(d) = self.doc.as_mut() {
            d.move_region(i, to);
        }
        self.view.mask_tex = None;
    }

    /// Inverts the selected region within what the other regions leave (undoable).
    pub fn invert_region(&mut self) {
        if let Some(d) = self.doc.as_mut() {
            d.invert_region();
        }
        self.view.mask_tex = None;
        self.view.mask_shown = true;
    }

    /// Hides or shows region `i`: a hidden region is not drawn and sits out the run.
    pub fn set_region_hidden(&mut self, i: usize, hidden: bool) {
        if let Some(d) = self.doc.as_mut() {
            d.set_region_hidden(i, hidden);
        }
        self.view.mask_tex = None;
    }

    /// Sets region `i`'s prompt (undoable); the selected one's is the prompt field too.
    pub fn set_region_prompt(&mut self, i: usize, prompt: &str) {
        let Some(d) = self.doc.as_mut() else { return };
        if i == d.selected_region() {
            *self.retouch_prompt_mut() = prompt.to_string();
            self.flush_prompt();
        } else {
            d.set_region_prompt(i, prompt);
        }
    }

    /// Region `i`'s prompt as the user sees it (the selected one's is the field's text).
    pub fn region_prompt(&self, i: usize) -> String {
        match self.doc.as_ref() {
            Some(d) if i == d.selected_region() => self.prompt_of(Mode::Retouch).to_string(),
            Some(d) => d.regions().get(i).map(|r| r.prompt.clone()).unwrap_or_default(),
            None => String::new(),
        }
    }

    /// The colour region `i` is drawn in: its own, or (the first region)
    /// the mask overlay colour.
    pub fn region_color(&self, i: usize) -> [u8; 3] {
        self.doc.as_ref().and_then(|d| d.regions().get(i)).and_then(|r| r.color).unwrap_or(self.view.overlay_rgb)
    }
}
