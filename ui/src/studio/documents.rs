//! Documents: opening and saving images, the open one and its tabs,
//! versions (undo, redo, a finished variant) and Extend canvas.

use std::path::{Path, PathBuf};

use image::RgbImage;

use super::{Mode, Studio};
use crate::document::{aspect_borders, Document, Version};

impl Studio {
    /// Opens an image file as a new document; whether it opened. On failure
    /// the current canvas stays as it is and the error is shown.
    pub fn open_path(&mut self, path: &Path) -> bool {
        match unmask::image_io::open_rgb(path) {
            Ok(img) => {
                self.open_image(img, Some(path.to_path_buf()));
                true
            }
            Err(e) => {
                self.notify("Could not open the image", &e.to_string(), true);
                false
            }
        }
    }

    pub fn open_bytes(&mut self, bytes: &[u8], name: &Path) {
        match unmask::image_io::decode_bytes(bytes, name) {
            Ok(img) => self.open_image(unmask::image_io::to_rgb_on_white(&img), Some(name.to_path_buf())),
            Err(e) => self.notify("Could not open the image", &e.to_string(), true),
        }
    }

    fn open_image(&mut self, img: RgbImage, path: Option<PathBuf>) {
        if let Some(p) = &path {
            self.settings.add_recent(p);
            self.last_folder = p.parent().map(Path::to_path_buf);
        }
        let label = path.as_ref().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or("image".into());
        // an unchanged document is replaced; one with work waits in its tab
        let keep = self.doc.as_ref().is_some_and(|d| d.dirty || d.versions.len() > 1) || !self.chat.is_empty();
        if !keep {
            self.doc = None;
        }
        // a new photo takes the prompt typed so far (as the field did before regions)
        self.push_document(Document::new(img, path, &label), false);
        if self.run.is_none() {
            self.variants.clear();
        }
    }

    /// Saves the open document's current version as PNG with its `parameters` chunk.
    pub fn save_to(&mut self, path: &Path) -> bool {
        let Some(id) = self.doc.as_ref().map(|d| d.id) else { return false };
        self.save_document(id, path)
    }

    /// Saves document `id` (open or in a tab) to `path`; whether it was
    /// written. A failure is shown, naming the path.
    pub fn save_document(&mut self, id: u64, path: &Path) -> bool {
        let Some(doc) = self.doc.iter_mut().chain(self.background.iter_mut()).find(|d| d.id == id) else { return false };
        let v = doc.version();
        // the same all-or-nothing write as the CLI: never over a device or link
        let written = unmask::output::check_target(path, "image", &["png"])
            .and_then(|_| unmask::image_io::png_bytes(&v.image, v.parameters.as_deref()))
            .and_then(|bytes| unmask::output::write_all(&[(path, &bytes)]));
        match written {
            Ok(()) => {
                doc.dirty = false;
                doc.path = Some(path.to_path_buf());
                doc.saved_to = Some(path.to_path_buf());
                self.settings.add_recent(path);
                self.last_folder = path.parent().map(Path::to_path_buf);
                true
            }
            Err(e) => {
                self.notify(&format!("Could not save {}", path.display()), &e.to_string(), true);
                false
            }
        }
    }

    /// Undoes the last step of the open document: a stroke, a region or
    /// prompt edit, a new version. A prompt being typed is an edit of its own.
    pub fn undo(&mut self) {
        self.flush_prompt();
        if let Some(d) = self.doc.as_mut() {
            d.undo();
        }
        self.load_prompt();
        self.view.mask_tex = None;
    }

    pub fn redo(&mut self) {
        self.flush_prompt();
        if let Some(d) = self.doc.as_mut() {
            d.redo();
        }
        self.load_prompt();
        self.view.mask_tex = None;
    }

    /// Applies a finished variant: a new version of the document the run
    /// belongs to, or (a sketch) a document of its own.
    pub fn pick_variant(&mut self, i: usize) {
        if i < self.variants.len() {
            let v = self.variants.remove(i);
            let target = self.variants_doc.take();
            self.add_result(v, target);
            self.variants.clear();
        }
    }

    fn add_result(&mut self, v: Version, doc_id: Option<u64>) {
        let target = doc_id.and_then(|id| self.doc.iter_mut().chain(self.background.iter_mut()).find(|d| d.id == id));
        match target {
            Some(d) => d.add_version(v),
            // a sketch opens as its own document (the open one waits in its
            // tab), and so does a result whose document was closed meanwhile
            None => {
                let label = if doc_id.is_none() { "sketch" } else { "result" };
                let mut d = Document::new(v.image.clone(), None, label);
                d.versions[0] = v;
                d.dirty = true;
                self.push_document(d, false);
            }
        }
    }

    /// Makes `d` the open document; the one open before waits in its tab.
    /// Each takes its Ask history along (`chat` is the open document's) and
    /// its regions' prompts: with `load`, the prompt field shows `d`'s
    /// selected region's (else it keeps its text for `d`).
    pub(crate) fn push_document(&mut self, mut d: Document, load: bool) {
        self.flush_prompt();
        let chat = std::mem::take(&mut d.chat);
        if let Some(mut old) = self.doc.take() {
            old.chat = std::mem::replace(&mut self.chat, chat);
            self.background.push(old);
        } else {
            self.chat = chat;
        }
        self.doc = Some(d);
        if load {
            self.load_prompt();
        }
        self.reset_view();
    }

    /// Switches to the document in tab `i` of [`Studio::tabs`].
    pub fn switch_to(&mut self, id: u64) {
        if self.doc.as_ref().is_some_and(|d| d.id == id) {
            return;
        }
        let Some(i) = self.background.iter().position(|d| d.id == id) else { return };
        let d = self.background.remove(i);
        self.push_document(d, true);
        // keep tabs in opening order
        self.background.sort_by_key(|d| d.id);
    }

    /// Closes a background document (asks nothing: the tab's close button is
    /// only offered for saved documents).
    pub fn close_background(&mut self, id: u64) {
        self.background.retain(|d| d.id != id || d.dirty);
    }

    /// Every open document as (id, label, dirty, is current), in opening order.
    pub fn tabs(&self) -> Vec<(u64, String, bool, bool)> {
        let mut t: Vec<_> = self.background.iter().map(|d| (d.id, d.title(), d.dirty, false)).collect();
        if let Some(d) = &self.doc {
            t.push((d.id, d.title(), d.dirty, true));
        }
        t.sort_by_key(|x| x.0);
        t
    }

    fn reset_view(&mut self) {
        // textures are keyed by buffer address, which a new document may reuse
        self.view = Default::default();
        self.thumbs = Default::default();
    }

    /// Extends the canvas of the open document by the given borders; the new
    /// border becomes a region of its own, selected, for the next retouch to fill.
    pub fn extend_canvas(&mut self, left: u32, right: u32, top: u32, bottom: u32) {
        if self.run.is_some() {
            return self.refuse("a run is in progress: wait for it or cancel it");
        }
        self.flush_prompt();
        let Some(doc) = self.doc.as_mut() else { return self.refuse("open an image first") };
        match doc.extend(left, right, top, bottom) {
            Ok(()) => {
                self.load_prompt();
                self.view.mask_tex = None;
                self.view.fit_pending = true;
                self.set_mode(Mode::Retouch);
            }
            Err(e) => self.notify("Cannot extend the canvas", &e.to_string(), true),
        }
    }

    /// Borders that bring the open image to aspect `w:h`, added evenly on
    /// the two sides that grow.
    pub fn extend_to_aspect(&mut self, aw: u32, ah: u32) {
        let Some((w, h)) = self.doc.as_ref().map(|d| d.size()) else { return };
        let (l, r, t, b) = aspect_borders(w, h, aw, ah);
        if l + r + t + b == 0 {
            return self.notify("Already at that aspect", &format!("the image is {w}x{h}"), false);
        }
        self.extend_canvas(l, r, t, b);
    }
}
