//! The canvas: the image fitted to the view with zoom and pan, the mask as a
//! translucent overlay, the token cells that will regenerate, live previews,
//! and the mask tools under the pointer.

use egui::{Color32, ColorImage, Pos2, Rect, Sense, Stroke, TextureHandle, TextureOptions, Vec2};
use image::{GrayImage, RgbImage};

use crate::app::{Studio, Tool};
use crate::mask_paint::{self, Dirty};

/// Screen transform and textures of the canvas.
pub struct View {
    /// Screen points per image pixel.
    pub scale: f32,
    /// Screen position of the image's top-left corner.
    pub origin: Pos2,
    pub fit_pending: bool,
    pub rect: Rect,
    /// The image size the view was fitted to: another size refits.
    fitted_size: (u32, u32),
    /// Texture, buffer address, version, sharp (nearest) filtering.
    image_tex: Option<(TextureHandle, u64, usize, bool)>,
    mask_tex: Option<(TextureHandle, u64)>,
    preview_tex: Option<(TextureHandle, u64)>,
    compare_tex: Option<TextureHandle>,
    pub(crate) cells: Option<(u64, Vec<Rect>)>,
    /// The context crops of the current mask (document pixels), same key as `cells`.
    pub(crate) crops: Vec<unmask::crop::Crop>,
    /// Crop previews on the GPU, by their box.
    crop_tex: Vec<(unmask::crop::Rect, TextureHandle, u64)>,
    /// Points of the tool gesture in progress, in image pixels.
    gesture: Vec<(f32, f32)>,
    stroke_active: bool,
}

impl Default for View {
    fn default() -> Self {
        Self {
            scale: 0.0,
            origin: Pos2::ZERO,
            fit_pending: true,
            rect: Rect::NOTHING,
            fitted_size: (0, 0),
            image_tex: None,
            mask_tex: None,
            preview_tex: None,
            compare_tex: None,
            cells: None,
            crops: Vec::new(),
            crop_tex: Vec::new(),
            gesture: Vec::new(),
            stroke_active: false,
        }
    }
}

impl View {
    pub fn image_filter_sharp(&self) -> Option<bool> {
        self.image_tex.as_ref().map(|t| t.3)
    }

    pub fn stroke_active(&self) -> bool {
        self.stroke_active
    }

    pub fn to_screen(&self, p: (f32, f32)) -> Pos2 {
        Pos2::new(self.origin.x + p.0 * self.scale, self.origin.y + p.1 * self.scale)
    }

    pub fn to_image(&self, p: Pos2) -> (f32, f32) {
        ((p.x - self.origin.x) / self.scale, (p.y - self.origin.y) / self.scale)
    }

    pub fn fit(&mut self, size: (u32, u32)) {
        let r = self.rect.shrink(8.0);
        let s = (r.width() / size.0 as f32).min(r.height() / size.1 as f32).max(0.01);
        self.scale = s;
        self.origin = r.center() - Vec2::new(size.0 as f32, size.1 as f32) * s / 2.0;
        self.fit_pending = false;
        self.fitted_size = size;
    }

    /// Zooms by `factor` keeping the image point under `at` where it is.
    pub fn zoom_at(&mut self, factor: f32, at: Pos2) {
        let new = (self.scale * factor).clamp(0.02, 64.0);
        let p = self.to_image(at);
        self.scale = new;
        self.origin = Pos2::new(at.x - p.0 * new, at.y - p.1 * new);
    }

    pub fn actual_size(&mut self, size: (u32, u32), ppp: f32) {
        let center = self.rect.center();
        self.scale = 1.0 / ppp;
        self.origin = center - Vec2::new(size.0 as f32, size.1 as f32) * self.scale / 2.0;
    }
}

/// Small textures of history versions, made once per image.
#[derive(Default)]
pub struct Thumbnails {
    made: std::collections::HashMap<usize, TextureHandle>,
}

impl Thumbnails {
    /// Versions are never changed once made, so the pixel buffer's address
    /// names one for as long as it lives.
    pub fn get(&mut self, ctx: &egui::Context, img: &RgbImage) -> TextureHandle {
        let key = img.as_ptr() as usize;
        self.made
            .entry(key)
            .or_insert_with(|| {
                let h = 48u32;
                let w = ((img.width() as f32 * h as f32 / img.height().max(1) as f32).round() as u32).clamp(1, 192);
                let small = image::imageops::resize(img, w, h, image::imageops::FilterType::Triangle);
                ctx.load_texture(format!("thumb-{key}"), color_image(&small), TextureOptions::LINEAR)
            })
            .clone()
    }
}

fn color_image(img: &RgbImage) -> ColorImage {
    ColorImage::from_rgb([img.width() as usize, img.height() as usize], img.as_raw())
}

/// A crop preview: its regenerated cells opaque, the rest transparent, so
/// the document's own (sharper) pixels show around them.
fn crop_image(img: &RgbImage, region: Option<&GrayImage>) -> ColorImage {
    let Some(m) = region.filter(|m| m.dimensions() == img.dimensions()) else { return color_image(img) };
    let mut rgba = Vec::with_capacity(img.as_raw().len() / 3 * 4);
    for (p, a) in img.pixels().zip(m.pixels()) {
        rgba.extend_from_slice(&[p[0], p[1], p[2], if a[0] > 127 { 255 } else { 0 }]);
    }
    ColorImage::from_rgba_unmultiplied([img.width() as usize, img.height() as usize], &rgba)
}

/// A texture no larger than the GPU allows: larger images are shown
/// downscaled (the document keeps every pixel).
fn fitted(img: &RgbImage, max_side: usize) -> ColorImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w.max(h) <= max_side {
        return color_image(img);
    }
    let s = max_side as f32 / w.max(h) as f32;
    let (nw, nh) = (((w as f32 * s) as u32).max(1), ((h as f32 * s) as u32).max(1));
    color_image(&image::imageops::resize(img, nw, nh, image::imageops::FilterType::Triangle))
}

/// The mask overlay, downscaled like [`fitted`] when it must be.
fn fitted_overlay(mask: &GrayImage, max_side: usize) -> ColorImage {
    let (w, h) = (mask.width() as usize, mask.height() as usize);
    if w.max(h) <= max_side {
        return overlay(mask, Dirty::whole(mask));
    }
    let s = max_side as f32 / w.max(h) as f32;
    let (nw, nh) = (((w as f32 * s) as u32).max(1), ((h as f32 * s) as u32).max(1));
    let small = image::imageops::resize(mask, nw, nh, image::imageops::FilterType::Nearest);
    overlay(&small, Dirty::whole(&small))
}

/// Mask overlay pixels for a rectangle of the mask.
fn overlay(mask: &GrayImage, d: Dirty) -> ColorImage {
    let (w, h) = ((d.x1 - d.x0) as usize, (d.y1 - d.y0) as usize);
    let mut rgba = Vec::with_capacity(w * h * 4);
    for y in d.y0..d.y1 {
        for x in d.x0..d.x1 {
            let on = mask.get_pixel(x, y)[0] > 127;
            rgba.extend_from_slice(if on { &[255, 64, 64, 110] } else { &[0, 0, 0, 0] });
        }
    }
    ColorImage::from_rgba_unmultiplied([w, h], &rgba)
}

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

/// Texture options: sharp pixels when zoomed in, smooth when zoomed out.
fn options(scale: f32) -> TextureOptions {
    if scale >= 2.0 {
        TextureOptions::NEAREST
    } else {
        TextureOptions::LINEAR
    }
}

impl Studio {
    /// The central canvas.
    pub(crate) fn canvas_ui(&mut self, ui: &mut egui::Ui) {
        let rect = ui.available_rect_before_wrap();
        let resp = ui.allocate_rect(rect, Sense::click_and_drag());
        self.view.rect = rect;
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 0.0, Color32::from_gray(38));

        // a sketch's preview is shown fitted on its own, without touching the view
        let sketch = self.run.as_ref().filter(|r| r.kind == crate::app::RunKind::Sketch);
        if let Some((p, rev)) = sketch.and_then(|r| r.preview.as_ref().map(|p| (p.clone(), r.preview_revision))) {
            if self.view.preview_tex.as_ref().is_none_or(|t| t.1 != rev) {
                let max_side = ui.input(|i| i.max_texture_side);
                self.view.preview_tex = Some((ui.ctx().load_texture("canvas-preview", fitted(&p, max_side), TextureOptions::LINEAR), rev));
            }
            let (w, h) = (p.width() as f32, p.height() as f32);
            let s = ((rect.width() - 16.0) / w).min((rect.height() - 16.0) / h);
            let r = Rect::from_center_size(rect.center(), Vec2::new(w * s, h * s));
            if let Some((t, _)) = &self.view.preview_tex {
                painter.image(t.id(), r, Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)), Color32::WHITE);
            }
            return;
        }
        if self.doc.is_none() {
            painter.text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                "Open an image (Ctrl+O, drag and drop, or a path on the command line)\nor switch to Sketch to make one",
                egui::FontId::proportional(16.0),
                Color32::from_gray(170),
            );
            return;
        }
        let size = self.doc.as_ref().map(|d| d.size()).unwrap_or((1, 1));
        if self.view.fit_pending || self.view.scale <= 0.0 || self.view.fitted_size != size {
            self.view.fit(size);
        }
        self.navigate(ui, &resp, size);
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
            let tex = ctx.load_texture("canvas-mask", fitted_overlay(&doc.mask, max_side), TextureOptions::NEAREST);
            self.view.mask_tex = Some((tex, doc.revision));
        }

        let img_rect = Rect::from_min_max(self.view.to_screen((0.0, 0.0)), self.view.to_screen((size.0 as f32, size.1 as f32)));
        let uv = Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0));
        let doc_id = doc.id;
        let live = self.run.as_ref().filter(|r| r.doc_id == Some(doc_id)).and_then(|r| r.preview.as_ref().map(|p| (p, r.preview_at, r.preview_revision)));
        if self.comparing {
            let tex = self.view.compare_tex.get_or_insert_with(|| ctx.load_texture("canvas-original", fitted(doc.original(), max_side), opts));
            painter.image(tex.id(), img_rect, uv, Color32::WHITE);
        } else if let Some((p, None, rev)) = live.filter(|(p, at, _)| at.is_some() || p.dimensions() == size) {
            // a whole-image preview (an edit at the document's size)
            if self.view.preview_tex.as_ref().is_none_or(|t| t.1 != rev) {
                self.view.preview_tex = Some((ctx.load_texture("canvas-preview", fitted(p, max_side), opts), rev));
            }
            if let Some((t, _)) = &self.view.preview_tex {
                painter.image(t.id(), img_rect, uv, Color32::WHITE);
            }
        } else if let Some((t, ..)) = &self.view.image_tex {
            painter.image(t.id(), img_rect, uv, Color32::WHITE);
        }
        if !self.comparing {
            self.draw_crop_previews(&painter, img_rect);
        }
        if !self.comparing {
            if let Some((t, _)) = &self.view.mask_tex {
                painter.image(t.id(), img_rect, uv, Color32::WHITE);
            }
            self.draw_cells(&painter);
        } else {
            painter.text(rect.left_top() + Vec2::new(10.0, 10.0), egui::Align2::LEFT_TOP, "original", egui::FontId::proportional(14.0), Color32::YELLOW);
        }
        if !self.comparing {
            self.view.compare_tex = None;
        }
        self.tools(ui, &resp, &painter);
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
        let stroke = Stroke::new(1.0, Color32::from_rgba_unmultiplied(255, 220, 0, 160));
        if let Some((_, rects)) = &self.view.cells {
            for r in rects.iter().take(20_000) {
                let sr = Rect::from_min_max(self.view.to_screen((r.min.x, r.min.y)), self.view.to_screen((r.max.x, r.max.y)));
                painter.rect_stroke(sr, 0.0, stroke, egui::StrokeKind::Inside);
            }
        }
        let box_stroke = Stroke::new(1.5, Color32::from_rgb(90, 200, 255));
        for c in &self.view.crops {
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

    /// Recomputes the crops and cells when the mask, the settings or the
    /// model changed (never during a stroke: a pass over a 24 MP mask per
    /// pointer move would stutter).
    pub(crate) fn refresh_plan(&mut self) {
        let (Some(doc), Some(info)) = (self.doc.as_ref(), self.model_info()) else {
            self.view.cells = None;
            self.view.crops.clear();
            return;
        };
        let f = info.vq_factor;
        let ctx_key = match self.settings.context {
            unmask::crop::Context::Auto => 1u64,
            unmask::crop::Context::Whole => 2,
            unmask::crop::Context::Margin(m) => 3 + m as u64,
        };
        let key = doc.revision ^ ((self.settings.grow as u64) << 48) ^ ((f as u64) << 40) ^ (ctx_key << 20) ^ (doc.id << 56) ^ (doc.current as u64) << 8;
        let stale = self.view.cells.as_ref().is_none_or(|c| c.0 != key);
        if !stale || (self.view.stroke_active && self.view.cells.is_some()) {
            return;
        }
        let v = doc.version();
        let native = v.codes.as_ref().is_some_and(|c| (c.height, c.width) == ((doc.mask.height() as usize).div_ceil(f), (doc.mask.width() as usize).div_ceil(f)));
        let crops = unmask::crop::plan(&doc.mask, f, self.settings.context, info.work_area, native).unwrap_or_default();
        let mut rects = Vec::new();
        for c in &crops {
            if let Ok((gh, gw, cells)) = unmask::tasks::inpaint::crop_cells(&doc.mask, c, f, self.settings.grow, v.content) {
                let (sx, sy) = (c.source.w as f32 / c.work_w as f32, c.source.h as f32 / c.work_h as f32);
                let ff = f as f32;
                for i in (0..gh * gw).filter(|&i| cells[i]) {
                    let (r, col) = ((i / gw) as f32, (i % gw) as f32);
                    let (x0, y0) = (c.source.x as f32 + col * ff * sx, c.source.y as f32 + r * ff * sy);
                    rects.push(Rect::from_min_max(Pos2::new(x0, y0), Pos2::new(x0 + ff * sx, y0 + ff * sy)));
                }
            }
        }
        self.view.crops = crops;
        self.view.cells = Some((key, rects));
    }

    /// Zoom (wheel, pinch, Ctrl+0 fit, Ctrl+1 100%) and pan (middle drag, or Space + drag).
    fn navigate(&mut self, ui: &egui::Ui, resp: &egui::Response, size: (u32, u32)) {
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
    fn tools(&mut self, ui: &egui::Ui, resp: &egui::Response, painter: &egui::Painter) {
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
