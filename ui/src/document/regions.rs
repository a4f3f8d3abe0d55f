//! A document's regions as it edits them (the values are in `region`):
//! each a painted mask with its own prompt, name and colour, run in list
//! order by one retouch. Regions never overlap: what
//! one region paints is taken from the others. The selected region's mask
//! is `Document::mask` (where the tools paint, as with the single mask of
//! old); the others keep theirs here, shared (`Arc`) with the undo steps
//! that hold them, so an undo step copies only the mask it changes.

use std::sync::Arc;

use image::GrayImage;

use super::region::{Region, RegionState, MAX_REGIONS, REGION_PALETTE};
use super::Document;
use crate::mask_paint::Dirty;

impl Document {
    pub(super) fn region_state(&self) -> RegionState {
        RegionState { mask: self.mask.clone(), regions: self.regions.clone(), selected: self.selected }
    }

    /// Puts `s` in place and returns what it replaced.
    pub(super) fn replace_regions(&mut self, s: RegionState) -> RegionState {
        let now = RegionState {
            mask: std::mem::replace(&mut self.mask, s.mask),
            regions: std::mem::replace(&mut self.regions, s.regions),
            selected: std::mem::replace(&mut self.selected, s.selected),
        };
        self.dirty_regions();
        now
    }

    /// The caches of emptiness and bounds are stale.
    pub(super) fn dirty_regions(&mut self) {
        self.revision += 1;
    }

    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    pub fn selected_region(&self) -> usize {
        self.selected
    }

    /// Region `i`'s mask (the selected one's is `mask`).
    pub fn region_mask(&self, i: usize) -> &GrayImage {
        match self.regions.get(i).and_then(|r| r.mask.as_deref()) {
            Some(m) if i != self.selected => m,
            _ => &self.mask,
        }
    }

    /// Makes region `i` the one the tools paint into (not an undo step:
    /// selecting changes nothing).
    pub fn select_region(&mut self, i: usize) {
        if i >= self.regions.len() || i == self.selected {
            return;
        }
        let (w, h) = self.mask.dimensions();
        let mine = std::mem::replace(&mut self.mask, GrayImage::new(w, h));
        self.regions[self.selected].mask = Some(Arc::new(mine));
        let theirs = self.regions[i].mask.take().unwrap_or_else(|| Arc::new(GrayImage::new(w, h)));
        self.mask = Arc::try_unwrap(theirs).unwrap_or_else(|a| (*a).clone());
        self.selected = i;
        self.dirty_regions();
    }

    /// Adds an empty region after the others and selects it (undoable);
    /// `None` when the document has as many as one run takes.
    pub fn add_region(&mut self) -> Option<usize> {
        if self.regions.len() >= MAX_REGIONS {
            return None;
        }
        self.begin_region_edit();
        let n = self.regions.iter().filter_map(|r| r.name.strip_prefix("Region ")?.parse::<usize>().ok()).max().unwrap_or(0) + 1;
        let color = self.free_color();
        let (w, h) = self.mask.dimensions();
        self.regions.push(Region { name: format!("Region {n}"), prompt: String::new(), color: Some(color), hidden: false, mask: Some(Arc::new(GrayImage::new(w, h))) });
        let i = self.regions.len() - 1;
        self.select_region(i);
        Some(i)
    }

    /// The first palette colour no region shows, else one by count.
    fn free_color(&self) -> [u8; 3] {
        let used: Vec<[u8; 3]> = self.regions.iter().filter_map(|r| r.color).collect();
        REGION_PALETTE.iter().copied().find(|c| !used.contains(c)).unwrap_or(REGION_PALETTE[self.regions.len() % REGION_PALETTE.len()])
    }

    /// Deletes region `i` with its mask and prompt (undoable). The last
    /// region is emptied instead: a document always has one.
    pub fn delete_region(&mut self, i: usize) {
        if i >= self.regions.len() {
            return;
        }
        self.begin_region_edit();
        if self.regions.len() == 1 {
            let (w, h) = self.mask.dimensions();
            self.mask = GrayImage::new(w, h);
            self.regions[0].prompt.clear();
            return;
        }
        // select a neighbour first, so `mask` never belongs to a deleted region
        let next = if i == self.selected { if i + 1 < self.regions.len() { i + 1 } else { i - 1 } } else { self.selected };
        self.select_region(next);
        self.regions.remove(i);
        if self.selected > i {
            self.selected -= 1;
        }
    }

    /// Renames region `i` (undoable; an empty name is refused).
    pub fn rename_region(&mut self, i: usize, name: &str) {
        let name = name.trim();
        if i >= self.regions.len() || name.is_empty() || self.regions[i].name == name {
            return;
        }
        self.begin_text_edit();
        self.regions[i].name = name.to_string();
    }

    /// Sets region `i`'s prompt (undoable: one step per change).
    pub fn set_region_prompt(&mut self, i: usize, prompt: &str) {
        if i >= self.regions.len() || self.regions[i].prompt == prompt {
            return;
        }
        self.begin_text_edit();
        self.regions[i].prompt = prompt.to_string();
    }

    /// Moves region `i` to position `to` of the run order (undoable).
    pub fn move_region(&mut self, i: usize, to: usize) {
        let n = self.regions.len();
        if i >= n || to >= n || i == to {
            return;
        }
        self.begin_region_edit();
        let r = self.regions.remove(i);
        self.regions.insert(to, r);
        let s = self.selected;
        self.selected = if s == i {
            to
        } else if i < s && to >= s {
            s - 1
        } else if i > s && to <= s {
            s + 1
        } else {
            s
        };
    }

    /// Shows or hides region `i` (a view setting, not an undo step; a
    /// hidden region sits out the run).
    pub fn set_region_hidden(&mut self, i: usize, hidden: bool) {
        if let Some(r) = self.regions.get_mut(i) {
            if r.hidden != hidden {
                r.hidden = hidden;
                self.dirty_regions();
            }
        }
    }

    /// The selected region just painted `d`: those pixels leave the others.
    pub(crate) fn claim(&mut self, d: Dirty) {
        if d.is_empty() {
            return;
        }
        let sel = self.selected;
        for (i, r) in self.regions.iter_mut().enumerate() {
            let Some(m) = r.mask.as_mut().filter(|_| i != sel) else { continue };
            let overlaps = |m: &GrayImage| (d.y0..d.y1).any(|y| (d.x0..d.x1).any(|x| m.get_pixel(x, y)[0] > 0 && self.mask.get_pixel(x, y)[0] > 127));
            if !overlaps(m) {
                continue;
            }
            // copied once here when an undo step still shares it
            let m = Arc::make_mut(m);
            for y in d.y0..d.y1 {
                for x in d.x0..d.x1 {
                    if self.mask.get_pixel(x, y)[0] > 127 {
                        m.put_pixel(x, y, image::Luma([0]));
                    }
                }
            }
        }
    }

    /// Inverts the selected region within what no other region holds
    /// (one undo step): "everything else" never takes another region's pixels.
    pub fn invert_region(&mut self) {
        self.begin_region_edit();
        let others: Vec<usize> = (0..self.regions.len()).filter(|&i| i != self.selected).collect();
        let (w, h) = self.mask.dimensions();
        for y in 0..h {
            for x in 0..w {
                let held = others.iter().any(|&i| self.region_mask(i).get_pixel(x, y)[0] > 127);
                let v = if held || self.mask.get_pixel(x, y)[0] > 127 { 0 } else { 255 };
                self.mask.put_pixel(x, y, image::Luma([v]));
            }
        }
        self.dirty_regions();
    }

    /// The topmost visible region painted at pixel (x, y), if any.
    pub fn region_at(&self, x: u32, y: u32) -> Option<usize> {
        if x >= self.mask.width() || y >= self.mask.height() {
            return None;
        }
        (0..self.regions.len()).rev().find(|&i| !self.regions[i].hidden && self.region_mask(i).get_pixel(x, y)[0] > 127)
    }

    /// Whether no region has anything painted (then a retouch is an edit of
    /// the whole image). The UI asks every frame: the selected region (the
    /// one being painted) is asked first, and each answer is cached per revision.
    pub fn mask_is_empty(&self) -> bool {
        let sel = self.selected;
        self.region_is_empty(sel) && (0..self.regions.len()).filter(|&i| i != sel).all(|i| self.region_is_empty(i))
    }

    /// Whether region `i` has nothing painted (cached per revision, asked lazily).
    pub fn region_is_empty(&self, i: usize) -> bool {
        let mut c = self.empty_cache.borrow_mut();
        if c.0 != self.revision || c.1.len() != self.regions.len() {
            *c = (self.revision, vec![None; self.regions.len()]);
        }
        match c.1.get(i) {
            Some(Some(e)) => *e,
            Some(None) => {
                let e = self.region_mask(i).as_raw().iter().all(|&p| p == 0);
                c.1[i] = Some(e);
                e
            }
            None => true,
        }
    }

    /// The painted box of each region (`None`: nothing painted), cached per
    /// revision; with `stale_ok` a cached answer is kept while a stroke
    /// runs (a pass over every mask per pointer move would stutter).
    pub fn region_bounds(&self, stale_ok: bool) -> Vec<Option<Dirty>> {
        let mut c = self.bounds_cache.borrow_mut();
        let fresh = c.0 == self.revision && c.1.len() == self.regions.len();
        if !fresh && !(stale_ok && c.1.len() == self.regions.len()) {
            *c = (self.revision, (0..self.regions.len()).map(|i| bounds(self.region_mask(i))).collect());
        }
        c.1.clone()
    }

    /// Every region's mask blanked at a new size (a version of another size
    /// was made current); names and prompts stay.
    pub(super) fn blank_regions(&mut self, w: u32, h: u32) {
        self.mask = GrayImage::new(w, h);
        let sel = self.selected;
        for (i, r) in self.regions.iter_mut().enumerate() {
            r.mask = (i != sel).then(|| Arc::new(GrayImage::new(w, h)));
        }
        self.dirty_regions();
    }

    /// Every region moved onto a `w x h` canvas at offset (dx, dy) (Extend canvas).
    pub(super) fn shift_regions(&mut self, w: u32, h: u32, dx: u32, dy: u32) {
        let shift = |m: &GrayImage| {
            let mut out = GrayImage::new(w, h);
            image::imageops::replace(&mut out, m, dx as i64, dy as i64);
            out
        };
        self.mask = shift(&self.mask);
        let sel = self.selected;
        for (i, r) in self.regions.iter_mut().enumerate() {
            if i != sel {
                r.mask = Some(Arc::new(r.mask.as_deref().map(shift).unwrap_or_else(|| GrayImage::new(w, h))));
            }
        }
        self.dirty_regions();
    }

    /// The border an Extend canvas added, as a region of its own (selected),
    /// or the single region when nothing else is painted.
    pub(super) fn add_border_region(&mut self, border: GrayImage) {
        let alone = self.regions.len() == 1 && self.mask.pixels().all(|p| p[0] == 0);
        if alone {
            self.regions[self.selected].name = "Border".into();
        } else if self.regions.len() < MAX_REGIONS {
            let color = self.free_color();
            let (w, h) = border.dimensions();
            self.regions.push(Region { name: "Border".into(), prompt: String::new(), color: Some(color), hidden: false, mask: Some(Arc::new(GrayImage::new(w, h))) });
            self.select_region(self.regions.len() - 1);
        }
        self.mask = border;
        let d = Dirty::whole(&self.mask);
        self.claim(d);
        self.dirty_regions();
    }

    /// Region masks and prompts for saving or restoring a session.
    pub fn region_parts(&self) -> Vec<(Region, &GrayImage)> {
        (0..self.regions.len()).map(|i| (Region { mask: None, ..self.regions[i].clone() }, self.region_mask(i))).collect()
    }

    /// Replaces every region (a restored session), selecting `selected`;
    /// masks of another size than the image are blanked.
    pub fn set_regions(&mut self, parts: Vec<(Region, GrayImage)>, selected: usize) {
        let (w, h) = self.size();
        if parts.is_empty() {
            return;
        }
        // a session file names at most as many regions as one run takes
        let parts: Vec<_> = parts.into_iter().take(MAX_REGIONS).collect();
        let selected = selected.min(parts.len() - 1);
        self.regions.clear();
        for (i, (mut r, m)) in parts.into_iter().enumerate() {
            let m = if m.dimensions() == (w, h) { m } else { GrayImage::new(w, h) };
            if i == selected {
                self.mask = m;
                r.mask = None;
            } else {
                r.mask = Some(Arc::new(m));
            }
            self.regions.push(r);
        }
        self.selected = selected;
        self.dirty_regions();
    }
}

/// The box of a mask's painted pixels.
fn bounds(m: &GrayImage) -> Option<Dirty> {
    let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
    for (y, row) in m.as_raw().chunks_exact(m.width().max(1) as usize).enumerate() {
        let Some(first) = row.iter().position(|&v| v > 127) else { continue };
        let last = row.iter().rposition(|&v| v > 127).unwrap_or(first);
        (x0, x1) = (x0.min(first as u32), x1.max(last as u32 + 1));
        (y0, y1) = (y0.min(y as u32), y1.max(y as u32 + 1));
    }
    (x0 < x1).then_some(Dirty { x0, y0, x1, y1 })
}
