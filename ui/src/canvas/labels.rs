//! The regions' labels on the canvas: each painted, shown region has a
//! label pinned beside its painted box (right of it, else left, above,
//! below: never over the region it names while there is room), with its
//! colour, name and prompt; the selected region's label holds the prompt
//! field itself, so a prompt is typed where it applies. Labels follow zoom
//! and pan (they are placed from the view each frame) and sit on a dark
//! plate, readable on any photo. Clicking a label selects its region; its
//! right-click menu (here, shared with the Regions list of the side panel)
//! renames, describes, reorders and deletes.

use egui::{Color32, Pos2, Rect, RichText, Stroke, Vec2};

use crate::mask_paint::Dirty;
use crate::studio::Studio;

/// Label width on screen (points); the height follows the text.
const WIDTH: f32 = 210.0;
/// Room kept between a label and its region.
const GAP: f32 = 8.0;

impl Studio {
    /// Draws every label; returns the screen boxes they took (tests).
    pub(crate) fn region_labels(&mut self, ui: &egui::Ui) {
        self.view.label_boxes.clear();
        let Some(doc) = self.doc.as_ref() else { return };
        if !self.view.mask_shown || self.comparing {
            return;
        }
        let bounds = doc.region_bounds(self.view.stroke_active());
        let selected = doc.selected_region();
        let shown: Vec<(usize, Dirty)> = bounds.iter().enumerate().filter_map(|(i, b)| b.filter(|_| !doc.regions()[i].hidden).map(|b| (i, b))).collect();
        let names: Vec<String> = shown.iter().map(|(i, _)| doc.regions()[*i].name.clone()).collect();
        let n = doc.regions().len();
        let working = self.working_region();
        let canvas = self.view.rect;
        // every shown region's box: a label keeps off them all while there is room
        let boxes: Vec<Rect> = shown.iter().map(|(_, b)| Rect::from_min_max(self.view.to_screen((b.x0 as f32, b.y0 as f32)), self.view.to_screen((b.x1 as f32, b.y1 as f32)))).collect();
        let mut taken: Vec<Rect> = Vec::new();
        let mut action = None;
        for ((i, b), name) in shown.into_iter().zip(names) {
            let region = Rect::from_min_max(self.view.to_screen((b.x0 as f32, b.y0 as f32)), self.view.to_screen((b.x1 as f32, b.y1 as f32)));
            // off screen: no label to pin
            if !region.intersects(canvas) {
                continue;
            }
            let h = if i == selected { 96.0 } else { 44.0 };
            let avoid: Vec<Rect> = taken.iter().chain(&boxes).copied().collect();
            let at = place(region, Vec2::new(WIDTH, h), canvas, &taken, &avoid);
            taken.push(Rect::from_min_size(at, Vec2::new(WIDTH, h)));
            let rgb = self.region_color(i);
            let colour = Color32::from_rgb(rgb[0], rgb[1], rgb[2]);
            let area = egui::Area::new(egui::Id::unique(("region-label", i))).fixed_pos(at).order(egui::Order::Middle).constrain(false);
            let resp = area.show(ui.ctx(), |ui| {
                egui::Frame::new()
                    .fill(Color32::from_black_alpha(200))
                    .stroke(Stroke::new(if i == selected { 2.0 } else { 1.0 }, colour))
                    .corner_radius(4.0)
                    .inner_margin(6.0)
                    .show(ui, |ui| {
                        ui.set_width(WIDTH - 12.0);
                        let mark = if working == Some(i) { "  · running" } else { "" };
                        let head = ui.add(egui::Label::new(RichText::new(format!("{name}{mark}")).color(colour).strong()).sense(egui::Sense::click()));
                        if i == selected {
                            let hint = RichText::new("what it becomes…").italics().color(Color32::from_gray(150));
                            let field = ui.add(egui::TextEdit::multiline(self.retouch_prompt_mut()).desired_rows(2).desired_width(WIDTH - 12.0).hint_text(hint));
                            if field.lost_focus() {
                                action = Some(LabelAction::Flush);
                            }
                        } else {
                            let p = self.region_prompt(i);
                            let text = if p.trim().is_empty() { RichText::new("(no prompt: click to type)").italics().color(Color32::from_gray(170)) } else { RichText::new(cut(&p, 60)).color(Color32::WHITE) };
                            if ui.add(egui::Label::new(text).sense(egui::Sense::click())).clicked() {
                                action = Some(LabelAction::Row(RowAction::Select(i)));
                            }
                        }
                        if head.clicked() {
                            action = Some(LabelAction::Row(RowAction::Select(i)));
                        }
                        let mut row = None;
                        head.context_menu(|ui| self.region_menu(ui, i, n, &mut row));
                        if let Some(r) = row {
                            action = Some(LabelAction::Row(r));
                        }
                    });
            });
            self.view.label_boxes.push((i, resp.response.rect));
            // a line from the label to its region, in its colour
            let (a, b) = nearest(resp.response.rect, region);
            ui.painter().with_clip_rect(canvas).line_segment([a, b], Stroke::new(1.0, colour.gamma_multiply(0.8)));
        }
        match action {
            Some(LabelAction::Flush) => self.flush_prompt(),
            Some(LabelAction::Row(RowAction::Select(i))) => self.select_region(i),
            Some(LabelAction::Row(r)) => self.apply_row(r),
            None => {}
        }
    }

    /// Does what a row or a label asked for.
    pub(crate) fn apply_row(&mut self, a: RowAction) {
        match a {
            RowAction::Select(i) => self.select_region(i),
            RowAction::Hide(i, h) => self.set_region_hidden(i, h),
            RowAction::Move(i, to) => self.move_region(i, to),
            RowAction::Delete(i) => self.delete_region(i),
            RowAction::Describe(i) => self.describe_region(i),
            RowAction::Rename(i) => self.renaming = self.doc.as_ref().and_then(|d| d.regions().get(i)).map(|r| (i, r.name.clone())),
        }
    }

    /// The menu of a region's row (and of its label on the canvas).
    pub(crate) fn region_menu(&self, ui: &mut egui::Ui, i: usize, n: usize, action: &mut Option<RowAction>) {
        if ui.button("Rename...").clicked() {
            *action = Some(RowAction::Rename(i));
            ui.close();
        }
        let ask = "ask the model what the region's crop shows and make that its prompt";
        if ui.add_enabled(self.run.is_none(), egui::Button::new("Describe")).on_hover_text(ask).clicked() {
            *action = Some(RowAction::Describe(i));
            ui.close();
        }
        if ui.add_enabled(i > 0, egui::Button::new("Move up (runs earlier)")).clicked() {
            *action = Some(RowAction::Move(i, i - 1));
            ui.close();
        }
        if ui.add_enabled(i + 1 < n, egui::Button::new("Move down (runs later)")).clicked() {
            *action = Some(RowAction::Move(i, i + 1));
            ui.close();
        }
        let what = if n == 1 { "Clear region" } else { "Delete region" };
        if ui.button(what).on_hover_text("its mask and prompt go; Ctrl+Z brings them back").clicked() {
            *action = Some(RowAction::Delete(i));
            ui.close();
        }
    }

    /// The region whose crop the running retouch works on now, if any.
    fn working_region(&self) -> Option<usize> {
        let run = self.run.as_ref()?;
        let at = run.preview_at?;
        self.view.crop_regions.iter().zip(&self.view.crops).find(|(_, c)| c.source == at).map(|(r, _)| *r)
    }
}

enum LabelAction {
    Flush,
    Row(RowAction),
}

/// What a row asked for (applied after the list is drawn).
#[derive(Debug, Clone, Copy)]
pub enum RowAction {
    Select(usize),
    Hide(usize, bool),
    Move(usize, usize),
    Delete(usize),
    Describe(usize),
    Rename(usize),
}

/// `s` cut to `n` characters with an ellipsis.
pub(crate) fn cut(s: &str, n: usize) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= n {
        one_line
    } else {
        format!("{}…", one_line.chars().take(n).collect::<String>())
    }
}

/// Where a `size` label goes beside `region` on `canvas`: right, left,
/// above, below, the first that fits the canvas and touches nothing in
/// `avoid` (other labels and regions); else the first clear of the labels
/// `taken`; else the first that fits; else clamped into it.
fn place(region: Rect, size: Vec2, canvas: Rect, taken: &[Rect], avoid: &[Rect]) -> Pos2 {
    let mid_y = (region.center().y - size.y / 2.0).clamp(canvas.top(), (canvas.bottom() - size.y).max(canvas.top()));
    let mid_x = (region.center().x - size.x / 2.0).clamp(canvas.left(), (canvas.right() - size.x).max(canvas.left()));
    let tries = [
        Pos2::new(region.right() + GAP, mid_y),
        Pos2::new(region.left() - GAP - size.x, mid_y),
        Pos2::new(mid_x, region.top() - GAP - size.y),
        Pos2::new(mid_x, region.bottom() + GAP),
    ];
    let fits = |p: &Pos2| canvas.contains_rect(Rect::from_min_size(*p, size));
    let clear = |p: &Pos2, of: &[Rect]| !of.iter().any(|t| t.intersects(Rect::from_min_size(*p, size)));
    let first = tries.iter().find(|p| fits(p) && clear(p, avoid)).or_else(|| tries.iter().find(|p| fits(p) && clear(p, taken)));
    if let Some(p) = first.or_else(|| tries.iter().find(|p| fits(p))) {
        return *p;
    }
    // a region filling the canvas: the label goes in its corner
    Pos2::new(mid_x.min(canvas.right() - size.x).max(canvas.left()), canvas.top() + GAP)
}

/// The closest points of two boxes (for the leader line).
fn nearest(a: Rect, b: Rect) -> (Pos2, Pos2) {
    let p = b.center();
    let on_a = Pos2::new(p.x.clamp(a.left(), a.right()), p.y.clamp(a.top(), a.bottom()));
    let on_b = Pos2::new(on_a.x.clamp(b.left(), b.right()), on_a.y.clamp(b.top(), b.bottom()));
    (on_a, on_b)
}

#[cfg(test)]
mod tests {
    // by the full path: `super` reads as the parent module to the layers test
    use crate::canvas::labels::{place, WIDTH};
    use egui::{Pos2, Rect, Vec2};

    #[test]
    fn a_label_goes_beside_its_region_never_over_it() {
        let canvas = Rect::from_min_size(Pos2::ZERO, Vec2::new(800.0, 600.0));
        let size = Vec2::new(WIDTH, 60.0);
        for region in [
            Rect::from_min_max(Pos2::new(20.0, 20.0), Pos2::new(120.0, 120.0)),
            Rect::from_min_max(Pos2::new(650.0, 400.0), Pos2::new(790.0, 590.0)),
            Rect::from_min_max(Pos2::new(0.0, 200.0), Pos2::new(800.0, 400.0)),
        ] {
            let at = Rect::from_min_size(place(region, size, canvas, &[], &[]), size);
            assert!(canvas.contains_rect(at), "{at:?} inside the canvas");
            assert!(!at.intersects(region), "{at:?} clear of {region:?}");
        }
        // a second label beside the same region takes another side
        let region = Rect::from_min_max(Pos2::new(300.0, 250.0), Pos2::new(400.0, 350.0));
        let first = Rect::from_min_size(place(region, size, canvas, &[], &[]), size);
        let second = Rect::from_min_size(place(region, size, canvas, &[first], &[first]), size);
        assert!(!first.intersects(second));
        // another region to the right: the label goes to a side clear of it
        let other = Rect::from_min_max(Pos2::new(410.0, 250.0), Pos2::new(700.0, 350.0));
        let third = Rect::from_min_size(place(region, size, canvas, &[], &[other]), size);
        assert!(!third.intersects(other) && !third.intersects(region), "{third:?}");
    }
}
