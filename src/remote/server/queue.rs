//! The server's one queue over one model: jobs of every client wait here in
//! arrival order and go to the [`Worker`] one at a time, so a queued job can
//! be cancelled without the model ever seeing it and every waiting job knows
//! its position. A dispatcher thread turns the worker's events into wire
//! events for the job's stream.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::remote::protocol::{self, JobState, WireEvent};
use crate::tasks::Job;
use crate::worker::{Event, JobId, PreviewOptions, Worker};

/// Undelivered previews a stream may hold before later ones go without their
/// image (a slow client gets fewer previews, never unbounded memory).
const PREVIEW_BACKLOG: usize = 4;

/// What the SSE stream of one job reads: JSON texts, and how many of them
/// carry a preview image.
pub struct Stream {
    pub rx: UnboundedReceiver<Message>,
    pub backlog: Arc<AtomicUsize>,
}

/// One event's JSON; `preview`: it carries a preview image (counted in the backlog).
pub struct Message {
    pub text: String,
    pub preview: bool,
}

struct Live {
    owner: String,
    kind: &'static str,
    tx: UnboundedSender<Message>,
    backlog: Arc<AtomicUsize>,
    /// The worker's id once the job runs.
    worker_id: Option<JobId>,
}

struct Waiting {
    job: String,
    work: Job,
    preview: PreviewOptions,
}

struct State {
    worker: Worker,
    pending: VecDeque<Waiting>,
    live: HashMap<String, Live>,
    by_worker: HashMap<JobId, String>,
    running: Option<String>,
}

#[derive(Clone)]
pub struct Queue {
    state: Arc<Mutex<State>>,
}

pub enum CancelError {
    /// No such job among this client's: unknown, finished, or another's.
    NotFound,
}

impl Queue {
    /// Takes a worker with its model loaded; starts the dispatcher.
    pub fn new(worker: Worker) -> Self {
        let events = worker.events().clone();
        let state = Arc::new(Mutex::new(State {
            worker,
            pending: VecDeque::new(),
            live: HashMap::new(),
            by_worker: HashMap::new(),
            running: None,
        }));
        let q = Self { state };
        let d = q.clone();
        let _ = std::thread::Builder::new().name("unmask-serve-events".into()).spawn(move || {
            for e in events.iter() {
                d.dispatch(e);
            }
        });
        q
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // a panic while holding the lock cannot leave the maps half-changed
        // in a way that matters more than refusing all service would
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Jobs waiting plus the one running.
    pub fn len(&self) -> usize {
        let s = self.lock();
        s.pending.len() + s.running.is_some() as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues `work` for `owner`; its events arrive on the returned stream.
    pub fn submit(&self, owner: &str, work: Job, preview: PreviewOptions) -> (String, Stream) {
        let job = new_id();
        let (tx, rx) = unbounded_channel();
        let backlog = Arc::new(AtomicUsize::new(0));
        let mut s = self.lock();
        s.live.insert(job.clone(), Live { owner: owner.to_string(), kind: work.kind(), tx, backlog: backlog.clone(), worker_id: None });
        s.pending.push_back(Waiting { job: job.clone(), work, preview });
        let position = s.pending.len() - 1 + s.running.is_some() as usize;
        send(&s, &job, &WireEvent::Queued { job: job.clone(), position });
        pump(&mut s);
        (job, Stream { rx, backlog })
    }

    /// Cancels `owner`'s job: a waiting one ends now, a running one within a step.
    pub fn cancel(&self, owner: &str, job: &str) -> Result<(), CancelError> {
        let mut s = self.lock();
        match s.live.get(job) {
            Some(l) if l.owner == owner => {}
            _ => return Err(CancelError::NotFound),
        }
        if let Some(i) = s.pending.iter().position(|w| w.job == job) {
            s.pending.remove(i);
            send(&s, job, &WireEvent::Cancelled { job: job.to_string() });
            s.live.remove(job);
            positions(&s);
        } else if let Some(w) = s.live.get(job).and_then(|l| l.worker_id) {
            s.worker.cancel(w);
        }
        Ok(())
    }

    /// `owner`'s jobs, running first, then waiting in order.
    pub fn jobs(&self, owner: &str) -> Vec<JobState> {
        let s = self.lock();
        let mut out = Vec::new();
        if let Some(r) = s.running.as_ref().filter(|r| s.live.get(*r).is_some_and(|l| l.owner == owner)) {
            out.push(JobState { job: r.clone(), kind: s.live[r].kind.to_string(), state: "running".into(), position: None });
        }
        let ahead = s.running.is_some() as usize;
        for (i, w) in s.pending.iter().enumerate() {
            if let Some(l) = s.live.get(&w.job).filter(|l| l.owner == owner) {
                out.push(JobState { job: w.job.clone(), kind: l.kind.to_string(), state: "queued".into(), position: Some(ahead + i) });
            }
        }
        out
    }

    fn dispatch(&self, e: Event) {
        let Some(wid) = e.job() else { return };
        let terminal = matches!(e, Event::Finished { .. } | Event::Failed { .. } | Event::Cancelled { .. });
        // what is needed to send, taken under the lock; the encoding (a PNG
        // of the result can take a second) runs outside it
        let target = {
            let mut s = self.lock();
            let Some(job) = s.by_worker.get(&wid).cloned() else { return };
            let target = s.live.get(&job).map(|l| (job.clone(), l.tx.clone(), l.backlog.clone()));
            if terminal {
                s.by_worker.remove(&wid);
                s.live.remove(&job);
                s.running = None;
                // the next job starts before this one's result is encoded
                pump(&mut s);
            }
            target
        };
        let Some((job, tx, backlog)) = target else { return };
        let with_preview = backlog.load(Ordering::SeqCst) < PREVIEW_BACKLOG;
        let wire = match std::panic::catch_unwind(|| protocol::wire_of(&e, &job, with_preview)) {
            Ok(Ok(Some(w))) => w,
            Ok(Ok(None)) => return,
            Ok(Err(err)) => WireEvent::Failed { job: job.clone(), message: format!("encoding the result: {err}") },
            Err(_) => WireEvent::Failed { job: job.clone(), message: "internal error (please report): encoding the result panicked".into() },
        };
        let preview = matches!(&wire, WireEvent::Progress { preview: Some(_), .. });
        if preview {
            backlog.fetch_add(1, Ordering::SeqCst);
        }
        let _ = tx.send(Message { text: json(&wire), preview });
    }
}

/// Starts the first waiting job when the worker is free.
fn pump(s: &mut State) {
    if s.running.is_some() {
        return;
    }
    let Some(w) = s.pending.pop_front() else { return };
    let wid = s.worker.submit(w.work, w.preview);
    s.by_worker.insert(wid, w.job.clone());
    if let Some(l) = s.live.get_mut(&w.job) {
        l.worker_id = Some(wid);
    }
    s.running = Some(w.job);
    positions(s);
}

/// Tells every waiting job its new place.
fn positions(s: &State) {
    let ahead = s.running.is_some() as usize;
    for (i, w) in s.pending.iter().enumerate() {
        send(s, &w.job, &WireEvent::Queued { job: w.job.clone(), position: ahead + i });
    }
}

fn send(s: &State, job: &str, e: &WireEvent) {
    if let Some(l) = s.live.get(job) {
        let _ = l.tx.send(Message { text: json(e), preview: false });
    }
}

fn json(e: &WireEvent) -> String {
    serde_json::to_string(e).unwrap_or_else(|e| format!("{{\"type\":\"failed\",\"job\":\"\",\"message\":\"encoding an event: {e}\"}}"))
}

/// 64 random bits: unguessable enough that ids need no other protection
/// (a job is someone's only when the owner matches anyway).
fn new_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}
