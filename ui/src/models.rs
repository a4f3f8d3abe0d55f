//! The model manager (issue 18): downloading Lumina-DiMOO in the background
//! with progress, cancel and resume, and the list of bundles the Studio
//! knows (embedded, downloaded, opened before) with their size and type.
//! The download runs `unmask::hub::download` on its own thread; the UI only
//! reads its reports.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use unmask::hub;

/// What a download reports to the UI.
#[derive(Debug, Clone)]
pub enum Report {
    Started { files: usize, to_fetch: u64 },
    Progress { file: String, done: u64, size: u64, fetched: u64 },
    Verifying { file: String },
    Finished(PathBuf),
    Failed(String),
    Cancelled,
}

struct Forward(Sender<Report>, Option<Arc<dyn Fn() + Send + Sync>>);

impl Forward {
    fn send(&self, r: Report) {
        let _ = self.0.send(r);
        if let Some(n) = &self.1 {
            n();
        }
    }
}

impl hub::Progress for Forward {
    fn start(&mut self, files: &[hub::Entry], to_fetch: u64) {
        self.send(Report::Started { files: files.len(), to_fetch });
    }
    fn file(&mut self, file: &str, done: u64, size: u64, fetched: u64) {
        self.send(Report::Progress { file: file.into(), done, size, fetched });
    }
    fn verifying(&mut self, file: &str) {
        self.send(Report::Verifying { file: file.into() });
    }
}

/// A download in progress (or just ended), as the dialog shows it.
pub struct Download {
    pub dir: PathBuf,
    cancel: Arc<AtomicBool>,
    rx: Receiver<Report>,
    pub files: usize,
    pub to_fetch: u64,
    pub fetched: u64,
    pub file: String,
    pub file_done: u64,
    pub file_size: u64,
    pub verifying: bool,
    /// Set once it ended: Ok(folder) or Err(message); `None` while running.
    pub outcome: Option<Result<PathBuf, String>>,
    started: std::time::Instant,
}

impl Download {
    pub fn start(req: hub::Request, notify: Option<Arc<dyn Fn() + Send + Sync>>) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        let cancel = Arc::new(AtomicBool::new(false));
        let (c, dir) = (cancel.clone(), req.dir.clone());
        std::thread::spawn(move || {
            let mut f = Forward(tx, notify);
            let r = hub::download(&req, &mut f, c);
            f.send(match r {
                Ok(p) => Report::Finished(p),
                Err(unmask::error::Error::Cancelled) => Report::Cancelled,
                Err(e) => Report::Failed(e.to_string()),
            });
        });
        Self {
            dir,
            cancel,
            rx,
            files: 0,
            to_fetch: 0,
            fetched: 0,
            file: String::new(),
            file_done: 0,
            file_size: 0,
            verifying: false,
            outcome: None,
            started: std::time::Instant::now(),
        }
    }

    /// Asks the thread to stop; what it fetched stays for a resume.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    pub fn running(&self) -> bool {
        self.outcome.is_none()
    }

    /// Drains the reports; the folder when the download just finished.
    pub fn poll(&mut self) -> Option<PathBuf> {
        let mut done = None;
        while let Ok(r) = self.rx.try_recv() {
            match r {
                Report::Started { files, to_fetch } => (self.files, self.to_fetch) = (files, to_fetch),
                Report::Progress { file, done, size, fetched } => {
                    (self.file, self.file_done, self.file_size, self.fetched, self.verifying) = (file, done, size, fetched, false)
                }
                Report::Verifying { file } => (self.file, self.verifying) = (file, true),
                Report::Finished(p) => {
                    self.outcome = Some(Ok(p.clone()));
                    done = Some(p);
                }
                Report::Failed(m) => self.outcome = Some(Err(m)),
                Report::Cancelled => self.outcome = Some(Err("cancelled: what was fetched is kept; Resume continues from there".into())),
            }
        }
        done
    }

    /// Bytes a second over this run, and the seconds left at that rate.
    pub fn rate_eta(&self) -> (f64, Option<f64>) {
        let rate = self.fetched as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        let left = self.to_fetch.saturating_sub(self.fetched) as f64;
        (rate, (rate > 0.0).then(|| left / rate))
    }
}

/// One bundle the Studio knows.
#[derive(Debug, Clone, PartialEq)]
pub struct Known {
    pub dir: PathBuf,
    pub name: String,
    pub bytes: u64,
    /// The stored type, with the quantization when there is one.
    pub kind: String,
    pub origin: &'static str,
}

/// A bundle's size on disk (every file of its folder), the one figure the
/// Studio shows for a model's size: the Model menu and the status bar alike.
pub fn bundle_bytes(dir: &Path) -> u64 {
    folder_bytes(dir)
}

/// How the Studio writes a model's size ([`bundle_bytes`]): one function, so
/// the menu and the status bar never disagree in units or rounding.
pub fn size_text(bytes: u64) -> String {
    const MIB: f64 = (1u64 << 20) as f64;
    let b = bytes as f64;
    if bytes >= 1 << 30 {
        unmask::limits::gib(bytes)
    } else if b >= 100.0 * MIB {
        format!("{:.0} MiB", b / MIB)
    } else if b >= MIB / 10.0 {
        // small bundles (the embedded model): a tenth of a MiB, not a floor to whole ones
        format!("{:.1} MiB", b / MIB)
    } else {
        format!("{} KiB", bytes >> 10)
    }
}

fn folder_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => folder_bytes(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

/// The bundles found: the embedded one, those under the download folder,
/// and those opened before (`opened`); each opened once to read its header
/// (no weights), unusable folders left out.
pub fn known(opened: &[PathBuf]) -> Vec<Known> {
    let mut dirs: Vec<(PathBuf, &'static str)> = Vec::new();
    if let Some(d) = unmask::bundle::default_model_dir() {
        dirs.push((d, "embedded"));
    }
    if let Some(root) = hub::models_dir() {
        for e in std::fs::read_dir(root).into_iter().flatten().flatten() {
            if e.path().join("config.json").is_file() {
                dirs.push((e.path(), "downloaded"));
            }
        }
    }
    dirs.extend(opened.iter().map(|p| (p.clone(), "opened before")));
    let mut out: Vec<Known> = Vec::new();
    for (dir, origin) in dirs {
        let key = dir.canonicalize().unwrap_or(dir.clone());
        if out.iter().any(|k| k.dir.canonicalize().unwrap_or(k.dir.clone()) == key) {
            continue;
        }
        let Ok(b) = unmask::bundle::Bundle::open(&dir) else { continue };
        let kind = match b.quantization() {
            Some(q) => format!("{q} (GGUF)"),
            None => b.stored_dtype(),
        };
        out.push(Known { name: b.name(), bytes: bundle_bytes(&dir), kind, origin, dir });
    }
    out
}

/// Why the 8B model cannot run in this process, with what it needs (the
/// engine's own plan, so the figures follow its estimates); `None` when a
/// GPU is here. Read once: the dialog asks every frame.
pub fn cannot_run_here() -> Option<&'static str> {
    static NOTE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    NOTE.get_or_init(|| {
        if unmask::device_memory::gpu_count() > 0 {
            return None;
        }
        let why = if cfg!(feature = "cuda") { "no NVIDIA GPU was found" } else { "it was built without CUDA" };
        use unmask::quantize::QuantType::{Q4K, Q8_0};
        let peak = |side, q| unmask::limits::gib(unmask::plan::lumina_dimoo_8b_peak(side, q));
        Some(format!(
            "This build cannot run Lumina-DiMOO here: {why}. The 8B model needs an NVIDIA GPU with about {} (1024x1024) \
             or {} (512x512) in bf16; {} / {} as q8_0, {} / {} as q4k (guidance and the ML-Cache; estimates from \
             `unmask plan`). Run it with `unmask serve` on a machine that has one and connect to it, or download it \
             here to copy it there.",
            peak(1024, None),
            peak(512, None),
            peak(1024, Some(Q8_0)),
            peak(512, Some(Q8_0)),
            peak(1024, Some(Q4K)),
            peak(512, Some(Q4K)),
        ))
    })
    .as_deref()
}
