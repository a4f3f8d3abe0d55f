//! Looking at a result against what it came from: the before/after split
//! (left of a draggable divider the version the run started from, right the
//! current one), the strip's hovered variant drawn in place of the current
//! version, and noticing a result landing (its parent is remembered for the
//! split, and the mask overlay steps aside so the result is seen).

use egui::{Color32, Pos2, Rect, Stroke, TextureOptions};

use crate::studio::Studio;
use crate::viewport::pixels::fitted;
use crate::viewport::{centred, split_regions};

/// How close (screen points) a press must be to the divider to grab it.
const DIVIDER_GRAB: f32 = 8.0;

impl Studio {
    /// Notes the version a run starts from, and when a new version appears
    /// in the open document: its parent and, for a run's result, hides the
    /// mask overlay (the mask itself stays, to retouch the region again).
    pub(super) fn watch_versions(&mut self) {
        let Some(doc) = self.doc.as_ref() else { return };
        if let Some(run) = &self.run {
            if run.doc_id == Some(doc.id) && self.view.run_from.is_none() {
                self.view.run_from = Some((doc.id, doc.current));
            }
        }
        if let Some((id, len, cur)) = self.view.seen {
            let last = doc.versions.len() - 1;
            if id == doc.id && doc.versions.len() > len && doc.current == last {
                let parent = self.view.run_from.filter(|r| r.0 == id).map_or(cur, |r| r.1);
                self.view.parents.retain(|p| (p.0, p.1) != (id, last));
                self.view.parents.push((id, last, parent));
                // a run's result has its seed; Extend canvas's version has
                // none, and its mask (the border to fill) must stay in view
                if doc.version().seed.is_some() {
                    self.view.mask_shown = false;
                }
            }
        }
        // several variants wait for a pick: the run's start still counts
        if self.run.is_none() && self.variants.is_empty() {
            self.view.run_from = None;
        }
        self.view.seen = Some((doc.id, doc.versions.len(), doc.current));
    }

    /// The version `v` of the open document was made from: as seen when it
    /// landed, else (a restored session) the one before it.
    fn parent_of(&self, v: usize) -> usize {
        let id = self.doc.as_ref().map_or(0, |d| d.id);
        self.view.parents.iter().rev().find(|p| (p.0, p.1) == (id, v)).map_or(v.saturating_sub(1), |p| p.2)
    }

    /// Draws the split if it is on and the two versions have the same size;
    /// false leaves the drawing to the caller.
    pub(super) fn draw_split(&mut self, painter: &egui::Painter, img_rect: Rect, opts: TextureOptions, max_side: usize) -> bool {
        let (Some(frac), Some(doc)) = (self.view.split, self.doc.as_ref()) else { return false };
        let (cur, parent) = (doc.current, self.parent_of(doc.current));
        let before = &doc.versions[parent].image;
        if before.dimensions() != doc.size() {
            return false;
        }
        // the filter is fixed when a texture is made: it is part of the key
        let key = (before.as_ptr() as u64) << 1 | u64::from(opts == TextureOptions::NEAREST);
        if self.view.split_tex.as_ref().is_none_or(|t| t.1 != key) {
            let tex = painter.ctx().load_texture("canvas-before", fitted(before, max_side), opts);
            self.view.split_tex = Some((tex, key));
        }
        let [(l, uv_l), (r, uv_r)] = split_regions(img_rect, frac);
        if let (Some((before, _)), Some((after, ..))) = (&self.view.split_tex, &self.view.image_tex) {
            painter.image(before.id(), l, uv_l, Color32::WHITE);
            painter.image(after.id(), r, uv_r, Color32::WHITE);
        }
        self.view.split_drawn = Some([(parent, l, uv_l), (cur, r, uv_r)]);
        true
    }

    /// The divider line with a handle, and which side is which.
    pub(super) fn draw_divider(&self, painter: &egui::Painter, img_rect: Rect) {
        let Some([(_, l, _), _]) = self.view.split_drawn else { return };
        let x = l.right();
        let (top, bottom) = (img_rect.top().max(self.view.rect.top()), img_rect.bottom().min(self.view.rect.bottom()));
        painter.line_segment([Pos2::new(x, top), Pos2::new(x, bottom)], Stroke::new(2.0, Color32::WHITE));
        let mid = Pos2::new(x, (top + bottom) / 2.0);
        painter.circle(mid, 7.0, Color32::from_black_alpha(160), Stroke::new(1.5, Color32::WHITE));
        let font = egui::FontId::proportional(13.0);
        let y = self.view.rect.top() + 10.0;
        painter.text(Pos2::new(x - 8.0, y), egui::Align2::RIGHT_TOP, "before", font.clone(), Color32::YELLOW);
        painter.text(Pos2::new(x + 8.0, y), egui::Align2::LEFT_TOP, "after", font, Color32::YELLOW);
    }

    /// Whether a press at `pos` grabs the split's divider.
    pub(super) fn near_divider(&self, pos: Pos2) -> bool {
        let Some([(_, l, _), _]) = self.view.split_drawn else { return false };
        (pos.x - l.right()).abs() <= DIVIDER_GRAB && pos.y >= l.top() - DIVIDER_GRAB && pos.y <= l.bottom() + DIVIDER_GRAB
    }

    /// Moves the divider under the pointer at `pos`.
    pub(super) fn drag_divider(&mut self, pos: Pos2) {
        let Some([(_, l, _), (_, r, _)]) = self.view.split_drawn else { return };
        let (left, width) = (l.left(), r.right() - l.left());
        if width > 0.0 {
            self.view.split = Some(((pos.x - left) / width).clamp(0.0, 1.0));
        }
    }

    /// The variant under the pointer in the strip, in the document's place
    /// when it has its size (`img_rect`), else fitted on its own.
    pub(super) fn draw_hovered_variant(&mut self, painter: &egui::Painter, rect: Rect, img_rect: Option<Rect>) {
        let Some(i) = self.view.hover_variant.filter(|&i| i < self.variants.len()) else { return };
        let v = &self.variants[i].image;
        let key = v.as_ptr() as u64;
        if self.view.variant_tex.as_ref().is_none_or(|t| t.1 != key) {
            let max_side = painter.ctx().input(|inp| inp.max_texture_side);
            let tex = painter.ctx().load_texture("canvas-variant", fitted(v, max_side), TextureOptions::LINEAR);
            self.view.variant_tex = Some((tex, key));
        }
        let same = self.doc.as_ref().is_some_and(|d| d.size() == v.dimensions());
        let at = img_rect.filter(|_| same).unwrap_or_else(|| centred(rect, v.dimensions()));
        if let Some((t, _)) = &self.view.variant_tex {
            painter.image(t.id(), at, Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)), Color32::WHITE);
        }
        self.view.shown_variant = Some(i);
    }
}

/// The split's and the preview's handles, for the controls and for tests.
impl Studio {
    /// The before/after split: `Some(fraction of the image width left of
    /// the divider)` when on.
    pub fn split_fraction(&self) -> Option<f32> {
        self.view.split
    }

    pub fn set_split(&mut self, split: Option<f32>) {
        self.view.split = split.map(|f| f.clamp(0.0, 1.0));
        self.view.divider_drag = false;
    }

    /// What the split drew last frame, left then right: the version index,
    /// its screen rectangle and its texture coordinates.
    pub fn split_sources(&self) -> Option<[(usize, Rect, Rect); 2]> {
        self.view.split_drawn
    }

    /// The variant the canvas drew last frame instead of the current
    /// version (the pointer was on it in the strip).
    pub fn displayed_variant(&self) -> Option<usize> {
        self.view.shown_variant
    }
}
