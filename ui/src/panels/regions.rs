//! The Regions list of Retouch: one row per region in run order (its
//! colour, name, prompt's start, hide/show, the region menu), "New region
//! (N)", and the prompt field of the selected region under it. The same
//! prompts are edited in place on the canvas, and the menu is the labels'
//! (`canvas/labels.rs`).

use egui::{Color32, RichText, Sense};

use crate::canvas::{cut, RowAction};
use crate::studio::Studio;

/// A row's prompt is cut to this many characters (the field below holds it whole).
const PROMPT_CHARS: usize = 28;

impl Studio {
    pub(crate) fn regions_list(&mut self, ui: &mut egui::Ui) {
        let Some(doc) = self.doc.as_ref() else {
            ui.label("Prompt");
            self.prompt_field(ui);
            return;
        };
        let n = doc.regions().len();
        let selected = doc.selected_region();
        let rows: Vec<(String, bool, bool)> = (0..n).map(|i| (doc.regions()[i].name.clone(), doc.regions()[i].hidden, doc.region_is_empty(i))).collect();
        ui.horizontal(|ui| {
            ui.label(RichText::new("Regions").strong()).on_hover_text("each painted region becomes what its prompt says; one run retouches them all, top to bottom");
            if ui.button("New region (N)").on_hover_text("a new mask with its own prompt; painting it takes pixels from the others").clicked() {
                self.new_region();
            }
        });
        let mut action: Option<RowAction> = None;
        for (i, (name, hidden, empty)) in rows.iter().enumerate() {
            let rgb = self.region_color(i);
            ui.horizontal(|ui| {
                let (r, _) = ui.allocate_exact_size(egui::vec2(12.0, 12.0), Sense::hover());
                ui.painter().rect_filled(r, 2.0, Color32::from_rgb(rgb[0], rgb[1], rgb[2]));
                let prompt = self.region_prompt(i);
                let shown = if prompt.trim().is_empty() { "(no prompt)".to_string() } else { cut(&prompt, PROMPT_CHARS) };
                let text = if *empty { format!("{name}: {shown} · not painted") } else { format!("{name}: {shown}") };
                let row = ui.selectable_label(i == selected, text).on_hover_text("click: paint into it and edit its prompt; right click: more");
                if row.clicked() {
                    action = Some(RowAction::Select(i));
                }
                row.context_menu(|ui| self.region_menu(ui, i, n, &mut action));
                let eye = if *hidden { "show" } else { "hide" };
                if ui.small_button(eye).on_hover_text("a hidden region is not drawn and sits out the run").clicked() {
                    action = Some(RowAction::Hide(i, !hidden));
                }
            });
        }
        if let Some(a) = action {
            self.apply_row(a);
        }
        self.rename_field(ui);
        let name = self.doc.as_ref().map(|d| d.regions()[d.selected_region()].name.clone()).unwrap_or_default();
        ui.label(if n > 1 { format!("Prompt of {name}") } else { "Prompt".to_string() });
        let resp = self.prompt_field(ui);
        if resp.lost_focus() {
            // one undo step per edit of the prompt
            self.flush_prompt();
        }
    }

    /// The name field of the region being renamed (Enter keeps, Escape drops).
    fn rename_field(&mut self, ui: &mut egui::Ui) {
        let Some((i, mut text)) = self.renaming.take() else { return };
        let mut done = false;
        ui.horizontal(|ui| {
            ui.label("name");
            let r = ui.add(egui::TextEdit::singleline(&mut text).desired_width(160.0));
            r.request_focus();
            if r.lost_focus() {
                done = true;
                if ui.input(|inp| inp.key_pressed(egui::Key::Escape)) {
                    text.clear();
                }
            }
        });
        if done {
            self.rename_region(i, &text);
        } else {
            self.renaming = Some((i, text));
        }
    }
}
