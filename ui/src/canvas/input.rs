//! Pointer and keys on the canvas: zoom and pan, and the mask tools (brush,
//! eraser, rectangle, lasso) with their undo steps and partial texture
//! uploads.

use egui::{Color32, Pos2, Rect, Stroke, TextureOptions};
use image::GrayImage;

use crate::mask_paint::{self, Dirty};
use crate::studio::{Studio, Tool};
use crate::viewport::pixels::overlay;

impl Studio {
    /// Zoom (wheel, pinch, Ctrl+0 fit, Ctrl+1 100%) and pan (middle drag, or Space + drag).
    pub(crate) fn navigate(&mut self, ui: &egui::Ui, resp: &egui::Response, size: (u32, u32)) {
        let (scroll, zoom, space, ppp) = ui.input(|i| (i.smooth_scroll_delta, i.zoom_delta(), i.key_down(egui::Key::Space), i.pixels_per_point));
        if let Some(at) = resp.hover_pos() {
            if zoom != 1.0 {
                self.view.zoom_at(zoom, at);
            } else if scroll.y != 0.0 {
                self.view.zoom_at((scroll.y * 0.003).exp(), at);
            }
        }
        let typing = ui.ctx().egui_wants_keyboard_input();
        if !typing {
            if ui.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, egui::Key::Num0)) {
                self.view.fit(size);
            }
            if ui.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, egui::Key::Num1)) {
                self.view.actual_size(size, ppp);
            }
        }
        let panning = resp.dragged_by(egui::PointerButton::Middle) || (space && !typing && resp.dragged_by(egui::PointerButton::Primary));
        if panning {
            self.view.origin += resp.drag_delta();
        }
    }

    /// Brush, eraser, rectangle and lasso under the primary button.
    pub(crate) fn tools(&mut self, ui: &egui::Ui, resp: &egui::Response, painter: &egui::Painter) {
        let space = ui.input(|i| i.key_down(egui::Key::Space)) && !ui.ctx().egui_wants_keyboard_input();
        if space || self.run.is_some() || self.comparing {
            return;
        }
        let radius = self.settings.brush_size / 2.0;
        let erase = self.tool == Tool::Eraser || ui.input(|i| i.modifiers.alt);
        let Some(pos) = resp.interact_pointer_pos().or(resp.hover_pos()) else { return };
        let p = self.view.to_image(pos);
        let pressed = resp.is_pointer_button_down_on() && ui.input(|i| i.pointer.primary_down());

        if pressed && !self.view.stroke_active {
            self.view.stroke_active = true;
            self.view.gesture = vec![p];
            if matches!(self.tool, Tool::Brush | Tool::Eraser) {
                self.paint_segment(p, p, radius, erase, true);
            }
        } else if pressed {
            let last = *self.view.gesture.last().unwrap_or(&p);
            if last != p {
                if matches!(self.tool, Tool::Brush | Tool::Eraser) {
                    self.paint_segment(last, p, radius, erase, false);
                }
                self.view.gesture.push(p);
            }
        } else if self.view.stroke_active {
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

        // gesture feedback and brush outline
        let s = self.view.scale;
        match self.tool {
            Tool::Rectangle if self.view.stroke_active && self.view.gesture.len() > 1 => {
                let (a, b) = (self.view.gesture[0], *self.view.gesture.last().unwrap_or(&self.view.gesture[0]));
                painter.rect_stroke(Rect::from_two_pos(self.view.to_screen(a), self.view.to_screen(b)), 0.0, Stroke::new(1.5, Color32::WHITE), egui::StrokeKind::Middle);
            }
            Tool::Lasso if self.view.stroke_active => {
                let pts: Vec<Pos2> = self.view.gesture.iter().map(|&q| self.view.to_screen(q)).collect();
                painter.add(egui::Shape::line(pts, Stroke::new(1.5, Color32::WHITE)));
            }
            Tool::Brush | Tool::Eraser if resp.hovered() => {
                painter.circle_stroke(pos, radius * s, Stroke::new(1.0, Color32::WHITE));
            }
            _ => {}
        }
    }

    /// One piece of a brush stroke; `first` opens a new undo step.
    pub fn paint_segment(&mut self, a: (f32, f32), b: (f32, f32), radius: f32, erase: bool, first: bool) {
        let Some(doc) = self.doc.as_mut() else { return };
        if first {
            doc.begin_mask_edit();
        }
        let d = mask_paint::stroke_segment(&mut doc.mask, a, b, radius, erase);
        doc.revision += 1;
        self.update_mask_texture(d);
    }

    /// A whole mask edit as one undo step.
    pub fn edit_mask(&mut self, f: impl FnOnce(&mut GrayImage) -> Dirty) {
        let Some(doc) = self.doc.as_mut() else { return };
        let d = doc.edit_mask(f);
        self.update_mask_texture(d);
    }

    /// Uploads only the changed part of the overlay (fluid on large images).
    fn update_mask_texture(&mut self, d: Dirty) {
        let Some(doc) = self.doc.as_ref() else { return };
        if let Some((tex, rev)) = self.view.mask_tex.as_mut() {
            if !d.is_empty() && tex.size() == [doc.mask.width() as usize, doc.mask.height() as usize] {
                tex.set_partial([d.x0 as usize, d.y0 as usize], overlay(&doc.mask, d), TextureOptions::NEAREST);
                *rev = doc.revision;
            }
        }
    }
}
