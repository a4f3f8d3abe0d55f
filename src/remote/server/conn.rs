//! The server's connections: the accept loop (ours, not `axum::serve`, which
//! has no header timeout) and the bounds on slow and numerous clients: a
//! time limit for a request's headers, a cap on connections per client
//! address and in all. The body's time limit is where a body is read
//! ([`super::read_body`]). Every cut is counted ([`Cuts`]) and logged on stderr.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

/// The connection bounds of [`super::ServeConfig`].
#[derive(Clone, Copy)]
pub(super) struct Bounds {
    pub header_timeout: Duration,
    pub max_connections: usize,
    pub max_per_client: usize,
}

/// How many connections the server cut or refused since it started, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cuts {
    /// Closed: a request's headers were not complete within the header timeout.
    pub slow_headers: u64,
    /// Answered `408` and closed: a request's body was not complete within the body timeout.
    pub slow_bodies: u64,
    /// Refused: the client's address already had its most connections open.
    pub over_client_cap: u64,
    /// Refused: the server already had its most connections open.
    pub over_total_cap: u64,
}

#[derive(Clone, Copy)]
pub(super) enum Cut {
    SlowHeaders,
    SlowBody,
    OverClientCap,
    OverTotalCap,
}

/// The cut counters and their stderr lines: at most one line a second per
/// reason (a flood must not flood the log); each line carries the count,
/// so the lines not printed are still counted.
#[derive(Default)]
pub(super) struct Log {
    counts: [AtomicU64; 4],
    last: [Mutex<Option<Instant>>; 4],
}

impl Log {
    pub fn cut(&self, why: Cut, line: impl FnOnce(u64) -> String) {
        let i = why as usize;
        let n = self.counts[i].fetch_add(1, Ordering::SeqCst) + 1;
        let mut last = self.last[i].lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            *last = Some(Instant::now());
            eprintln!("{}", line(n));
        }
    }

    pub fn cuts(&self) -> Cuts {
        let c = |w: Cut| self.counts[w as usize].load(Ordering::SeqCst);
        Cuts {
            slow_headers: c(Cut::SlowHeaders),
            slow_bodies: c(Cut::SlowBody),
            over_client_cap: c(Cut::OverClientCap),
            over_total_cap: c(Cut::OverTotalCap),
        }
    }
}

/// `10 s`, `0.5 s`: a limit as the flags give it.
pub(super) fn secs(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

#[derive(Default)]
struct Open {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// One open connection's place in the counts, given back on drop.
struct Slot {
    open: Arc<Mutex<Open>>,
    ip: IpAddr,
}

impl Slot {
    fn take(open: &Arc<Mutex<Open>>, ip: IpAddr, b: &Bounds) -> Result<Self, Cut> {
        let mut o = open.lock().unwrap_or_else(|p| p.into_inner());
        if o.by_ip.get(&ip).copied().unwrap_or(0) >= b.max_per_client {
            return Err(Cut::OverClientCap);
        }
        if o.total >= b.max_connections {
            return Err(Cut::OverTotalCap);
        }
        o.total += 1;
        *o.by_ip.entry(ip).or_insert(0) += 1;
        Ok(Self { open: open.clone(), ip })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut o = self.open.lock().unwrap_or_else(|p| p.into_inner());
        o.total -= 1;
        if let Some(n) = o.by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                o.by_ip.remove(&self.ip);
            }
        }
    }
}

/// Accepts connections until dropped (the server's stop drops it).
pub(super) async fn serve(listener: TcpListener, router: Router, bounds: Bounds, log: Arc<Log>) {
    let open = Arc::new(Mutex::new(Open::default()));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // out of file descriptors and the like: wait, don't spin
                if !matches!(e.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionRefused) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                continue;
            }
        };
        // an IPv4 client on an IPv6 socket is the same client
        let ip = peer.ip().to_canonical();
        match Slot::take(&open, ip, &bounds) {
            Ok(slot) => {
                tokio::spawn(connection(stream, peer, slot, router.clone(), bounds.header_timeout, log.clone()));
            }
            Err(why) => {
                let (flag, cap, whose) = match why {
                    Cut::OverClientCap => ("--max-connections-per-client", bounds.max_per_client, "from that address"),
                    _ => ("--max-connections", bounds.max_connections, "in all"),
                };
                log.cut(why, |n| format!("serve: refused a connection from {ip}: {cap} open {whose} already ({flag}; {n} refused so far)"));
                tokio::spawn(refuse(stream, cap, whose, flag));
            }
        }
    }
}

/// Answers `503` and closes. The client's request is read and dropped for up
/// to a second first: closing on unread bytes sends a reset, which can make
/// the client lose the answer.
async fn refuse(mut stream: TcpStream, cap: usize, whose: &str, flag: &str) {
    let body = serde_json::json!({
        "error": format!("the server has {cap} connections open {whose}, its most ({flag}): close some (or end queued jobs) and try again")
    })
    .to_string();
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n",
        body.len()
    );
    // (tokio's readiness calls: its io-util feature is not built)
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let answer = format!("{head}{body}");
        let mut out = answer.as_bytes();
        while !out.is_empty() {
            stream.writable().await?;
            match stream.try_write(out) {
                Ok(n) => out = &out[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        std::future::poll_fn(|cx| Pin::new(&mut stream).poll_shutdown(cx)).await?;
        let mut sink = [0u8; 4096];
        let mut left = 64usize << 10;
        while left > 0 {
            stream.readable().await?;
            match stream.try_read(&mut sink) {
                Ok(0) => break,
                Ok(n) => left = left.saturating_sub(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        io::Result::Ok(())
    })
    .await;
}

async fn connection(stream: TcpStream, peer: SocketAddr, slot: Slot, router: Router, header_timeout: Duration, log: Arc<Log>) {
    let seen = Arc::new(Seen::default());
    let io = TokioIo::new(Watched { _slot: slot, inner: stream, seen: seen.clone() });
    // handlers learn the client's address (the body timeout's log line)
    let service = TowerToHyperService::new(router.map_request(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req
    }));
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        // also closes a kept-alive connection idle that long: it holds a slot
        .header_read_timeout(header_timeout)
        .serve_connection(io, service)
        .await;
    if let Err(e) = served {
        // an idle kept-alive connection (nothing read since the last answer)
        // closed on time is ordinary, not a slow client
        let idle = seen.wrote.load(Ordering::SeqCst) && !seen.read_since_write.load(Ordering::SeqCst);
        if e.is_timeout() && !idle {
            let ip = peer.ip().to_canonical();
            log.cut(Cut::SlowHeaders, |n| {
                format!("serve: closed a connection from {ip}: its request headers took over {} ({n} so far)", secs(header_timeout))
            });
        }
    }
}

/// What a connection did, for telling a slow client from an idle one.
#[derive(Default)]
struct Seen {
    wrote: AtomicBool,
    read_since_write: AtomicBool,
}

/// The socket, noting reads and writes in [`Seen`], with its slot.
struct Watched {
    // dropped first: the place is free before the client sees the close
    // (and reconnects at once)
    _slot: Slot,
    inner: TcpStream,
    seen: Arc<Seen>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.seen.read_since_write.store(true, Ordering::SeqCst);
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.wrote();
        }
        r
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.wrote();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Watched {
    fn wrote(&self) {
        self.seen.wrote.store(true, Ordering::SeqCst);
        self.seen.read_since_write.store(false, Ordering::SeqCst);
    }
}
