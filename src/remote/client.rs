//! The blocking client of `unmask serve` (ureq): what the CLI's `--server`
//! and the Studio's remote backend use. [`Client::run`] is one job start to
//! finish; [`RemoteWorker`] is [`crate::worker::Worker`]'s interface over a
//! server (same requests in, same events out), so a front end drives either.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use crate::error::{Error, Result};
use crate::remote::protocol::{self, ErrorBody, JobState, ServerInfo, WireEvent, CLIENT_HEADER};
use crate::tasks::{Job, Output};
use crate::worker::{Event, JobId, PreviewOptions};

/// No event line is longer than this (a 64 MP result as base64 PNG fits).
const MAX_LINE: u64 = 1 << 30;

pub struct Client {
    base: String,
    token: String,
    client_id: String,
    agent: ureq::Agent,
}

/// A submitted job's event stream.
pub struct Submitted {
    reader: BufReader<ureq::BodyReader<'static>>,
    base: String,
}

impl Client {
    /// `url`: `http://HOST:PORT` (or `https://` behind a TLS proxy).
    pub fn new(url: &str, token: &str) -> Result<Self> {
        let base = url.trim().trim_end_matches('/').to_string();
        let rest = base.strip_prefix("http://").or_else(|| base.strip_prefix("https://"));
        if rest.is_none_or(|r| r.is_empty() || r.contains(char::is_whitespace)) {
            return Err(Error::invalid(format!("--server {url}: give the server's address as http://HOST:PORT")));
        }
        if token.trim().is_empty() {
            return Err(Error::invalid("--token: the server needs its token (printed by `unmask serve` when it starts)"));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .build()
            .new_agent();
        let client_id = format!("c{:016x}", rand::random::<u64>());
        Ok(Self { base, token: token.trim().to_string(), client_id, agent })
    }

    /// Who this client is to the server: it sees and cancels only its own jobs.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    fn unreachable(&self, e: ureq::Error) -> Error {
        Error::invalid(format!("cannot reach the server at {} ({e}): check the address and that `unmask serve` runs there", self.base))
    }

    /// The server's error body as an error naming the server and status.
    fn refused(&self, mut r: ureq::http::Response<ureq::Body>) -> Error {
        let code = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap_or_default();
        let msg = serde_json::from_str::<ErrorBody>(&text).map(|b| b.error).unwrap_or(text);
        Error::invalid(format!("the server at {} refused (HTTP {code}): {msg}", self.base))
    }

    /// A request to `path` with the token and this client's id.
    fn with_auth<B>(&self, r: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        r.header("authorization", format!("Bearer {}", self.token)).header(CLIENT_HEADER, &self.client_id)
    }

    /// The response, or the server's refusal as an error.
    fn checked(&self, r: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<ureq::http::Response<ureq::Body>> {
        let r = r.map_err(|e| self.unreachable(e))?;
        if !r.status().is_success() {
            return Err(self.refused(r));
        }
        Ok(r)
    }

    fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        let mut r = self.checked(self.with_auth(self.agent.get(format!("{}{path}", self.base))).call())?;
        r.body_mut()
            .with_config()
            .limit(16 << 20)
            .read_json()
            .map_err(|e| Error::invalid(format!("the server at {} sent an answer this client cannot read ({e}): is it `unmask serve` of the same version?", self.base)))
    }

    /// The loaded model, the queue and the limits.
    pub fn info(&self) -> Result<ServerInfo> {
        let info: ServerInfo = self.get("/v1/model")?;
        if info.protocol != protocol::PROTOCOL {
            return Err(Error::invalid(format!(
                "the server at {} speaks protocol {}, this client {}: use the same version of unmask on both",
                self.base,
                info.protocol,
                protocol::PROTOCOL
            )));
        }
        Ok(info)
    }

    /// This client's queued and running jobs.
    pub fn jobs(&self) -> Result<Vec<JobState>> {
        self.get("/v1/jobs")
    }

    /// Sends a job; its events follow on the returned stream.
    pub fn submit(&self, job: &Job, preview: PreviewOptions) -> Result<Submitted> {
        let body = serde_json::to_vec(&protocol::request_of(job, preview)?).map_err(|e| Error::invalid(format!("encoding the job: {e}")))?;
        self.submit_raw(&body)
    }

    /// Sends a request body as is (tests send malformed ones through this).
    pub fn submit_raw(&self, body: &[u8]) -> Result<Submitted> {
        if body.len() > protocol::MAX_BODY {
            return Err(Error::invalid(format!(
                "the job is {} as a request, over the server's limit of {}: use a smaller image",
                crate::limits::gib(body.len() as u64),
                crate::limits::gib(protocol::MAX_BODY as u64)
            )));
        }
        let r = self.checked(self.with_auth(self.agent.post(format!("{}/v1/jobs", self.base))).content_type("application/json").send(body))?;
        Ok(Submitted { reader: BufReader::new(r.into_body().into_reader()), base: self.base.clone() })
    }

    /// Cancels one of this client's jobs by the server's id.
    pub fn cancel(&self, job: &str) -> Result<()> {
        self.checked(self.with_auth(self.agent.post(format!("{}/v1/jobs/{job}/cancel", self.base))).send_empty())?;
        Ok(())
    }

    /// One job start to finish; `on` sees every event and returns false to
    /// stop (the connection closes, so the server cancels the job).
    pub fn run(&self, job: &Job, preview: PreviewOptions, on: &mut dyn FnMut(&WireEvent) -> bool) -> Result<Output> {
        let mut s = self.submit(job, preview)?;
        loop {
            let Some(e) = s.next()? else {
                return Err(Error::invalid(format!("the server at {} closed the job's stream before it ended: run it again", self.base)));
            };
            if !on(&e) {
                return Err(Error::Cancelled);
            }
            match e {
                WireEvent::Finished { .. } => {
                    return match protocol::event_of(e, 0)? {
                        Some(Event::Finished { output, .. }) => Ok(*output),
                        _ => Err(Error::invalid("unexpected event")),
                    }
                }
                WireEvent::Failed { message, .. } => return Err(Error::invalid(message)),
                WireEvent::Cancelled { .. } => return Err(Error::Cancelled),
                _ => {}
            }
        }
    }
}

impl Submitted {
    /// The next event; `None` when the stream ends. Keep-alive comments are
    /// skipped, but each one returns control through `tick`.
    pub fn next(&mut self) -> Result<Option<WireEvent>> {
        self.next_or_tick(&mut || true)
    }

    /// As [`Submitted::next`]; `tick` runs after every line (events and
    /// keep-alives alike) and returns false to stop reading (`Ok(None)`).
    pub fn next_or_tick(&mut self, tick: &mut dyn FnMut() -> bool) -> Result<Option<WireEvent>> {
        let mut data = String::new();
        loop {
            let mut line = String::new();
            let n = (&mut self.reader)
                .take(MAX_LINE)
                .read_line(&mut line)
                .map_err(|e| Error::invalid(format!("lost the connection to the server at {} ({e})", self.base)))?;
            if n == 0 {
                return Ok(None);
            }
            if !tick() {
                return Ok(None);
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if data.is_empty() {
                    continue;
                }
                return serde_json::from_str(&data)
                    .map(Some)
                    .map_err(|e| Error::invalid(format!("the server at {} sent an event this client cannot read ({e})", self.base)));
            }
            if let Some(d) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(d.strip_prefix(' ').unwrap_or(d));
            }
            // `:` comments (keep-alives), `event:` and `id:` lines carry nothing we need
        }
    }
}

// ---- the Worker interface over a server -----------------------------------

type Notify = Arc<dyn Fn() + Send + Sync>;

struct Slot {
    server_id: Option<String>,
    cancel: Arc<AtomicBool>,
}

/// [`crate::worker::Worker`]'s interface, run by a server: `connect` emits
/// `Loading`/`Loaded` (the server's model) or `LoadFailed`; jobs emit the
/// same events as locally. A lost connection fails the job with a message
/// that says so; nothing else is touched.
pub struct RemoteWorker {
    client: Arc<Client>,
    tx: Sender<Event>,
    events: Receiver<Event>,
    notify: Notify,
    next_id: JobId,
    jobs: Arc<Mutex<HashMap<JobId, Slot>>>,
    running: Arc<AtomicU64>,
}

impl RemoteWorker {
    pub fn new(client: Client, notify: Notify) -> Self {
        let (tx, events) = crossbeam_channel::unbounded();
        Self { client: Arc::new(client), tx, events, notify, next_id: 1, jobs: Arc::default(), running: Arc::default() }
    }

    pub fn url(&self) -> &str {
        self.client.url()
    }

    /// Asks the server for its model, on a thread: `Loaded` or `LoadFailed` follows.
    pub fn connect(&self) {
        let (client, tx, notify) = (self.client.clone(), self.tx.clone(), self.notify.clone());
        let path = PathBuf::from(client.url());
        let _ = tx.send(Event::Loading { path: path.clone() });
        notify();
        let _ = std::thread::Builder::new().name("unmask-connect".into()).spawn(move || {
            let e = match client.info() {
                Ok(i) => {
                    let mut m = i.model;
                    m.path = format!("{} on {}", m.path, client.url());
                    Event::Loaded(Box::new(m))
                }
                Err(e) => Event::LoadFailed { path, message: e.to_string() },
            };
            let _ = tx.send(e);
            notify();
        });
    }

    /// Sends a job on a thread of its own and returns its (local) id.
    pub fn submit(&mut self, job: Job, preview: PreviewOptions) -> JobId {
        let id = self.next_id;
        self.next_id += 1;
        let cancel = Arc::new(AtomicBool::new(false));
        self.lock().insert(id, Slot { server_id: None, cancel: cancel.clone() });
        let (client, tx, notify, jobs, running) = (self.client.clone(), self.tx.clone(), self.notify.clone(), self.jobs.clone(), self.running.clone());
        let spawned = std::thread::Builder::new().name("unmask-remote-job".into()).spawn(move || {
            let emit = |e: Event| {
                let _ = tx.send(e);
                notify();
            };
            let end = follow(&client, id, job, preview, &cancel, &jobs, &running, &emit);
            jobs.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            let _ = running.compare_exchange(id, 0, Ordering::SeqCst, Ordering::SeqCst);
            emit(end);
        });
        if spawned.is_err() {
            let _ = self.tx.send(Event::Failed { id, message: "could not start a thread for the job".into() });
        }
        id
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, Slot>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Cancels job `id`: the server is asked at once; the stream is closed
    /// too, which cancels it on whichever server holds it.
    pub fn cancel(&self, id: JobId) {
        let server_id = {
            let jobs = self.lock();
            let Some(s) = jobs.get(&id) else { return };
            s.cancel.store(true, Ordering::SeqCst);
            s.server_id.clone()
        };
        if let Some(sid) = server_id {
            let client = self.client.clone();
            let _ = std::thread::Builder::new().name("unmask-cancel".into()).spawn(move || {
                let _ = client.cancel(&sid);
            });
        }
    }

    /// Id of a job the server is running now, if any.
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

/// Runs one remote job, emitting its events; returns its last event.
#[allow(clippy::too_many_arguments)]
fn follow(
    client: &Client,
    id: JobId,
    job: Job,
    preview: PreviewOptions,
    cancel: &AtomicBool,
    jobs: &Mutex<HashMap<JobId, Slot>>,
    running: &AtomicU64,
    emit: &dyn Fn(Event),
) -> Event {
    let lost = |e: Error| Event::Failed {
        id,
        message: format!("{e}. Your canvas and history are kept: reconnect (Model > Connect to server...) and run it again"),
    };
    let mut stream = match client.submit(&job, preview) {
        Ok(s) => s,
        Err(e) => return lost(e),
    };
    drop(job);
    loop {
        let next = stream.next_or_tick(&mut || !cancel.load(Ordering::SeqCst));
        let w = match next {
            Ok(Some(w)) => w,
            // cancelled here: dropping the stream cancels it on the server
            Ok(None) if cancel.load(Ordering::SeqCst) => return Event::Cancelled { id },
            Ok(None) => return lost(Error::invalid(format!("the server at {} closed the job's stream before it ended", client.url()))),
            Err(e) => return lost(e),
        };
        if let WireEvent::Queued { job, .. } = &w {
            if let Some(s) = jobs.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&id) {
                s.server_id = Some(job.clone());
            }
        }
        if matches!(w, WireEvent::Started { .. }) {
            running.store(id, Ordering::SeqCst);
        }
        let terminal = w.is_terminal();
        match protocol::event_of(w, id) {
            Ok(Some(e)) if terminal => return e,
            Ok(Some(e)) => emit(e),
            Ok(None) => {}
            Err(e) => return lost(e),
        }
    }
}
