//! The canvas: the image fitted to the view with zoom and pan, the mask as a
//! translucent overlay, the token cells that will regenerate, live previews,
//! (in `compare`) the before/after split and the strip's hovered variant,
//! and (in `input`) the mask tools under the pointer. The view state it
//! draws with is `crate::viewport`; the crops and cells come from the
//! Studio's plan.

use egui::{Color32, Pos2, Rect, Sense, Stroke, TextureOptions, Vec2};
use image::{GrayImage, RgbImage};

use crate::settings::OverlayColor;
use crate::studio::{RunKind, Studio};
use crate::viewport::centred;
use crate::viewport::pixels::{crop_image, fitted, fitted_overlay, mean_hue, options};

mod compare;
mod input;
mod labels;

pub(crate) use labels::{cut, RowAction};

/// The four sides of `r` as dashes.
fn dashed(r: Rect) -> Vec<[Pos2; 2]> {
    let mut out = Vec::new();
    let (dash, gap) = (6.0, 4.0);
    for (a, b) in [(r.left_top(), r.right_top()), (r.right_top(), r.right_bottom()), (r.right_bottom(), r.left_bottom()), (r.left_bottom(), r.left_top())] {
        let len = a.distance(b);
        let dir = (b - a) / len.max(1e-3);
        let mut t = 0.0;
        while t < len {
            out.push([a + dir * t, a + dir * (t + dash).min(len)]);
            t += dash + gap;
        }
    }
    out
}

impl Studio {
    /// The central canvas.
    pub(crate) fn canvas_ui(&mut self, ui: &mut egui::Ui) {
        let rect = ui.available_rect_before_wrap();
        let resp = ui.allocate_rect(rect, Sense::click_and_drag());
        self.view.rect = rect;
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 0.0, Color32::from_gray(38));
        self.brush_keys(ui);
        self.view.shown_variant = None;
        self.view.split_drawn = None;

        // a sketch's preview is shown fitted on its own, without touching the view
        let sketch = self.run.as_ref().filter(|r| r.kind == RunKind::Sketch);
        if let Some((p, rev)) = sketch.and_then(|r| r.preview.as_ref().map(|p| (p.clone(), r.preview_revision))) {
            if self.view.preview_tex.as_ref().is_none_or(|t| t.1 != rev) {
                let max_side = ui.input(|i| i.max_texture_side);
                self.view.preview_tex = Some((ui.ctx().load_texture("canvas-preview", fitted(&p, max_side), TextureOptions::LINEAR), rev));
            }
            if let Some((t, _)) = &self.view.preview_tex {
                painter.image(t.id(), centred(rect, p.dimensions()), Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)), Color32::WHITE);
            }
            return;
        }
        if self.doc.is_none() {
            // a sketch's variants have no document yet: hovering one shows it
            self.draw_hovered_variant(&painter, rect, None);
            if self.view.shown_variant.is_none() {
                painter.text(
                    rect.center(),
                    egui::Align2::CENTER_CENTER,
                    "Open an image (Ctrl+O, drag and drop, or a path on the command line)\nor switch to Sketch to make one",
                    egui::FontId::proportional(16.0),
                    Color32::from_gray(170),
                );
            }
            return;
        }
        let size = self.doc.as_ref().map(|d| d.size()).unwrap_or((1, 1));
        if self.view.needs_fit(size) {
            self.view.fit(size);
        }
        self.navigate(ui, &resp, size);
        self.watch_versions();
        self.mask_key(ui);
        let rgb = self.overlay_rgb();
        if rgb != self.view.overlay_rgb {
            self.view.overlay_rgb = rgb;
            self.view.mask_tex = None;
        }
        let Some(doc) = self.doc.as_ref() else { return };

        // textures are rebuilt only when their content changed
        let ctx = ui.ctx().clone();
        let opts = options(self.view.scale);
        let max_side = ui.input(|i| i.max_texture_side);
        // versions never change once made: the pixel buffer identifies one
        // the filter is part of the key: zooming past 2x re-uploads with sharp
        // pixels, and back (a texture's filter is fixed when it is made)
        let cur = (doc.image().as_ptr() as u64, doc.current, opts == TextureOptions::NEAREST);
        let stale = self.view.image_tex.as_ref().is_none_or(|t| (t.1, t.2, t.3) != cur);
        if stale {
            let tex = ctx.load_texture("canvas-image", fitted(doc.image(), max_side), opts);
            self.view.image_tex = Some((tex, cur.0, cur.1, cur.2));
        }
        // an oversized mask is re-uploaded downscaled once a stroke ends
        let stale_mask = self.view.mask_tex.as_ref().is_none_or(|t| t.1 != doc.revision);
        if stale_mask && !(self.view.stroke_active && self.view.mask_tex.is_some()) {
            let tex = ctx.load_texture("canvas-mask", fitted_overlay(&self.overlay_layers(), max_side), TextureOptions::NEAREST);
            self.view.mask_tex = Some((tex, doc.revision));
        }

        let img_rect = Rect::from_min_max(self.view.to_screen((0.0, 0.0)), self.view.to_screen((size.0 as f32, size.1 as f32)));
        let uv = Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0));
        let doc_id = doc.id;
        let live = self.run.as_ref().filter(|r| r.doc_id == Some(doc_id)).and_then(|r| r.preview.as_ref().map(|p| (p, r.preview_at, r.preview_revision)));
        // what is drawn, first match: the original (C held), a variant under
        // the pointer in the strip, a whole-image live preview, the
        // before/after split, the current version
        if self.comparing {
            let tex = self.view.compare_tex.get_or_insert_with(|| ctx.load_texture("canvas-original", fitted(doc.original(), max_side), opts));
            painter.image(tex.id(), img_rect, uv, Color32::WHITE);
        } else if self.view.hover_variant.is_some_and(|i| i < self.variants.len()) {
            self.draw_hovered_variant(&painter, rect, Some(img_rect));
        } else if let Some((p, None, rev)) = live.filter(|(p, at, _)| at.is_some() || p.dimensions() == size) {
            // a whole-image preview (an edit at the document's size)
            if self.view.preview_tex.as_ref().is_none_or(|t| t.1 != rev) {
                self.view.preview_tex = Some((ctx.load_texture("canvas-preview", fitted(p, max_side), opts), rev));
            }
            if let Some((t, _)) = &self.view.preview_tex {
                painter.image(t.id(), img_rect, uv, Color32::WHITE);
            }
        } else if !self.draw_split(&painter, img_rect, opts, max_side) {
            if let Some((t, ..)) = &self.view.image_tex {
                painter.image(t.id(), img_rect, uv, Color32::WHITE);
            }
        }
        let split = self.view.split_drawn.is_some();
        if self.comparing {
            painter.text(rect.left_top() + Vec2::new(10.0, 10.0), egui::Align2::LEFT_TOP, "original", egui::FontId::proportional(14.0), Color32::YELLOW);
        } else if self.view.shown_variant.is_none() {
            // a hovered variant is shown bare: it is what one is choosing
            self.draw_crop_previews(&painter, img_rect);
            if self.view.mask_shown {
                if let Some((t, _)) = &self.view.mask_tex {
                    painter.image(t.id(), img_rect, uv, Color32::WHITE);
                }
                self.draw_cells(&painter);
            }
            if split {
                self.draw_divider(&painter, img_rect);
            }
        }
        if !self.comparing {
            self.view.compare_tex = None;
        }
        self.tools(ui, &resp, &painter);
        self.region_labels(ui);
    }

    /// The mask overlay's colour: the chosen one, or for `Auto` the one that
    /// contrasts most with the current version's mean hue (once per version).
    fn overlay_rgb(&mut self) -> [u8; 3] {
        let setting = self.settings.overlay_color;
        if let Some(rgb) = setting.rgb() {
            return rgb;
        }
        let Some(img) = self.doc.as_ref().map(|d| d.image()) else { return self.view.overlay_rgb };
        let key = img.as_ptr() as u64;
        if let Some((k, rgb)) = self.view.auto_overlay {
            if k == key {
                return rgb;
            }
        }
        let pick = OverlayColor::contrasting(mean_hue(img)).rgb().unwrap_or([255, 60, 60]);
        self.view.auto_overlay = Some((key, pick));
        pick
    }

    /// Inpaint previews: each crop at working size, drawn scaled into its box
    /// of the document (nothing of the full image is decoded per step).
    fn draw_crop_previews(&mut self, painter: &egui::Painter, img_rect: Rect) {
        let Some(run) = self.run.as_ref().filter(|r| r.doc_id == self.doc.as_ref().map(|d| d.id)) else {
            self.view.crop_tex.clear();
            return;
        };
        let rev = run.preview_revision;
        let mut items: Vec<(unmask::crop::Rect, &RgbImage, Option<&GrayImage>, u64)> =
            run.done_crops.iter().map(|(r, p, m)| (*r, p, m.as_ref(), 0)).collect();
        if let (Some(at), Some(p)) = (run.preview_at, run.preview.as_ref()) {
            items.push((at, p, run.preview_region.as_ref(), rev));
        }
        let ctx = painter.ctx().clone();
        let clip = painter.with_clip_rect(img_rect.intersect(painter.clip_rect()));
        for (at, p, region, rev) in items {
            let i = match self.view.crop_tex.iter().position(|t| t.0 == at) {
                Some(i) => i,
                None => {
                    let t = ctx.load_texture(format!("crop-{}-{}", at.x, at.y), crop_image(p, region), TextureOptions::LINEAR);
                    self.view.crop_tex.push((at, t, u64::MAX));
                    self.view.crop_tex.len() - 1
                }
            };
            let r = Rect::from_min_max(self.view.to_screen((at.x as f32, at.y as f32)), self.view.to_screen((at.x1() as f32, at.y1() as f32)));
            let entry = &mut self.view.crop_tex[i];
            // finished crops (rev 0) upload once; the live one on each new preview
            if entry.2 != rev {
                entry.1.set(crop_image(p, region), TextureOptions::LINEAR);
                entry.2 = rev;
            }
            clip.image(entry.1.id(), r, Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)), Color32::WHITE);
        }
    }

    /// The context crops of the current mask (dashed boxes, with their
    /// working size) and the token cells each will regenerate at working
    /// scale (mask average > 0.5, grown): what the run will do.
    fn draw_cells(&mut self, painter: &egui::Painter) {
        if !self.settings.show_cells {
            return;
        }
        self.refresh_plan();
        // one region keeps the cells yellow and the boxes blue; several draw each in its colour
        let several = self.doc.as_ref().is_some_and(|d| d.regions().len() > 1);
        let colour = |k: usize, alpha: u8, one: [u8; 3]| {
            let c = if several { self.region_color(k) } else { one };
            Color32::from_rgba_unmultiplied(c[0], c[1], c[2], alpha)
        };
        if let Some((_, rects)) = &self.view.cells {
            for (r, k) in rects.iter().zip(&self.view.cell_regions).take(20_000) {
                let sr = Rect::from_min_max(self.view.to_screen((r.min.x, r.min.y)), self.view.to_screen((r.max.x, r.max.y)));
                painter.rect_stroke(sr, 0.0, Stroke::new(1.0, colour(*k, 160, [255, 220, 0])), egui::StrokeKind::Inside);
            }
        }
        for (c, k) in self.view.crops.iter().zip(&self.view.crop_regions) {
            let box_stroke = Stroke::new(1.5, colour(*k, 255, [90, 200, 255]));
            let s = c.source;
            let r = Rect::from_min_max(self.view.to_screen((s.x as f32, s.y as f32)), self.view.to_screen((s.x1() as f32, s.y1() as f32)));
            for seg in dashed(r) {
                painter.line_segment(seg, box_stroke);
            }
            let label = format!("context {}x{} -> model {}x{}", s.w, s.h, c.work_w, c.work_h);
            let galley = painter.layout_no_wrap(label, egui::FontId::proportional(11.0), Color32::from_rgb(120, 215, 255));
            let at = r.left_top() + Vec2::new(3.0, 3.0);
            painter.rect_filled(Rect::from_min_size(at, galley.size()).expand(2.0), 2.0, Color32::from_black_alpha(170));
            painter.galley(at, galley, Color32::WHITE);
        }
    }
}

/// The canvas's handles for tests and benches.
impl Studio {
    /// Screen position of an image pixel on the canvas (as last drawn).
    pub fn view_to_screen(&self, p: (f32, f32)) -> egui::Pos2 {
        self.view.to_screen(p)
    }

    /// Sets the zoom (screen points per image pixel) around the canvas centre.
    pub fn set_zoom(&mut self, scale: f32) {
        let c = self.view.rect.center();
        self.view.zoom_at(scale / self.view.scale.max(1e-6), c);
    }

    /// Whether the canvas image is drawn with sharp (nearest) filtering, as
    /// last uploaded; `None` before the first frame.
    pub fn canvas_filter_is_sharp(&self) -> Option<bool> {
        self.view.image_filter_sharp()
    }

    /// Number of token cells the overlay shows as regenerating.
    pub fn cell_overlay_count(&self) -> usize {
        self.view.cells.as_ref().map_or(0, |c| c.1.len())
    }

    /// The canvas's rectangle on screen (as last drawn): the window less the panels.
    pub fn canvas_rect(&self) -> egui::Rect {
        self.view.rect
    }

    /// Screen points per image pixel.
    pub fn zoom(&self) -> f32 {
        self.view.scale
    }

    /// Whether the mask overlay is drawn (a result landing hides it).
    pub fn mask_overlay_shown(&self) -> bool {
        self.view.mask_shown
    }

    /// Shows or hides the mask overlay (the Show mask toggle, key M).
    pub fn set_mask_overlay(&mut self, shown: bool) {
        self.view.mask_shown = shown;
    }
}
