//! What a retouch will work on, before it runs: the context crops of
//! every painted region and the token cells they regenerate (the canvas draws
//! them), and the working size the status bar shows.

use egui::{Pos2, Rect};
use unmask::tasks::FitMode;

use super::{Mode, Studio};

impl Studio {
    /// What the model will work at (the status bar): the crops of the
    /// current mask, or for a whole-image edit the bucket and its scale.
    pub fn working_text(&mut self) -> Option<String> {
        let info = self.model_info()?.clone();
        let doc = self.doc.as_ref()?;
        let (w, h) = doc.size();
        if self.mode != Mode::Retouch {
            return None;
        }
        if doc.mask_is_empty() {
            // an edit works at the model's bucket and is scaled back to the document
            let bucket = unmask::tasks::bucket(&info, unmask::tasks::EDIT_AREA);
            let (bw, bh) = unmask::tasks::fit_size(w as usize, h as usize, FitMode::Auto, info.vq_factor, bucket).ok()?;
            return Some(if (bw as u32, bh as u32) == (w, h) {
                format!("edit works at {w}x{h} (scale 1)")
            } else {
                format!("edit works at {bw}x{bh} (scale {:.2}), result scaled to {w}x{h}", bw as f64 / w as f64)
            });
        }
        self.refresh_plan();
        let crops = &self.view.crops;
        let first = crops.first()?;
        let more = if crops.len() > 1 { format!(" (+{} more crops)", crops.len() - 1) } else { String::new() };
        Some(format!("works at {}x{} (scale {:.2}){more}", first.work_w, first.work_h, first.scale()))
    }

    /// The context crops the canvas shows for the current mask.
    pub fn planned_crops(&mut self) -> Vec<unmask::crop::Crop> {
        self.refresh_plan();
        self.view.crops.clone()
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
        let (mw, mh) = (doc.mask.width() as usize, doc.mask.height() as usize);
        let native = v.codes.as_ref().is_some_and(|c| (c.height, c.width) == (mh.div_ceil(f), mw.div_ceil(f)));
        // every painted, shown region in run order, each with its own crops
        let (mut crops, mut crop_regions, mut rects, mut cell_regions) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for k in (0..doc.regions().len()).filter(|&k| !doc.regions()[k].hidden && !doc.region_is_empty(k)) {
            let mask = doc.region_mask(k);
            for c in unmask::crop::plan(mask, f, self.settings.context, info.work_area, native).unwrap_or_default() {
                if let Ok((gh, gw, cells)) = unmask::tasks::inpaint::crop_cells(mask, &c, f, self.settings.grow, Default::default(), v.content) {
                    let (sx, sy) = (c.source.w as f32 / c.work_w as f32, c.source.h as f32 / c.work_h as f32);
                    let ff = f as f32;
                    for i in (0..gh * gw).filter(|&i| cells[i]) {
                        let (r, col) = ((i / gw) as f32, (i % gw) as f32);
                        let (x0, y0) = (c.source.x as f32 + col * ff * sx, c.source.y as f32 + r * ff * sy);
                        rects.push(Rect::from_min_max(Pos2::new(x0, y0), Pos2::new(x0 + ff * sx, y0 + ff * sy)));
                        cell_regions.push(k);
                    }
                }
                crops.push(c);
                crop_regions.push(k);
            }
        }
        self.view.crop_regions = crop_regions;
        self.view.cell_regions = cell_regions;
        self.view.crops = crops;
        self.view.cells = Some((key, rects));
    }
}
