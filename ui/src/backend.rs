//! Where the Studio's jobs run: the engine's worker in this process, or a
//! `unmask serve` elsewhere (Model > Connect to server...). Both take the
//! same jobs and send the same events; the Studio does not care which.

use std::path::Path;
use std::sync::Arc;

use crossbeam_channel::Receiver;
use unmask::remote::{Client, RemoteWorker};
use unmask::tasks::Job;
use unmask::worker::{Event, JobId, PreviewOptions, Worker};
use unmask::DeviceChoice;

pub type Notify = Arc<dyn Fn() + Send + Sync>;

pub enum Backend {
    Local(Worker),
    Remote(RemoteWorker),
}

impl Backend {
    pub fn local(notify: Option<Notify>) -> Self {
        Backend::Local(match notify {
            Some(n) => Worker::spawn_with_notify(n),
            None => Worker::spawn(),
        })
    }

    /// A server's backend; `Loaded` (its model) or `LoadFailed` follows.
    pub fn remote(client: Client, notify: Option<Notify>) -> Self {
        let w = RemoteWorker::new(client, notify.unwrap_or_else(|| Arc::new(|| {})));
        w.connect();
        Backend::Remote(w)
    }

    /// The server's address when jobs run on one.
    pub fn server(&self) -> Option<&str> {
        match self {
            Backend::Local(_) => None,
            Backend::Remote(r) => Some(r.url()),
        }
    }

    /// Loads a model folder (local only: a server has its own model).
    pub fn load(&self, dir: &Path, device: DeviceChoice) {
        if let Backend::Local(w) = self {
            w.load(dir, device);
        }
    }

    pub fn submit(&mut self, job: Job, preview: PreviewOptions) -> JobId {
        match self {
            Backend::Local(w) => w.submit(job, preview),
            Backend::Remote(r) => r.submit(job, preview),
        }
    }

    pub fn cancel(&self, id: JobId) {
        match self {
            Backend::Local(w) => w.cancel(id),
            Backend::Remote(r) => r.cancel(id),
        }
    }

    pub fn try_recv(&self) -> Option<Event> {
        match self {
            Backend::Local(w) => w.try_recv(),
            Backend::Remote(r) => r.try_recv(),
        }
    }

    pub fn events(&self) -> &Receiver<Event> {
        match self {
            Backend::Local(w) => w.events(),
            Backend::Remote(r) => r.events(),
        }
    }
}
