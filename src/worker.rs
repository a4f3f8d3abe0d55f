//! A background thread that owns the loaded model and serves jobs over
//! channels. Front ends send [`Request`]s and read [`Event`]s; they never wait
//! on the model. A job that fails or panics becomes `Event::Failed` and the
//! worker keeps serving; the model stays loaded between jobs.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use image::{GrayImage, RgbImage};

use crate::crop::Rect;
use crate::engine::{DeviceChoice, Engine, ModelInfo};
use crate::error::Error;
use crate::sampler::text::answer_ids;
use crate::sampler::{Control, TextStep};
use crate::tasks::{self, Job, Output, PreviewFill, PreviewState, Progress};

pub type JobId = u64;

/// How often and how previews are decoded during a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PreviewOptions {
    /// No preview is decoded sooner than this after the last one (the final
    /// step always gets one). `None` turns previews off.
    pub every: Option<Duration>,
    pub fill: PreviewFill,
}

impl Default for PreviewOptions {
    fn default() -> Self {
        Self { every: Some(Duration::from_millis(100)), fill: PreviewFill::BestGuess }
    }
}

pub enum Request {
    Load { path: PathBuf, device: DeviceChoice },
    Run { id: JobId, job: Box<Job>, preview: PreviewOptions },
}

#[derive(Debug, Clone)]
pub enum Event {
    Loading { path: PathBuf },
    Loaded(Box<ModelInfo>),
    LoadFailed { path: PathBuf, message: String },
    Started { id: JobId, kind: &'static str },
    /// After every sampling step. `preview_at`: for inpainting, the box of the
    /// document the preview shows (the crop at working size: draw it scaled
    /// into the box); `None`: the preview is the whole result. `preview_region`:
    /// with `preview_at`, the crop's regenerated cells at working size (white):
    /// outside them the document's own pixels are the preview, sharper than a
    /// scaled-up crop.
    Progress {
        id: JobId,
        step: usize,
        total: usize,
        unmasked: usize,
        cells: usize,
        preview: Option<RgbImage>,
        preview_at: Option<Rect>,
        preview_region: Option<GrayImage>,
    },
    /// The answer so far, after every text step.
    Answer { id: JobId, text: String, step: usize, total: usize },
    Finished { id: JobId, output: Box<Output>, elapsed: Duration },
    Failed { id: JobId, message: String },
    Cancelled { id: JobId },
}

impl Event {
    pub fn job(&self) -> Option<JobId> {
        match self {
            Event::Started { id, .. }
            | Event::Progress { id, .. }
            | Event::Answer { id, .. }
            | Event::Finished { id, .. }
            | Event::Failed { id, .. }
            | Event::Cancelled { id } => Some(*id),
            _ => None,
        }
    }
}

/// Handle to the worker thread. Dropping it stops the thread after the job in hand.
pub struct Worker {
    tx: Option<Sender<Request>>,
    events: Receiver<Event>,
    /// Id of the job to cancel (0 = none); checked between steps.
    cancel: Arc<AtomicU64>,
    /// Set when the handle is dropped: queued jobs are skipped, the running one stops.
    shutdown: Arc<AtomicBool>,
    running: Arc<AtomicU64>,
    next_id: u64,
    thread: Option<JoinHandle<()>>,
}

/// Cancels a job by id from any thread.
#[derive(Clone)]
pub struct Canceller(Arc<AtomicU64>);

impl Canceller {
    pub fn cancel(&self, id: JobId) {
        self.0.store(id, Ordering::SeqCst);
    }
}

type Notify = Arc<dyn Fn() + Send + Sync>;

impl Worker {
    pub fn spawn() -> Self {
        Self::spawn_with_notify(Arc::new(|| {}))
    }

    /// `notify` runs after every event is sent (a UI wakes its event loop there).
    pub fn spawn_with_notify(notify: Notify) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded::<Request>();
        let (etx, events) = crossbeam_channel::unbounded::<Event>();
        let cancel = Arc::new(AtomicU64::new(0));
        let running = Arc::new(AtomicU64::new(0));
        let shutdown = Arc::new(AtomicBool::new(false));
        let (c, r, s) = (cancel.clone(), running.clone(), shutdown.clone());
        let thread = std::thread::Builder::new()
            .name("unmask-worker".into())
            .spawn(move || serve(rx, etx, c, r, s, notify))
            .ok();
        Self { tx: Some(tx), events, cancel, shutdown, running, next_id: 1, thread }
    }

    fn send(&self, r: Request) {
        // a closed channel means the thread is gone; the caller sees no events
        if let Some(tx) = &self.tx {
            let _ = tx.send(r);
        }
    }

    pub fn load(&self, path: impl Into<PathBuf>, device: DeviceChoice) {
        self.send(Request::Load { path: path.into(), device });
    }

    /// Queues a job and returns its id.
    pub fn submit(&mut self, job: Job, preview: PreviewOptions) -> JobId {
        let id = self.next_id;
        self.next_id += 1;
        self.send(Request::Run { id, job: Box::new(job), preview });
        id
    }

    /// Cancels job `id` (running or queued): it ends within one step.
    pub fn cancel(&self, id: JobId) {
        self.cancel.store(id, Ordering::SeqCst);
    }

    /// A handle that cancels jobs from any thread (what [`Worker::cancel`] does).
    pub fn canceller(&self) -> Canceller {
        Canceller(self.cancel.clone())
    }

    /// Id of the job running now, if any.
    pub fn running(&self) -> Option<JobId> {
        Some(self.running.load(Ordering::SeqCst)).filter(|&i| i != 0)
    }

    pub fn events(&self) -> &Receiver<Event> {
        &self.events
    }

    pub fn try_recv(&self) -> Option<Event> {
        self.events.try_recv().ok()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(rx: Receiver<Request>, tx: Sender<Event>, cancel: Arc<AtomicU64>, running: Arc<AtomicU64>, shutdown: Arc<AtomicBool>, notify: Notify) {
    let emit = |e: Event| {
        let _ = tx.send(e);
        notify();
    };
    let mut engine: Option<Engine> = None;
    for req in rx {
        if shutdown.load(Ordering::SeqCst) {
            break;
        }
        match req {
            Request::Load { path, device } => {
                emit(Event::Loading { path: path.clone() });
                match std::panic::catch_unwind(AssertUnwindSafe(|| Engine::load(&path, device))) {
                    Ok(Ok(e)) => {
                        let info = Box::new(e.info.clone());
                        engine = Some(e);
                        emit(Event::Loaded(info));
                    }
                    // the previous model, if any, stays loaded
                    Ok(Err(e)) => emit(Event::LoadFailed { path, message: e.to_string() }),
                    Err(p) => emit(Event::LoadFailed { path, message: panic_text(p) }),
                }
            }
            Request::Run { id, job, preview } => {
                if cancel.load(Ordering::SeqCst) == id {
                    emit(Event::Cancelled { id });
                    continue;
                }
                let Some(eng) = engine.as_ref() else {
                    emit(Event::Failed { id, message: "no model loaded: open a model folder first".into() });
                    continue;
                };
                running.store(id, Ordering::SeqCst);
                emit(Event::Started { id, kind: job.kind() });
                let started = Instant::now();
                let mut progress = JobProgress { id, emit: &emit, cancel: &cancel, shutdown: &shutdown, preview, last_preview: None };
                let result = std::panic::catch_unwind(AssertUnwindSafe(|| tasks::run(eng, &job, &mut progress)));
                running.store(0, Ordering::SeqCst);
                match result {
                    Ok(Ok(output)) => emit(Event::Finished { id, output: Box::new(output), elapsed: started.elapsed() }),
                    Ok(Err(Error::Cancelled)) => emit(Event::Cancelled { id }),
                    Ok(Err(e)) => emit(Event::Failed { id, message: e.to_string() }),
                    Err(p) => emit(Event::Failed { id, message: panic_text(p) }),
                }
            }
        }
    }
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    let msg = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("internal error (please report): {msg}")
}

struct JobProgress<'a> {
    id: JobId,
    emit: &'a dyn Fn(Event),
    cancel: &'a AtomicU64,
    shutdown: &'a AtomicBool,
    preview: PreviewOptions,
    last_preview: Option<Instant>,
}

impl Control for JobProgress<'_> {
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst) == self.id || self.shutdown.load(Ordering::SeqCst)
    }
}

impl Progress for JobProgress<'_> {
    fn image_preview(&mut self, engine: &Engine, st: &PreviewState<'_>) {
        let last = st.step + 1 == st.total || st.unmasked == st.cells.len();
        let due = match (self.preview.every, self.last_preview) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(every), Some(t)) => t.elapsed() >= every,
        };
        let preview = if due || (last && self.preview.every.is_some()) {
            self.last_preview = Some(Instant::now());
            tasks::preview(engine, st, self.preview.fill, None).ok()
        } else {
            None
        };
        (self.emit)(Event::Progress {
            id: self.id,
            step: st.step,
            total: st.total,
            unmasked: st.unmasked,
            cells: st.cells.len(),
            preview_at: st.placement.map(|p| p.at).filter(|_| preview.is_some()),
            preview_region: st.original.filter(|_| st.placement.is_some() && preview.is_some()).map(|(_, r)| r.clone()),
            preview,
        });
    }

    fn text_preview(&mut self, engine: &Engine, s: &TextStep<'_>) {
        let ids = answer_ids(s.answer, &engine.special);
        let text = tasks::decode_text(engine, &ids).unwrap_or_default();
        (self.emit)(Event::Answer { id: self.id, text, step: s.step, total: s.total });
    }
}
