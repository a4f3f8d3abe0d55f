#![allow(dead_code)]
//! A small Hugging Face hub on 127.0.0.1 for the download tests: the repo
//! info route, `resolve` with HTTP range requests, etags (sha256 for weights,
//! git blob sha1 for small files, as the hub gives them), an optional bearer
//! token, and faults on demand (a connection cut after N bytes, corrupted
//! bytes, a lying size), hostile ones too (issue 30: values that would be
//! paths, endless and stalled bodies, a dripping listing, broken redirects).
//! Counts the body bytes it serves and the requests it gets.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sha1::Digest;

pub const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

#[derive(Default)]
pub struct Faults {
    /// (file, n): that file's body ends after n bytes (then the connection closes).
    pub cut: Option<(String, u64)>,
    /// That file's bytes are served with one byte flipped.
    pub corrupt: Option<String>,
    /// Every route but health needs `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// A pause after every 16 KiB of a transfer (a slow network).
    pub slow: Option<std::time::Duration>,
    /// Every file's `ETag` header, as sent (e.g. a path).
    pub etag: Option<String>,
    /// The `X-Repo-Commit` header of every file, as sent.
    pub commit: Option<String>,
    /// The listing's `sha`, as sent.
    pub sha: Option<String>,
    /// That file's body runs on past its size without end (no Content-Length).
    pub endless: Option<String>,
    /// The listing is sent one byte per this interval.
    pub drip_list: Option<std::time::Duration>,
    /// (file, n): that file's body stops after n bytes, the connection held open.
    pub stall: Option<(String, u64)>,
    /// Every file answers with this redirect.
    pub redirect: Option<Redirect>,
}

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Redirect {
    /// A 302 without a Location.
    NoLocation,
    /// A 302 to the same address, forever.
    Loop,
}

pub struct Hub {
    pub url: String,
    pub served: Arc<AtomicU64>,
    /// Requests received (any route).
    pub requests: Arc<AtomicU64>,
    pub faults: Arc<Mutex<Faults>>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn etag(name: &str, data: &[u8]) -> String {
    if name.ends_with(".safetensors") {
        hex(&sha2::Sha256::digest(data))
    } else {
        let mut h = sha1::Sha1::new();
        h.update(format!("blob {}\0", data.len()).as_bytes());
        h.update(data);
        hex(&h.finalize())
    }
}

/// Every file under `dir`, by its path relative to it.
pub fn files_of(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().replace('\\', "/");
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

impl Hub {
    pub fn start(repo: &str, files: Vec<(String, Vec<u8>)>, faults: Faults) -> Hub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let served = Arc::new(AtomicU64::new(0));
        let requests = Arc::new(AtomicU64::new(0));
        let faults = Arc::new(Mutex::new(faults));
        let files: Arc<HashMap<String, Vec<u8>>> = Arc::new(files.into_iter().collect());
        let (s, r, f, repo) = (served.clone(), requests.clone(), faults.clone(), repo.to_string());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (files, s, r, f, repo) = (files.clone(), s.clone(), r.clone(), f.clone(), repo.clone());
                std::thread::spawn(move || {
                    r.fetch_add(1, Ordering::Relaxed);
                    let _ = serve(conn, &repo, &files, &s, &f);
                });
            }
        });
        Hub { url, served, requests, faults }
    }
}

fn serve(mut conn: TcpStream, repo: &str, files: &HashMap<String, Vec<u8>>, served: &AtomicU64, faults: &Mutex<Faults>) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let (cut, corrupt, token, slow) = {
        let f = faults.lock().unwrap();
        (f.cut.clone(), f.corrupt.clone(), f.token.clone(), f.slow)
    };
    let (etag_as, commit_as, sha_as, endless, drip_list, stall, redirect) = {
        let f = faults.lock().unwrap();
        (f.etag.clone(), f.commit.clone(), f.sha.clone(), f.endless.clone(), f.drip_list, f.stall.clone(), f.redirect)
    };
    let reply = |conn: &mut TcpStream, status: &str, extra: &str, body: &[u8]| -> std::io::Result<()> {
        write!(conn, "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n", body.len())?;
        conn.write_all(body)
    };
    if let Some(t) = token {
        if headers.get("authorization").map(String::as_str) != Some(&format!("Bearer {t}")) {
            return reply(&mut conn, "401 Unauthorized", "", b"{\"error\":\"Invalid credentials\"}");
        }
    }
    if path.starts_with(&format!("/api/models/{repo}")) {
        let siblings: Vec<String> = files.keys().map(|k| format!("{{\"rfilename\":{}}}", serde_json::to_string(k).unwrap())).collect();
        let sha = serde_json::to_string(sha_as.as_deref().unwrap_or(COMMIT)).unwrap();
        let body = format!("{{\"sha\":{sha},\"siblings\":[{}]}}", siblings.join(","));
        if let Some(d) = drip_list {
            write!(conn, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\nContent-Type: application/json\r\n\r\n", body.len())?;
            for b in body.bytes() {
                conn.write_all(&[b])?;
                std::thread::sleep(d);
            }
            return Ok(());
        }
        return reply(&mut conn, "200 OK", "Content-Type: application/json\r\n", body.as_bytes());
    }
    let prefix = format!("/{repo}/resolve/");
    let Some(rest) = path.strip_prefix(&prefix) else { return reply(&mut conn, "404 Not Found", "", b"not found") };
    let name = rest.split_once('/').map(|(_, n)| n).unwrap_or("");
    let Some(data) = files.get(name) else { return reply(&mut conn, "404 Not Found", "", b"Entry not found") };
    match redirect {
        Some(Redirect::NoLocation) => return reply(&mut conn, "302 Found", "", b""),
        Some(Redirect::Loop) => return reply(&mut conn, "302 Found", &format!("Location: {path}\r\n"), b""),
        None => {}
    }
    let total = data.len() as u64;
    let (a, b) = match headers.get("range").and_then(|r| r.strip_prefix("bytes=")) {
        Some(r) => {
            let (a, b) = r.split_once('-').unwrap_or((r, ""));
            let a: u64 = a.parse().unwrap_or(0);
            let b: u64 = if b.is_empty() { total.saturating_sub(1) } else { b.parse().unwrap_or(total - 1) };
            (a.min(total), b.min(total.saturating_sub(1)))
        }
        None => (0, total.saturating_sub(1)),
    };
    let mut body = if total == 0 { Vec::new() } else { data[a as usize..=b as usize].to_vec() };
    if corrupt.as_deref() == Some(name) && body.len() > 1 {
        let mid = body.len() / 2;
        body[mid] ^= 0xff;
    }
    let extra = format!(
        "Content-Range: bytes {a}-{b}/{total}\r\nETag: {}\r\nX-Repo-Commit: {}\r\nAccept-Ranges: bytes\r\n",
        etag_as.unwrap_or_else(|| format!("\"{}\"", etag(name, data))),
        commit_as.as_deref().unwrap_or(COMMIT)
    );
    // a metadata probe (bytes=0-0) is not a transfer
    let counted = !(a == 0 && b == 0);
    if counted && endless.as_deref() == Some(name) {
        // the file, then more, with no length to stop at: until the client hangs up
        write!(conn, "HTTP/1.1 206 Partial Content\r\nConnection: close\r\n{extra}\r\n")?;
        conn.write_all(&body)?;
        let junk = [b'x'; 16 << 10];
        for _ in 0..(1 << 16) {
            conn.write_all(&junk)?;
        }
        return Ok(());
    }
    write!(conn, "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n", body.len())?;
    let mut send = body.len() as u64;
    if let Some((file, n)) = &stall {
        if file == name && counted {
            let k = n.saturating_sub(a).min(send) as usize;
            conn.write_all(&body[..k])?;
            conn.flush()?;
            served.fetch_add(k as u64, Ordering::Relaxed);
            // holds the connection open, sending nothing
            std::thread::sleep(std::time::Duration::from_secs(60));
            return Ok(());
        }
    }
    if let Some((file, n)) = &cut {
        if file == name && counted {
            send = send.min(n.saturating_sub(a));
        }
    }
    let mut src = &body[..send as usize];
    let mut buf = [0u8; 16 << 10];
    loop {
        let k = src.read(&mut buf)?;
        if k == 0 {
            break;
        }
        conn.write_all(&buf[..k])?;
        if counted {
            served.fetch_add(k as u64, Ordering::Relaxed);
            if let Some(d) = slow {
                std::thread::sleep(d);
            }
        }
    }
    conn.flush()?;
    Ok(())
}
