//! Downloading a model bundle from the Hugging Face hub (issue 18): exactly
//! the files a bundle needs, resumable (a `.part` file per blob in the hub
//! cache, continued with a range request), every file verified (size, and
//! the hub's sha256 for LFS files or git blob sha1 for small ones), free
//! disk space checked first. The bundle folder is assembled beside its
//! target as `NAME.incomplete` and renamed only when every file is complete
//! and verified, so a half download is never mistaken for a model:
//! [`incomplete`] says what it lacks.
//!
//! Hardened against the hub (issue 30): every value it sends is checked
//! before it becomes a path, a size or a loop (`check.rs`); the transfers
//! are our own ureq calls with timeouts and bounded redirects (`http.rs`)
//! into hf-hub's cache layout (`cache.rs`); `--dir` is never a folder we did
//! not make (`target.rs`).
//!
//! Honours `HF_ENDPOINT`, `HF_HOME` (the cache, shared with the hub's own
//! tools) and `HF_TOKEN` (else the token file in `HF_HOME`).

mod cache;
mod check;
mod http;
mod target;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::error::{Error, Result};
use cache::CacheRepo;
use http::{Client, Stop};
use target::{partial_dir, Record, Target};

pub const DEFAULT_REPO: &str = "Alpha-VLLM/Lumina-DiMOO";
/// Written into a folder while it is being assembled.
pub const MANIFEST: &str = "unmask-download.json";
/// Written into a finished bundle: what it is a download of.
pub const SOURCE: &str = "unmask-source.json";
/// How long the hub may send nothing before a transfer fails.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct Request {
    pub repo: String,
    pub revision: String,
    /// The bundle folder to make.
    pub dir: PathBuf,
    /// The hub's address (else `HF_ENDPOINT`, else huggingface.co).
    pub endpoint: Option<String>,
    /// Else `HF_TOKEN`, else the token file in `HF_HOME`.
    pub token: Option<String>,
    /// The hub cache (else `HF_HOME/hub`, else ~/.cache/huggingface/hub).
    pub cache: Option<PathBuf>,
    /// No byte from the hub for this long fails the transfer (a listing or
    /// probe must finish within it); else [`DEFAULT_TIMEOUT`].
    pub timeout: Option<Duration>,
}

/// One file of the bundle as the hub describes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub name: String,
    pub size: u64,
    pub etag: String,
}

/// What a download reports as it goes.
pub trait Progress: Send {
    /// Before any byte: every file and the bytes still to fetch.
    fn start(&mut self, _files: &[Entry], _to_fetch: u64) {}
    /// `done` bytes of `file` (of `size`) are on disk, this run's `fetched` bytes over all files.
    fn file(&mut self, _file: &str, _done: u64, _size: u64, _fetched: u64) {}
    fn verifying(&mut self, _file: &str) {}
    /// `dir` already is a complete download of the repo and revision (at
    /// `commit`): nothing is fetched.
    fn already(&mut self, _dir: &Path, _commit: &str) {}
}

/// Reports nothing.
pub struct Silent;
impl Progress for Silent {}

/// The files of a bundle in the released layout that the engine reads.
const REQUIRED: &[&str] = &["config.json", "tokenizer.json", "vqvae/config.json", "vqvae/diffusion_pytorch_model.safetensors"];
const OPTIONAL: &[&str] = &["unmask.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"];
const INDEX: &str = "model.safetensors.index.json";
/// The weight index is read whole; the release's is 60 KB.
const MAX_INDEX: u64 = 64 << 20;
/// Shards one index may name (the release has 4).
const MAX_SHARDS: usize = 4096;

/// Where downloaded bundles go by default: `$XDG_DATA_HOME/unmask/models`,
/// else `~/.local/share/unmask/models`.
pub fn models_dir() -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME").map(PathBuf::from).filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(data.join("unmask").join("models"))
}

/// Free bytes where `dir` (or its nearest existing parent) lives;
/// `UNMASK_DISK_FREE` overrides it (to simulate a quota).
pub fn free_space(dir: &Path) -> u64 {
    if let Some(v) = std::env::var("UNMASK_DISK_FREE").ok().and_then(|v| crate::limits::parse_bytes(&v)) {
        return v;
    }
    let mut p = dir.to_path_buf();
    while !p.exists() {
        if !p.pop() {
            return u64::MAX;
        }
    }
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else { return u64::MAX };
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a zeroed struct the call fills.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return u64::MAX;
    }
    s.f_bavail as u64 * s.f_frsize as u64
}

/// What a folder left by an interrupted download lacks: `None` when `dir`
/// is no download in progress.
pub fn incomplete(dir: &Path) -> Option<String> {
    let (manifest, folder) = if dir.join(MANIFEST).is_file() {
        (dir.join(MANIFEST), dir.to_path_buf())
    } else {
        let part = partial_dir(dir);
        (part.join(MANIFEST), part)
    };
    let entries = Record::read(&manifest)?.files;
    let missing: Vec<&Entry> = entries.iter().filter(|e| std::fs::metadata(folder.join(&e.name)).map(|m| m.len() != e.size).unwrap_or(true)).collect();
    let left: u64 = missing.iter().map(|e| e.size).sum();
    Some(format!(
        "{} is an unfinished download: {} of {} files missing ({}), {} to go, e.g. {}; run `unmask download --dir {}` again to resume",
        folder.display(),
        missing.len(),
        entries.len(),
        missing.iter().take(3).map(|e| e.name.as_str()).collect::<Vec<_>>().join(", "),
        crate::limits::gib(left),
        missing.first().map(|e| e.name.as_str()).unwrap_or("-"),
        dir.display()
    ))
}

/// Checks a downloaded file against the hub's size and hash (the ETag, a
/// sha256 or git blob sha1: `check::etag` accepts nothing else).
fn verify(path: &Path, e: &Entry) -> Result<()> {
    let len = std::fs::metadata(path).map_err(|err| Error::bundle(path, format!("cannot read: {err}")))?.len();
    if len != e.size {
        return Err(Error::invalid(format!("{}: {len} bytes on disk, the hub says {}: the download is damaged; run again to fetch it anew", e.name, e.size)));
    }
    let got = if e.etag.len() == 64 {
        hash_file::<sha2::Sha256>(path, b"")?
    } else {
        // a git blob's id: sha1 of "blob <len>\0" and the content
        hash_file::<sha1::Sha1>(path, format!("blob {len}\0").as_bytes())?
    };
    if got != e.etag {
        return Err(Error::invalid(format!(
            "{}: content does not match the hub's hash ({}, got {got}): the bytes were corrupted on the way; run again to fetch it anew",
            e.name, e.etag
        )));
    }
    Ok(())
}

/// The hex digest of `prefix` followed by the file's bytes.
fn hash_file<D: Digest>(path: &Path, prefix: &[u8]) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|err| Error::bundle(path, format!("cannot read: {err}")))?;
    let mut h = D::new();
    h.update(prefix);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|err| Error::bundle(path, err.to_string()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|x| format!("{x:02x}")).collect())
}

/// Downloads the bundle `req` names into `req.dir`; returns the folder.
/// `cancel` stops it between chunks (what was fetched stays for a resume).
/// An existing `req.dir` is refused unless it is empty or already this
/// download, complete (then nothing is fetched: [`Progress::already`]).
pub fn download(req: &Request, progress: &mut dyn Progress, cancel: Arc<AtomicBool>) -> Result<PathBuf> {
    // everything the user gave, and the folder, before any network work
    check::repo_id(&req.repo)?;
    check::revision(&req.revision)?;
    let endpoint = req.endpoint.clone().or_else(|| std::env::var("HF_ENDPOINT").ok().filter(|e| !e.is_empty())).unwrap_or_else(|| "https://huggingface.co".into());
    let endpoint = check::endpoint(&endpoint)?;
    let timeout = req.timeout.unwrap_or(DEFAULT_TIMEOUT);
    if timeout.is_zero() || timeout > Duration::from_secs(86_400) {
        return Err(Error::invalid("--timeout: give between 1 and 86400 seconds"));
    }
    match target::check(req)? {
        Target::There(r) => {
            progress.already(&req.dir, &r.commit);
            return Ok(req.dir.clone());
        }
        Target::Fetch => {}
    }
    let hub = cache::hub_dir(req.cache.as_deref())?;
    let token = req.token.clone().or_else(|| std::env::var("HF_TOKEN").ok().filter(|t| !t.is_empty())).or_else(|| cache::token_file(&hub));
    let client = Client::new(endpoint, token, timeout, &req.repo, &req.revision)?;
    let cache = CacheRepo::new(&hub, &req.repo);
    // everything below is checked; a panic is still a bug, never exit 101
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fetch(req, &client, &cache, &hub, progress, &cancel)));
    run.unwrap_or_else(|p| {
        let what = p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned()).unwrap_or_default();
        Err(Error::invalid(format!("the download stopped on an internal error ({what}): what was fetched is kept; run it again to resume, and please report this")))
    })
}

fn fetch(req: &Request, client: &Client, cache: &CacheRepo, hub: &Path, progress: &mut dyn Progress, cancel: &AtomicBool) -> Result<PathBuf> {
    let info = client.info()?;
    let commit = info.commit.clone();
    let files = plan(req, client, cache, &info, cancel)?;
    let record = Record { repo: req.repo.clone(), revision: req.revision.clone(), commit: commit.clone(), files: files.clone() };
    let part = partial_dir(&req.dir);
    target::prepare(&part, &record)?;

    // what is still to fetch: a blob in the cache counts as there, a .part
    // file as what it holds
    let have = |e: &Entry| std::fs::metadata(cache.blob(&e.etag)).is_ok_and(|m| m.is_file() && m.len() == e.size);
    let held = |e: &Entry| std::fs::metadata(cache.part(&e.etag)).map(|m| m.len()).unwrap_or(0);
    let to_fetch: u64 = files.iter().filter(|e| !have(e)).map(|e| e.size - held(e).min(e.size)).sum();
    let free = free_space(hub);
    // the blobs, plus a copy into the folder if it is on another disk (links otherwise)
    if to_fetch > free {
        return Err(Error::invalid(format!(
            "the download needs {} more, but only {} is free at {}: free some space (or set HF_HOME to a larger disk) and run again",
            crate::limits::gib(to_fetch),
            crate::limits::gib(free),
            hub.display()
        )));
    }
    progress.start(&files, to_fetch);

    let mut fetched = 0u64;
    for e in &files {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        let blob = blob(client, cache, &commit, e, cancel, progress, &mut fetched)?;
        place(&blob, &part.join(&e.name))?;
    }
    cache.set_ref(&req.revision, &commit);
    target::finish(&part, &req.dir, &record)?;
    Ok(req.dir.clone())
}

/// The files to fetch: the required ones, the optional ones the repo has,
/// and the shards the weight index names (or the single `model.safetensors`),
/// each with the hub's size and ETag.
fn plan(req: &Request, client: &Client, cache: &CacheRepo, info: &http::Info, cancel: &AtomicBool) -> Result<Vec<Entry>> {
    let has = |n: &str| info.files.contains(n);
    let mut names: Vec<String> = Vec::new();
    for n in REQUIRED {
        if !has(n) {
            return Err(Error::invalid(format!("{} (revision {}) has no {n}: it is not a model in the Lumina-DiMOO layout", req.repo, req.revision)));
        }
        names.push(n.to_string());
    }
    names.extend(OPTIONAL.iter().filter(|n| has(n)).map(|n| n.to_string()));
    let mut known: HashMap<String, Entry> = HashMap::new();
    if has(INDEX) {
        let m = client.metadata(&info.commit, INDEX)?;
        let e = Entry { name: INDEX.into(), size: m.size, etag: m.etag };
        if e.size > MAX_INDEX {
            return Err(Error::invalid(format!("{INDEX}: the hub gives it as {}; a weight index is at most {}: refused", crate::limits::gib(e.size), crate::limits::gib(MAX_INDEX))));
        }
        let index = blob(client, cache, &info.commit, &e, cancel, &mut Silent, &mut 0)?;
        let text = crate::input::read_capped(&index, MAX_INDEX, "the weight index")?;
        let v: serde_json::Value = serde_json::from_slice(&text).map_err(|err| Error::invalid(format!("{INDEX} of {}: not JSON: {err}", req.repo)))?;
        let map = v["weight_map"].as_object().ok_or_else(|| Error::invalid(format!("{INDEX} of {}: no weight_map", req.repo)))?;
        let mut shards: Vec<String> = map.values().filter_map(|s| s.as_str().map(str::to_string)).collect();
        shards.sort();
        shards.dedup();
        if shards.len() > MAX_SHARDS {
            return Err(Error::invalid(format!("{INDEX} of {}: names {} shards, more than {MAX_SHARDS}: refused", req.repo, shards.len())));
        }
        for s in &shards {
            if let Err(why) = check::file_name(s) {
                return Err(Error::invalid(format!("{INDEX} of {}: names the shard {}, which {why}: refused (a file must stay inside the repo)", req.repo, check::shown(s))));
            }
            if !has(s) {
                return Err(Error::invalid(format!("{INDEX} of {}: names the shard {}, which the repo does not hold", req.repo, check::shown(s))));
            }
        }
        names.push(INDEX.into());
        known.insert(INDEX.into(), e);
        names.extend(shards);
    } else if has("model.safetensors") {
        names.push("model.safetensors".into());
    } else {
        return Err(Error::invalid(format!("{} has neither {INDEX} nor model.safetensors", req.repo)));
    }
    names
        .into_iter()
        .map(|n| match known.remove(&n) {
            Some(e) => Ok(e),
            None => client.metadata(&info.commit, &n).map(|m| Entry { name: n, size: m.size, etag: m.etag }),
        })
        .collect()
}

/// The blob of `e` in the cache, fetched (or its `.part` continued) and
/// verified when it is not there; `fetched` counts this run's bytes.
fn blob(client: &Client, cache: &CacheRepo, commit: &str, e: &Entry, cancel: &AtomicBool, progress: &mut dyn Progress, fetched: &mut u64) -> Result<PathBuf> {
    let blob = cache.blob(&e.etag);
    let there = || std::fs::metadata(&blob).is_ok_and(|m| m.is_file() && m.len() == e.size);
    if !there() {
        let _lock = cache.lock(&e.etag, &e.name)?;
        if !there() {
            let part = cache.part(&e.etag);
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&part).map_err(|err| Error::bundle(&part, format!("cannot open: {err}")))?;
            let mut start = f.metadata().map(|m| m.len()).unwrap_or(0);
            if start > e.size {
                // longer than the file: not a prefix of it
                f.set_len(0).map_err(|err| Error::bundle(&part, format!("cannot reset: {err}")))?;
                start = 0;
            }
            progress.file(&e.name, start, e.size, *fetched);
            if start < e.size {
                let mut last = start;
                let mut step = |done: u64| {
                    *fetched += done.saturating_sub(last);
                    last = done;
                    progress.file(&e.name, done, e.size, *fetched);
                    !cancel.load(Ordering::Relaxed)
                };
                match client.fetch(commit, &e.name, e.size, &mut f, start, &mut step) {
                    Ok(()) => {}
                    Err((Stop::Cancelled, _)) => return Err(Error::Cancelled),
                    Err((Stop::Failed(err), _)) => return Err(err),
                    Err((Stop::Overlong(err), _)) => {
                        drop(f);
                        let _ = std::fs::remove_file(&part);
                        return Err(err);
                    }
                }
            }
            drop(f);
            progress.verifying(&e.name);
            if let Err(err) = verify(&part, e) {
                // dropped, so the next run fetches it anew
                let _ = std::fs::remove_file(&part);
                return Err(err);
            }
            std::fs::rename(&part, &blob).map_err(|err| Error::bundle(&blob, format!("cannot move the verified download in place: {err}")))?;
        }
    }
    cache.link(commit, &e.name, &e.etag);
    Ok(blob)
}

/// Puts a cached file into the bundle folder: a hard link (no second copy),
/// else a copy through a temporary.
fn place(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::bundle(parent, format!("cannot create: {e}")))?;
    }
    if let Ok(m) = std::fs::symlink_metadata(to) {
        if m.is_file() && m.len() == std::fs::metadata(from).map(|s| s.len()).unwrap_or(u64::MAX) {
            return Ok(());
        }
        let _ = std::fs::remove_file(to);
    }
    if std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    let mut tmp = to.as_os_str().to_os_string();
    tmp.push(".copying");
    let tmp = PathBuf::from(tmp);
    std::fs::copy(from, &tmp).and_then(|_| std::fs::rename(&tmp, to)).map_err(|e| Error::bundle(to, format!("cannot copy from the hub cache: {e}")))?;
    Ok(())
}
