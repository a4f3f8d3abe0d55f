//! `unmask serve`: one loaded model behind HTTP (axum on tokio). Routes,
//! JSON and events are in docs/server-protocol.md; this file is the routing,
//! the token check and the limits, [`queue`] the jobs.
//!
//! Slow and numerous clients are bounded ([`conn`]): a request's headers and
//! body each have a time limit, connections a cap per client address and in
//! all; an event stream is an answer, not a request, and is never cut.
//!
//! Promises: a job's events arrive on the connection that submitted it, and
//! nothing of a job outlives it (no server state beyond a job's lifetime, so
//! servers scale out behind a load balancer). A client that disconnects has
//! its job cancelled, queued or running. A failing or panicking job fails
//! alone. A result is delivered only while its client is connected: one that
//! is not received before a disconnect or a restart is gone (the client
//! resubmits).

mod conn;
pub mod queue;

pub use conn::Cuts;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, Path as UrlPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::engine::{DeviceChoice, ModelInfo};
use crate::error::{Error, Result};
use crate::remote::protocol::{self, ErrorBody, Health, JobRequest, ServerInfo, WireLimits, CLIENT_HEADER, PROTOCOL};
use crate::worker::{Event, Worker};
use queue::{CancelError, Queue};

pub struct ServeConfig {
    pub model: PathBuf,
    pub device: DeviceChoice,
    pub listen: SocketAddr,
    pub token: String,
    /// The largest request body (default [`protocol::MAX_BODY`]).
    pub max_body: usize,
    /// How often an idle event stream sends a keep-alive comment; also how
    /// soon a vanished client is noticed.
    pub keep_alive: Duration,
    /// The time a request's headers may take from the connection's start
    /// (or the previous answer): over it, the connection is closed.
    pub header_timeout: Duration,
    /// The time a request's body may take from its headers: over it, `408`
    /// and the connection is closed.
    pub body_timeout: Duration,
    /// Open connections in all, event streams of queued jobs included; one
    /// more is refused (`503`, closed).
    pub max_connections: usize,
    /// Open connections from one client address (behind a proxy, the proxy is
    /// one address: raise this to `max_connections` there).
    pub max_connections_per_client: usize,
}

/// A request's headers: 10 s is ages for a few hundred bytes.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A request's body: 120 s moves a 50 MB request (a 24 MP photo) at 3.5 Mbit/s.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(120);
/// Connections in all: a GPU box serving a few users, each with a few jobs queued.
pub const MAX_CONNECTIONS: usize = 64;
/// Connections per client address.
pub const MAX_CONNECTIONS_PER_CLIENT: usize = 8;

impl ServeConfig {
    pub fn new(model: impl Into<PathBuf>, listen: SocketAddr, token: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            device: DeviceChoice::Auto,
            listen,
            token: token.into(),
            max_body: protocol::MAX_BODY,
            keep_alive: Duration::from_secs(1),
            header_timeout: HEADER_TIMEOUT,
            body_timeout: BODY_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
            max_connections_per_client: MAX_CONNECTIONS_PER_CLIENT,
        }
    }
}

struct App {
    token_hash: [u8; 32],
    info: ModelInfo,
    queue: Queue,
    keep_alive: Duration,
    body_timeout: Duration,
    log: Arc<conn::Log>,
}

/// A running server; dropping it (or [`Server::stop`]) stops it.
pub struct Server {
    pub addr: SocketAddr,
    pub info: ModelInfo,
    log: Arc<conn::Log>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Loads the model, binds, and serves on a thread of its own.
    pub fn start(cfg: ServeConfig) -> Result<Self> {
        if cfg.token.trim().is_empty() {
            return Err(Error::invalid("the server token is empty: give --token, --token-file, or none to have one made"));
        }
        // zero would cut every client
        for (flag, d) in [("--header-timeout", cfg.header_timeout), ("--body-timeout", cfg.body_timeout)] {
            if d.is_zero() {
                return Err(Error::invalid(format!("{flag}: give a time over 0 seconds")));
            }
        }
        for (flag, n) in [("--max-connections", cfg.max_connections), ("--max-connections-per-client", cfg.max_connections_per_client)] {
            if n == 0 {
                return Err(Error::invalid(format!("{flag}: give 1 or more")));
            }
        }
        let worker = Worker::spawn();
        worker.load(&cfg.model, cfg.device);
        let info = loop {
            match worker.events().recv() {
                Ok(Event::Loaded(info)) => break *info,
                Ok(Event::LoadFailed { message, .. }) => return Err(Error::invalid(message)),
                Ok(_) => continue,
                Err(_) => return Err(Error::invalid("the model worker stopped while loading")),
            }
        };
        let listener = std::net::TcpListener::bind(cfg.listen)
            .map_err(|e| Error::invalid(format!("--listen {}: cannot listen there ({e}): pick a free port or address", cfg.listen)))?;
        let addr = listener.local_addr().map_err(|e| Error::invalid(format!("--listen {}: {e}", cfg.listen)))?;
        listener.set_nonblocking(true).map_err(|e| Error::invalid(format!("--listen {addr}: {e}")))?;
        let log = Arc::new(conn::Log::default());
        let app = Arc::new(App {
            token_hash: hash(&cfg.token),
            info: info.clone(),
            queue: Queue::new(worker),
            keep_alive: cfg.keep_alive,
            body_timeout: cfg.body_timeout,
            log: log.clone(),
        });
        let router = router(app, cfg.max_body);
        let bounds = conn::Bounds {
            header_timeout: cfg.header_timeout,
            max_connections: cfg.max_connections,
            max_per_client: cfg.max_connections_per_client,
        };
        let serve_log = log.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("unmask-serve")
            .enable_all()
            .build()
            .map_err(|e| Error::invalid(format!("starting the server's runtime: {e}")))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("unmask-serve".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                    tokio::select! {
                        _ = conn::serve(listener, router, bounds, serve_log) => {}
                        _ = stopped => {}
                    }
                });
                // open event streams end with the runtime
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .map_err(|e| Error::invalid(format!("starting the server thread: {e}")))?;
        Ok(Self { addr, info, log, stop: Some(stop), thread: Some(thread) })
    }

    /// The connections cut or refused so far, by reason (each also logged).
    pub fn cuts(&self) -> Cuts {
        self.log.cuts()
    }

    /// Serves until Ctrl-C (the CLI's `unmask serve`).
    pub fn run_until_ctrl_c(mut self) {
        match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => {
                let _ = rt.block_on(tokio::signal::ctrl_c());
            }
            // no signal handling without a runtime: serve until killed
            Err(_) => {
                if let Some(t) = self.thread.take() {
                    let _ = t.join();
                }
            }
        }
        // dropping `self` stops the server
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn router(app: Arc<App>, max_body: usize) -> Router {
    let v1 = Router::new()
        .route("/v1/model", get(model))
        .route("/v1/jobs", post(submit).get(list))
        .route("/v1/jobs/{id}/cancel", post(cancel))
        .fallback(not_found)
        .method_not_allowed_fallback(not_allowed)
        // the token is checked first: a stranger learns nothing, not even the limits
        .layer(middleware::from_fn_with_state(max_body, declared_size))
        .layer(middleware::from_fn_with_state(app.clone(), auth))
        .layer(DefaultBodyLimit::max(max_body));
    Router::new().route("/health", get(health)).merge(v1).with_state(app)
}

// ---- errors ---------------------------------------------------------------

struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.0, Json(ErrorBody { error: self.1 })).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert("www-authenticate", HeaderValue::from_static("Bearer"));
        }
        if self.0 == StatusCode::REQUEST_TIMEOUT {
            // the rest of the body may still come: nothing more is read here
            r.headers_mut().insert("connection", HeaderValue::from_static("close"));
        }
        r
    }
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

async fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "no such route: see docs/server-protocol.md (GET /v1/model, POST /v1/jobs, GET /v1/jobs, POST /v1/jobs/ID/cancel)".into())
}

async fn not_allowed() -> ApiError {
    ApiError(StatusCode::METHOD_NOT_ALLOWED, "this route does not take that method: see docs/server-protocol.md".into())
}

/// A body whose declared length is over the limit is refused before a byte
/// of it is read (a chunked one is cut at the limit by `DefaultBodyLimit`).
async fn declared_size(State(max): State<usize>, req: Request, next: Next) -> Response {
    let declared = req.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return too_large().into_response();
    }
    next.run(req).await
}

fn too_large() -> ApiError {
    ApiError(StatusCode::PAYLOAD_TOO_LARGE, "the request is over the server's size limit: send smaller images (see GET /v1/model, limits)".into())
}

// ---- auth -----------------------------------------------------------------

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.trim().as_bytes()).into()
}

/// Every route but `/health` needs `Authorization: Bearer TOKEN`. Tokens are
/// compared as SHA-256 digests in constant time: neither the token's bytes
/// nor its length show in the time a wrong guess takes.
async fn auth(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let given = req.headers().get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(hash);
    match given {
        Some(h) if bool::from(h.ct_eq(&app.token_hash)) => next.run(req).await,
        Some(_) => ApiError(StatusCode::UNAUTHORIZED, "wrong token: use the one `unmask serve` printed (or its --token / --token-file)".into()).into_response(),
        None => ApiError(StatusCode::UNAUTHORIZED, "no token: send `Authorization: Bearer TOKEN` with the token `unmask serve` printed".into()).into_response(),
    }
}

/// The client a request comes from (`X-Unmask-Client`); without the header,
/// the anonymous client, which every such request shares.
fn owner(h: &HeaderMap) -> std::result::Result<String, ApiError> {
    let Some(v) = h.get(CLIENT_HEADER) else { return Ok(String::new()) };
    let s = v.to_str().unwrap_or("");
    if s.is_empty() || s.len() > 64 || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.') {
        return Err(bad(format!("{CLIENT_HEADER}: use 1 to 64 letters, digits, '-', '_' or '.'")));
    }
    Ok(s.to_string())
}

// ---- routes ---------------------------------------------------------------

async fn health() -> Json<Health> {
    Json(Health { ok: true, protocol: PROTOCOL, version: env!("CARGO_PKG_VERSION").into() })
}

async fn model(State(app): State<Arc<App>>) -> Json<ServerInfo> {
    Json(ServerInfo {
        protocol: PROTOCOL,
        version: env!("CARGO_PKG_VERSION").into(),
        model: app.info.clone(),
        queued: app.queue.len(),
        limits: WireLimits::current(),
    })
}

async fn list(State(app): State<Arc<App>>, headers: HeaderMap) -> std::result::Result<Response, ApiError> {
    let owner = owner(&headers)?;
    Ok(Json(app.queue.jobs(&owner)).into_response())
}

async fn cancel(State(app): State<Arc<App>>, headers: HeaderMap, UrlPath(id): UrlPath<String>) -> std::result::Result<Response, ApiError> {
    let owner = owner(&headers)?;
    match app.queue.cancel(&owner, &id) {
        Ok(()) => Ok((StatusCode::ACCEPTED, Json(serde_json::json!({ "cancelled": id }))).into_response()),
        // another client's job reads as unknown: ids are not disclosed
        Err(CancelError::NotFound) => Err(ApiError(StatusCode::NOT_FOUND, format!("no job `{id}` of this client is queued or running"))),
    }
}

/// Cancels the job when its stream is dropped: the client went away.
struct Guard {
    queue: Queue,
    owner: String,
    job: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        // a finished job is gone from the queue already: nothing to cancel
        let _ = self.queue.cancel(&self.owner, &self.job);
    }
}

/// A request's body, in at most the body timeout: a client that announces
/// a body and sends it slowly, or never, gets `408` and is closed (logged).
async fn read_body(app: &App, req: Request) -> std::result::Result<Bytes, ApiError> {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_canonical().to_string()).unwrap_or_else(|| "?".into());
    let read: std::result::Result<Bytes, BytesRejection> = match tokio::time::timeout(app.body_timeout, Bytes::from_request(req, &())).await {
        Ok(r) => r,
        Err(_) => {
            let limit = conn::secs(app.body_timeout);
            app.log.cut(conn::Cut::SlowBody, |n| format!("serve: closed a connection from {peer}: its request body took over {limit}, answered 408 ({n} so far)"));
            return Err(ApiError(
                StatusCode::REQUEST_TIMEOUT,
                format!("the request's body did not arrive within {limit}: on a slow link, send smaller images or ask for a longer --body-timeout"),
            ));
        }
    };
    read.map_err(|r| {
        let status = r.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            ApiError(status, format!("reading the request: {}", r.body_text()))
        }
    })
}

async fn submit(State(app): State<Arc<App>>, req: Request) -> std::result::Result<Response, ApiError> {
    let owner = owner(req.headers())?;
    let body = read_body(&app, req).await?;
    let req: JobRequest = serde_json::from_slice(&body).map_err(|e| {
        let status = if e.is_syntax() || e.is_eof() { StatusCode::BAD_REQUEST } else { StatusCode::UNPROCESSABLE_ENTITY };
        ApiError(status, format!("the job is not a valid request ({e}): see docs/server-protocol.md"))
    })?;
    drop(body);
    let info = app.info.clone();
    // decoding a photo takes a while: off the async threads
    let (job, preview) = tokio::task::spawn_blocking(move || protocol::job_of(req, &info))
        .await
        .map_err(|_| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal error (please report): checking the job panicked".into()))?
        .map_err(|e| bad(e.to_string()))?;
    let (id, stream) = app.queue.submit(&owner, job, preview);
    let guard = Guard { queue: app.queue.clone(), owner, job: id.clone() };
    let events = futures_util::stream::unfold((stream, guard), |(mut stream, guard)| async move {
        let m = stream.rx.recv().await?;
        if m.preview {
            stream.backlog.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
        Some((Ok::<_, std::convert::Infallible>(SseEvent::default().data(m.text)), (stream, guard)))
    });
    let mut r = Sse::new(events).keep_alive(KeepAlive::new().interval(app.keep_alive)).into_response();
    if let Ok(v) = HeaderValue::from_str(&id) {
        r.headers_mut().insert("x-unmask-job", v);
    }
    // nginx would otherwise hold the stream back until it ends
    r.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(r)
}

// ---- tokens ---------------------------------------------------------------

/// The token to serve with: `--token`, else the first line of
/// `--token-file`, else the one kept in `kept` (made there, 0600, on first
/// start). Returns the token and whether it was just made.
pub fn token(given: Option<String>, file: Option<&Path>, kept: &Path) -> Result<(String, bool)> {
    if let Some(t) = given {
        return Ok((check_token(t.trim(), "--token")?, false));
    }
    if let Some(f) = file {
        let text = crate::input::read_text_capped(f, 4096, "--token-file")?;
        let line = text.lines().next().unwrap_or("").trim().to_string();
        return Ok((check_token(&line, &format!("--token-file {}", f.display()))?, false));
    }
    if kept.is_file() {
        let text = crate::input::read_text_capped(kept, 4096, "the server token")?;
        return Ok((check_token(text.trim(), &kept.display().to_string())?, false));
    }
    let t: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
    if let Some(dir) = kept.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    write_private(kept, &t)?;
    Ok((t, true))
}

fn check_token(t: &str, what: &str) -> Result<String> {
    if t.len() < 16 || t.len() > 512 || !t.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(format!("{what}: a token is 16 to 512 printable characters without spaces")));
    }
    Ok(t.to_string())
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path).map_err(|e| Error::io(path, e))?;
    f.write_all(format!("{text}\n").as_bytes()).map_err(|e| Error::io(path, e))
}

/// Where the made token is kept: the data folder's `server-token`.
pub fn kept_token_path() -> Option<PathBuf> {
    crate::hub::models_dir().and_then(|m| m.parent().map(|p| p.join("server-token")))
}
