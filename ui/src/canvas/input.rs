//! Pointer and keys on the canvas: zoom and pan, the mask tools (brush,
//! eraser, rectangle, lasso) with their undo steps and partial texture
//! uploads, the split's divider, and the keys for the brush size and the
//! mask overlay.
//!
//! The tools read every pointer event of the frame, in order, not the
//! pointer's state at the end of it: on a slow frame (a 12 MP photo) the
//! press, the moves and the release can all arrive in one frame, and a
//! rectangle must end where the button was released, not where the pointer
//! was last seen.

use egui::{Color32, Event, Key, PointerButton, Pos2, Rect, Stroke, TextureOptions};
use image::GrayImage;

use crate::mask_paint::{self, Dirty};
use crate::settings::Settings;
use crate::studio::{Studio, Tool};
use crate::viewport::pixels::overlay;

impl Studio {
    /// Zoom (wheel, pinch, Ctrl+0 fit, Ctrl+1 100%) and pan (middle drag, or Space + drag).
    pub(crate) fn navigate(&mut self, ui: &egui::Ui, resp: &egui::Response, size: (u32, u32)) {
        let (scroll, zoom, space, ppp) = ui.input(|i| (i.smooth_scroll_delta, i.zoom_delta(), i.key_down(Key::Space), i.pixels_per_point));
        if let Some(at) = resp.hover_pos() {
            if zoom != 1.0 {
                self.view.zoom_at(zoom, at);
            } else if scroll.y != 0.0 {
                self.view.zoom_at((scroll.y * 0.003).exp(), at);
            }
        }
        let typing = ui.ctx().egui_wants_keyboard_input();
        if !typing {
            if ui.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, Key::Num0)) {
                self.view.fit(size);
            }
            if ui.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, Key::Num1)) {
                self.view.actual_size(size, ppp);
            }
        }
        let panning = resp.dragged_by(PointerButton::Middle) || (space && !typing && resp.dragged_by(PointerButton::Primary));
        if panning {
            self.view.pan(resp.drag_delta());
        }
    }

    /// `[` and `]`: every press of the frame is a step (ten presses queued in
    /// one slow frame grow the brush ten steps). The shortcuts, earlier in
    /// the frame, step once per frame however many presses came; so the size
    /// is recomputed here from where the last frame left it. Should they
    /// count every press themselves, the size is already right and is kept.
    pub(crate) fn brush_keys(&mut self, ui: &egui::Ui) {
        let presses: Vec<i32> = ui.input(|i| {
            i.events
                .iter()
                .filter_map(|e| match e {
                    Event::Key { key: Key::CloseBracket, pressed: true, .. } => Some(1),
                    Event::Key { key: Key::OpenBracket, pressed: true, .. } => Some(-1),
                    _ => None,
                })
                .collect()
        });
        // every press of the frame counts: ten presses on a slow frame are ten steps
        if !presses.is_empty() && !ui.ctx().egui_wants_keyboard_input() {
            self.settings.brush_size = presses.iter().copied().fold(self.settings.brush_size, Settings::stepped_brush);
        }
    }

    /// M shows or hides the mask overlay.
    pub(crate) fn mask_key(&mut self, ui: &egui::Ui) {
        if !ui.ctx().egui_wants_keyboard_input() && ui.input_mut(|i| i.consume_key(egui::Modifiers::NONE, Key::M)) {
            self.view.mask_shown = !self.view.mask_shown;
        }
    }

    /// Whether a press at `pos` is on the canvas itself: inside it, with no
    /// window or menu over it, and no other widget (a panel's resize edge)
    /// taking the drag.
    fn on_canvas(&self, ui: &egui::Ui, resp: &egui::Response, pos: Pos2) -> bool {
        let top = ui.ctx().layer_id_at(pos);
        let other_drag = ui.ctx().dragged_id().is_some_and(|id| id != resp.id);
        self.view.rect.contains(pos) && top.is_none_or(|l| l == ui.layer_id()) && !other_drag
    }

    /// Brush, eraser, rectangle and lasso under the primary button; the
    /// split's divider when the press is on it.
    pub(crate) fn tools(&mut self, ui: &egui::Ui, resp: &egui::Response, painter: &egui::Painter) {
        let space = ui.input(|i| i.key_down(Key::Space)) && !ui.ctx().egui_wants_keyboard_input();
        let blocked = space || self.run.is_some() || self.comparing;
        if blocked && self.view.stroke_active {
            // a run or a pan took over mid-gesture: what was painted stays, a shape is dropped
            self.view.stroke_active = false;
            self.view.gesture.clear();
        }
        let radius = self.view.brush_radius(self.settings.brush_size);
        let (events, alt, down) = ui.input(|i| (i.events.clone(), i.modifiers.alt, i.pointer.primary_down()));
        let erase = self.tool == Tool::Eraser || alt;
        for e in &events {
            match *e {
                Event::PointerButton { pos, button: PointerButton::Primary, pressed: true, modifiers } if self.on_canvas(ui, resp, pos) => {
                    if modifiers.command && !self.view.stroke_active {
                        // Ctrl+click picks the region painted under the pointer
                        self.pick_region_at(self.view.to_image(pos));
                    } else if self.near_divider(pos) {
                        self.view.divider_drag = true;
                    } else if !blocked && !self.view.stroke_active {
                        self.begin_gesture(self.view.to_image(pos), radius, erase);
                    }
                }
                Event::PointerMoved(pos) if self.view.divider_drag => self.drag_divider(pos),
                Event::PointerMoved(pos) if self.view.stroke_active => self.extend_gesture(self.view.to_image(pos), radius, erase),
                Event::PointerButton { pos, button: PointerButton::Primary, pressed: false, .. } => {
                    if self.view.divider_drag {
                        self.drag_divider(pos);
                        self.view.divider_drag = false;
                    } else if self.view.stroke_active {
                        self.extend_gesture(self.view.to_image(pos), radius, erase);
                        self.end_gesture(erase);
                    }
                }
                _ => {}
            }
        }
        // the button came up where no event told (outside the window): end there
        if !down {
            self.view.divider_drag = false;
            if self.view.stroke_active {
                self.end_gesture(erase);
            }
        }

        // gesture feedback and brush outline
        match self.tool {
            Tool::Rectangle if self.view.stroke_active && self.view.gesture.len() > 1 => {
                let (a, b) = (self.view.gesture[0], *self.view.gesture.last().unwrap_or(&self.view.gesture[0]));
                painter.rect_stroke(Rect::from_two_pos(self.view.to_screen(a), self.view.to_screen(b)), 0.0, Stroke::new(1.5, Color32::WHITE), egui::StrokeKind::Middle);
            }
            Tool::Lasso if self.view.stroke_active => {
                let pts: Vec<Pos2> = self.view.gesture.iter().map(|&q| self.view.to_screen(q)).collect();
                painter.add(egui::Shape::line(pts, Stroke::new(1.5, Color32::WHITE)));
            }
            Tool::Brush | Tool::Eraser if resp.hovered() && !blocked => {
                // not under a window, a menu or a label: the brush is not there
                if let Some(pos) = resp.hover_pos().filter(|p| ui.ctx().layer_id_at(*p).is_none_or(|l| l == ui.layer_id())) {
                    // the size is in screen points: the outline is the same at every zoom
                    painter.circle_stroke(pos, self.settings.brush_size / 2.0, Stroke::new(1.0, Color32::WHITE));
                }
            }
            _ => {}
        }
    }

    /// Selects the region painted at `p` (image pixels), if any.
    fn pick_region_at(&mut self, p: (f32, f32)) {
        let Some(doc) = self.doc.as_ref() else { return };
        if p.0 < 0.0 || p.1 < 0.0 {
            return;
        }
        if let Some(i) = doc.region_at(p.0 as u32, p.1 as u32) {
            self.select_region(i);
        }
    }

    /// The button went down on the canvas at `p` (image pixels).
    fn begin_gesture(&mut self, p: (f32, f32), radius: f32, erase: bool) {
        self.view.stroke_active = true;
        self.view.gesture = vec![p];
        if matches!(self.tool, Tool::Brush | Tool::Eraser) {
            self.paint_segment(p, p, radius, erase, true);
        }
    }

    /// The pointer moved to `p` with the button down.
    fn extend_gesture(&mut self, p: (f32, f32), radius: f32, erase: bool) {
        let last = *self.view.gesture.last().unwrap_or(&p);
        if last != p {
            if matches!(self.tool, Tool::Brush | Tool::Eraser) {
                self.paint_segment(last, p, radius, erase, false);
            }
            self.view.gesture.push(p);
        }
    }

    /// The button came up: a rectangle or lasso is filled now, as one undo step.
    fn end_gesture(&mut self, erase: bool) {
        self.view.stroke_active = false;
        let g = std::mem::take(&mut self.view.gesture);
        match self.tool {
            Tool::Rectangle if g.len() > 1 => {
                let (a, b) = (g[0], *g.last().unwrap_or(&g[0]));
                self.edit_mask(|m| mask_paint::rectangle(m, a, b, erase));
            }
            Tool::Lasso if g.len() > 2 => {
                self.edit_mask(|m| mask_paint::lasso(m, &g, erase));
            }
            _ => {}
        }
    }

    /// One piece of a brush stroke (`radius` in image pixels); `first` opens a new undo step.
    pub fn paint_segment(&mut self, a: (f32, f32), b: (f32, f32), radius: f32, erase: bool, first: bool) {
        let Some(doc) = self.doc.as_mut() else { return };
        if first {
            doc.begin_mask_edit();
        }
        let d = mask_paint::stroke_segment(&mut doc.mask, a, b, radius, erase);
        if !erase {
            // regions never overlap: the stroke takes these pixels from the others
            doc.claim(d);
        }
        doc.revision += 1;
        // painting is looking at the mask again
        self.view.mask_shown = true;
        self.update_mask_texture(d);
    }

    /// A whole mask edit as one undo step.
    pub fn edit_mask(&mut self, f: impl FnOnce(&mut GrayImage) -> Dirty) {
        let Some(doc) = self.doc.as_mut() else { return };
        let d = doc.edit_mask(f);
        self.view.mask_shown = true;
        self.update_mask_texture(d);
    }

    /// Uploads only the changed part of the overlay (fluid on large images).
    fn update_mask_texture(&mut self, d: Dirty) {
        let Some(doc) = self.doc.as_ref() else { return };
        let fits = self.view.mask_tex.as_ref().is_some_and(|(tex, _)| tex.size() == [doc.mask.width() as usize, doc.mask.height() as usize]);
        if d.is_empty() || !fits {
            return;
        }
        let pixels = overlay(&self.overlay_layers(), d);
        let revision = doc.revision;
        if let Some((tex, rev)) = self.view.mask_tex.as_mut() {
            tex.set_partial([d.x0 as usize, d.y0 as usize], pixels, TextureOptions::NEAREST);
            *rev = revision;
        }
    }

    /// Every shown region's mask with its colour, in run order.
    pub(crate) fn overlay_layers(&self) -> Vec<(&GrayImage, [u8; 3])> {
        let Some(doc) = self.doc.as_ref() else { return Vec::new() };
        (0..doc.regions().len()).filter(|&i| !doc.regions()[i].hidden).map(|i| (doc.region_mask(i), self.region_color(i))).collect()
    }
}
