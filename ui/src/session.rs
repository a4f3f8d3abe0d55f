//! The Studio's session on disk, so a crash or a kill loses no work: every
//! open document with its versions (PNG with `parameters`, their codes and
//! settings), its regions (masks, prompts, names, colours, order) and its
//! Ask history, and the Retouch and Sketch prompts. Fields added since the first format have serde defaults, so an
//! older session still restores. A background thread writes it as it changes (a
//! 24 MP PNG takes a second to encode: never on the UI thread); the index is
//! written last, atomically, and names only files already complete, so a
//! session killed mid-write restores to the last complete state. A clean exit
//! removes it; one found at start was not closed cleanly and is offered back.
//! Undo stacks are not kept (the versions are).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, Sender};
use image::{GrayImage, RgbImage};
use serde::{Deserialize, Serialize};
use unmask::crop::Rect;
use unmask::model::CodeGrid;

use crate::document::{ChatTurn, Document, Version};

const INDEX: &str = "session.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct VersionEntry {
    file: String,
    codes: Option<String>,
    label: String,
    parameters: Option<String>,
    seed: Option<u64>,
    content: Option<Rect>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ChatEntry {
    question: String,
    answer: String,
    answered: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct DocEntry {
    path: Option<PathBuf>,
    current: usize,
    dirty: bool,
    mask: String,
    versions: Vec<VersionEntry>,
    #[serde(default)]
    saved_to: Option<PathBuf>,
    #[serde(default)]
    chat: Vec<ChatEntry>,
    /// Every region in run order (`mask` above is the selected one's, what
    /// a session from before regions has alone).
    #[serde(default)]
    regions: Vec<RegionEntry>,
    #[serde(default)]
    selected: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RegionEntry {
    name: String,
    prompt: String,
    color: Option<[u8; 3]>,
    hidden: bool,
    mask: String,
}

/// The prompts of Retouch and Sketch (each mode keeps its own).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Prompts {
    pub retouch: String,
    pub sketch: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Index {
    /// The open document is the last one.
    documents: Vec<DocEntry>,
    #[serde(default)]
    prompts: Prompts,
}

/// What one save writes: each document's versions (shared, never copied
/// twice: versions do not change once made) and mask.
struct Snapshot {
    docs: Vec<DocSnap>,
    prompts: Prompts,
}

struct DocSnap {
    key: String,
    path: Option<PathBuf>,
    saved_to: Option<PathBuf>,
    chat: Vec<ChatEntry>,
    current: usize,
    dirty: bool,
    /// Each region (its mask last) and which is selected.
    regions: Vec<(crate::document::Region, GrayImage)>,
    selected: usize,
    mask_revision: u64,
    versions: Vec<(Arc<RgbImage>, Option<CodeGrid>, String, Option<String>, Option<u64>, Option<Rect>)>,
}

/// Writes the session in the background; the latest snapshot wins.
pub struct SessionWriter {
    dir: PathBuf,
    tx: Option<Sender<Snapshot>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// What was last sent, to skip unchanged saves: per document (id,
    /// revision, versions, current, questions, last answered), and the prompts.
    last: (Vec<(u64, u64, usize, usize, usize, bool)>, Prompts),
    /// Set by the thread when a write failed (shown once by the Studio).
    pub error: Arc<Mutex<Option<String>>>,
    /// Images already handed to the thread, by buffer address: sent once.
    shared: std::collections::HashMap<usize, Arc<RgbImage>>,
    /// Snapshots written (tests wait on it).
    pub written: Arc<std::sync::atomic::AtomicU64>,
    sent: u64,
    session: String,
}

impl SessionWriter {
    pub fn new(dir: PathBuf) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded::<Snapshot>();
        let error = Arc::new(Mutex::new(None));
        let written = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (d, e, w) = (dir.clone(), error.clone(), written.clone());
        let thread = std::thread::Builder::new().name("unmask-session".into()).spawn(move || write_loop(&d, rx, &e, &w)).ok();
        // file names carry this run's start, so a restored session's files never collide with new ones
        let session = format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0));
        Self { dir, tx: Some(tx), thread, last: Default::default(), error, shared: Default::default(), written, sent: 0, session }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Queues a save when anything changed since the last one: each
    /// document with its Ask history (the open one's is not in the document
    /// itself, see `Document::chat`), and the prompts. With `last_is_open`
    /// the last document is the open one: its selected region's prompt is
    /// the Retouch prompt field's (`prompts.retouch`), maybe not yet written back.
    pub fn save(&mut self, docs: &[(&Document, &[ChatTurn])], prompts: &Prompts, last_is_open: bool) {
        let state: Vec<_> = docs.iter().map(|(d, c)| (d.id, d.revision ^ d.edits << 32, d.versions.len(), d.current, c.len(), c.last().is_some_and(|t| t.done))).collect();
        if state == self.last.0 && *prompts == self.last.1 {
            return;
        }
        self.last = (state, prompts.clone());
        let mut snaps = Vec::new();
        for (k, (d, chat)) in docs.iter().enumerate() {
            let mut regions: Vec<(crate::document::Region, GrayImage)> = d.region_parts().into_iter().map(|(r, m)| (r, m.clone())).collect();
            if last_is_open && k + 1 == docs.len() {
                if let Some(r) = regions.get_mut(d.selected_region()) {
                    r.0.prompt = prompts.retouch.clone();
                }
            }
            let versions = d
                .versions
                .iter()
                .map(|v| {
                    let key = v.image.as_ptr() as usize;
                    let img = self.shared.entry(key).or_insert_with(|| Arc::new(v.image.clone())).clone();
                    (img, v.codes.clone(), v.label.clone(), v.parameters.clone(), v.seed, v.content)
                })
                .collect();
            snaps.push(DocSnap {
                key: format!("{}-{}", self.session, d.id),
                path: d.path.clone(),
                saved_to: d.saved_to.clone(),
                // a question still being answered comes back unanswered
                chat: chat.iter().map(|t| ChatEntry { question: t.question.clone(), answer: t.answer.clone(), answered: t.answered }).collect(),
                current: d.current,
                dirty: d.dirty,
                regions,
                selected: d.selected_region(),
                mask_revision: d.revision,
                versions,
            });
        }
        // images of closed documents are released
        let live: std::collections::HashSet<usize> = docs.iter().flat_map(|(d, _)| d.versions.iter().map(|v| v.image.as_ptr() as usize)).collect();
        self.shared.retain(|k, _| live.contains(k));
        if let Some(tx) = &self.tx {
            if tx.send(Snapshot { docs: snaps, prompts: prompts.clone() }).is_ok() {
                self.sent += 1;
            }
        }
    }

    /// Waits until every queued snapshot is on disk (tests; the close path).
    pub fn flush(&self, timeout: std::time::Duration) -> bool {
        let end = std::time::Instant::now() + timeout;
        while self.written.load(std::sync::atomic::Ordering::SeqCst) < self.sent {
            if std::time::Instant::now() > end {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        true
    }

    /// A clean exit: the session is not offered back.
    pub fn end(mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn write_loop(dir: &Path, rx: Receiver<Snapshot>, error: &Mutex<Option<String>>, written: &std::sync::atomic::AtomicU64) {
    let mut masks_written: std::collections::HashMap<String, u64> = Default::default();
    while let Ok(mut snap) = rx.recv() {
        let mut skipped = 0;
        // only the newest snapshot matters
        while let Ok(newer) = rx.try_recv() {
            snap = newer;
            skipped += 1;
        }
        if let Err(e) = write_snapshot(dir, &snap, &mut masks_written) {
            if let Ok(mut slot) = error.lock() {
                *slot = Some(e);
            }
        }
        written.fetch_add(1 + skipped, std::sync::atomic::Ordering::SeqCst);
    }
}

fn write_snapshot(dir: &Path, snap: &Snapshot, masks_written: &mut std::collections::HashMap<String, u64>) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut index = Index { documents: Vec::new(), prompts: snap.prompts.clone() };
    let mut keep = std::collections::HashSet::new();
    for d in &snap.docs {
        let mut versions = Vec::new();
        for (i, (img, codes, label, parameters, seed, content)) in d.versions.iter().enumerate() {
            let file = format!("{}-v{i}.png", d.key);
            let path = dir.join(&file);
            // a version never changes once made: written once
            if !path.is_file() {
                unmask::image_io::save_png(&path, img, parameters.as_deref()).map_err(|e| e.to_string())?;
            }
            keep.insert(file.clone());
            let codes_file = match codes {
                Some(c) => {
                    let f = format!("{}-v{i}.codes.json", d.key);
                    if !dir.join(&f).is_file() {
                        unmask::codes::write(&dir.join(&f), c).map_err(|e| e.to_string())?;
                    }
                    keep.insert(f.clone());
                    Some(f)
                }
                None => None,
            };
            versions.push(VersionEntry { file, codes: codes_file, label: label.clone(), parameters: parameters.clone(), seed: *seed, content: *content });
        }
        // masks change: one file per region and revision, the index names the newest complete ones
        let mut regions = Vec::new();
        for (i, (r, m)) in d.regions.iter().enumerate() {
            let file = format!("{}-mask-{}-r{i}.png", d.key, d.mask_revision);
            let key = format!("{}-r{i}", d.key);
            if masks_written.get(&key) != Some(&d.mask_revision) || !dir.join(&file).is_file() {
                let bytes = gray_png(m)?;
                unmask::image_io::write_atomic(&dir.join(&file), &bytes).map_err(|e| e.to_string())?;
                masks_written.insert(key, d.mask_revision);
            }
            keep.insert(file.clone());
            regions.push(RegionEntry { name: r.name.clone(), prompt: r.prompt.clone(), color: r.color, hidden: r.hidden, mask: file });
        }
        let mask = regions.get(d.selected).map(|r| r.mask.clone()).unwrap_or_default();
        index.documents.push(DocEntry {
            path: d.path.clone(),
            current: d.current,
            dirty: d.dirty,
            mask,
            versions,
            saved_to: d.saved_to.clone(),
            chat: d.chat.clone(),
            regions,
            selected: d.selected,
        });
    }
    if index.documents.is_empty() {
        // nothing worth restoring: no index, so nothing is offered
        let _ = std::fs::remove_file(dir.join(INDEX));
    } else {
        let text = serde_json::to_string_pretty(&index).map_err(|e| e.to_string())?;
        unmask::image_io::write_atomic(&dir.join(INDEX), text.as_bytes()).map_err(|e| e.to_string())?;
        keep.insert(INDEX.to_string());
    }
    // files the index no longer names (old masks, closed documents) go
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !keep.contains(&name) && !name.starts_with('.') {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(())
}

fn gray_png(m: &GrayImage) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    image::DynamicImage::ImageLuma8(m.clone())
        .write_to(&mut std::io::Cursor::new(&mut buf), image::ImageFormat::Png)
        .map_err(|e| e.to_string())?;
    Ok(buf)
}

/// `$XDG_STATE_HOME/unmask/session`, else `~/.local/state/unmask/session`.
pub fn default_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(base.join("unmask").join("session"))
}

/// A session left by a run that did not close cleanly, if any.
pub fn pending(dir: &Path) -> Option<usize> {
    let text = std::fs::read_to_string(dir.join(INDEX)).ok()?;
    let idx: Index = serde_json::from_str(&text).ok()?;
    (!idx.documents.is_empty()).then_some(idx.documents.len())
}

/// Reads a left session back. Documents whose files are damaged are skipped
/// and named in the returned messages.
pub fn restore(dir: &Path) -> (Vec<Document>, Vec<String>) {
    let mut docs = Vec::new();
    let mut problems = Vec::new();
    let Some(idx) = std::fs::read_to_string(dir.join(INDEX)).ok().and_then(|t| serde_json::from_str::<Index>(&t).ok()) else {
        return (docs, vec![format!("{}: the session index is unreadable", dir.display())]);
    };
    let n = idx.documents.len();
    for (k, d) in idx.documents.iter().enumerate() {
        match restore_doc(dir, d) {
            Ok(mut doc) => {
                // a session from before regions kept the open document's prompt alone
                if d.regions.is_empty() && k + 1 == n {
                    doc.set_region_prompt(0, &idx.prompts.retouch);
                }
                docs.push(doc)
            }
            Err(e) => problems.push(e),
        }
    }
    (docs, problems)
}

/// The prompts a left session kept (empty ones when it kept none).
pub fn prompts(dir: &Path) -> Prompts {
    std::fs::read_to_string(dir.join(INDEX)).ok().and_then(|t| serde_json::from_str::<Index>(&t).ok()).map(|i| i.prompts).unwrap_or_default()
}

fn restore_doc(dir: &Path, d: &DocEntry) -> Result<Document, String> {
    let mut versions = Vec::new();
    for v in &d.versions {
        let image = unmask::image_io::open_rgb(&dir.join(&v.file)).map_err(|e| e.to_string())?;
        let codes = match &v.codes {
            Some(f) => Some(unmask::codes::read(&dir.join(f), u32::MAX as usize).map_err(|e| e.to_string())?),
            None => None,
        };
        versions.push(Version { image, codes, label: v.label.clone(), parameters: v.parameters.clone(), seed: v.seed, content: v.content });
    }
    let first = versions.first().ok_or("a document without versions")?.image.clone();
    let mut doc = Document::new(first, d.path.clone(), &d.versions[0].label);
    doc.versions = versions;
    doc.current = d.current.min(doc.versions.len() - 1);
    doc.dirty = d.dirty;
    doc.saved_to = d.saved_to.clone();
    doc.chat = d.chat.iter().map(|t| ChatTurn { question: t.question.clone(), answer: t.answer.clone(), done: true, answered: t.answered }).collect();
    let read = |file: &str| unmask::image_io::open(&dir.join(file)).map(|m| m.to_luma8()).map_err(|e| e.to_string());
    if d.regions.is_empty() {
        let mask = read(&d.mask)?;
        if mask.dimensions() == doc.image().dimensions() {
            doc.mask = mask;
        }
    } else {
        let mut parts = Vec::new();
        // a damaged or hostile index cannot make us read more masks than one run takes
        for r in d.regions.iter().take(crate::document::MAX_REGIONS) {
            let region = crate::document::Region::restored(&r.name, &r.prompt, r.color, r.hidden);
            parts.push((region, read(&r.mask)?));
        }
        // masks of another size than the image are blanked there
        doc.set_regions(parts, d.selected);
    }
    // restoring is no edit: nothing to undo
    doc.forget_undo();
    Ok(doc)
}
