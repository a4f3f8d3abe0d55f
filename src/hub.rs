//! Downloading a model bundle from the Hugging Face hub (issue 18) with the
//! `hf-hub` crate: exactly the files a bundle needs, resumable (the crate
//! keeps a `.part` file per blob in its cache and continues it with a range
//! request), every file verified (size, and the hub's sha256 for LFS files or
//! git blob sha1 for small ones), free disk space checked first. The bundle
//! folder is assembled beside its target as `NAME.incomplete` and renamed
//! only when every file is complete and verified, so a half download is never
//! mistaken for a model: [`incomplete`] says what it lacks.
//!
//! Honours `HF_ENDPOINT`, `HF_HOME` (the cache, shared with the hub's own
//! tools) and `HF_TOKEN` (else the token file in `HF_HOME`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hf_hub::api::sync::{Api, ApiBuilder, ApiError, ApiRepo};
use hf_hub::{Repo, RepoType};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::error::{Error, Result};

pub const DEFAULT_REPO: &str = "Alpha-VLLM/Lumina-DiMOO";
/// Written into a folder while it is being assembled.
pub const MANIFEST: &str = "unmask-download.json";

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
}

/// Reports nothing.
pub struct Silent;
impl Progress for Silent {}

/// The files of a bundle in the released layout that the engine reads.
const REQUIRED: &[&str] = &["config.json", "tokenizer.json", "vqvae/config.json", "vqvae/diffusion_pytorch_model.safetensors"];
const OPTIONAL: &[&str] = &["unmask.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"];

fn api(req: &Request) -> Result<Api> {
    let mut b = match &req.cache {
        Some(c) => ApiBuilder::from_cache(hf_hub::Cache::new(c.clone())),
        None => ApiBuilder::from_env(),
    };
    if let Some(e) = &req.endpoint {
        b = b.with_endpoint(e.trim_end_matches('/').to_string());
    }
    let token = req.token.clone().or_else(|| std::env::var("HF_TOKEN").ok().filter(|t| !t.is_empty()));
    if token.is_some() {
        b = b.with_token(token);
    }
    b.with_progress(false).with_retries(0).build().map_err(|e| Error::invalid(format!("cannot set up the hub client: {e}")))
}

fn endpoint(req: &Request) -> String {
    req.endpoint.clone().or_else(|| std::env::var("HF_ENDPOINT").ok()).unwrap_or_else(|| "https://huggingface.co".into())
}

/// One line for a failed request, naming the endpoint and what to do.
fn hub_error(req: &Request, what: &str, e: ApiError) -> Error {
    let at = endpoint(req);
    let text = e.to_string();
    let msg = if let ApiError::RequestError(r) = &e {
        match r.as_ref() {
            ureq::Error::StatusCode(401) | ureq::Error::StatusCode(403) => format!(
                "the hub at {at} refused access to {} ({what}, HTTP {}): the token is missing or wrong; set HF_TOKEN or pass --token",
                req.repo,
                if text.contains("403") { 403 } else { 401 }
            ),
            ureq::Error::StatusCode(404) => format!("{what}: not found on {at} (repo {}, revision {}): check --repo and --revision", req.repo, req.revision),
            ureq::Error::StatusCode(c) => format!("{what}: the hub at {at} answered HTTP {c}; try again later"),
            ureq::Error::Io(_) | ureq::Error::ConnectionFailed | ureq::Error::HostNotFound | ureq::Error::Timeout(_) => {
                format!("cannot reach the hub at {at} ({what}: {text}); check your network, --endpoint or HF_ENDPOINT. Run the download again to resume")
            }
            _ => format!("{what}: {text} (hub at {at}); run the download again to resume"),
        }
    } else if let ApiError::IoError(io) = &e {
        format!("{what}: the transfer broke off ({io}; hub at {at}): what arrived is kept, run the download again to resume")
    } else {
        format!("{what}: {text} (hub at {at}); run the download again to resume")
    };
    Error::invalid(msg)
}

/// The files to fetch: the required ones, the optional ones the repo has,
/// and the shards the weight index names (or the single `model.safetensors`).
fn plan(req: &Request, api: &Api, repo: &ApiRepo) -> Result<Vec<Entry>> {
    let info = repo.info().map_err(|e| hub_error(req, "listing the repo", e))?;
    let has = |n: &str| info.siblings.iter().any(|s| s.rfilename == n);
    let mut names: Vec<String> = Vec::new();
    for n in REQUIRED {
        if !has(n) {
            return Err(Error::invalid(format!("{} (revision {}) has no {n}: it is not a model in the Lumina-DiMOO layout", req.repo, req.revision)));
        }
        names.push(n.to_string());
    }
    names.extend(OPTIONAL.iter().filter(|n| has(n)).map(|n| n.to_string()));
    if has("model.safetensors.index.json") {
        let index = repo.get("model.safetensors.index.json").map_err(|e| hub_error(req, "model.safetensors.index.json", e))?;
        let text = crate::input::read_capped(&index, 64 << 20, "the weight index")?;
        let v: serde_json::Value = serde_json::from_slice(&text).map_err(|e| Error::bundle(&index, format!("not JSON: {e}")))?;
        let map = v["weight_map"].as_object().ok_or_else(|| Error::bundle(&index, "no weight_map"))?;
        let mut shards: Vec<String> = map.values().filter_map(|s| s.as_str().map(str::to_string)).collect();
        shards.sort();
        shards.dedup();
        for s in &shards {
            if s.contains("..") || s.starts_with('/') || !has(s) {
                return Err(Error::bundle(&index, format!("names shard {s:?}, which the repo does not hold")));
            }
        }
        names.push("model.safetensors.index.json".into());
        names.extend(shards);
    } else if has("model.safetensors") {
        names.push("model.safetensors".into());
    } else {
        return Err(Error::invalid(format!("{} has neither model.safetensors.index.json nor model.safetensors", req.repo)));
    }
    names
        .into_iter()
        .map(|n| {
            let m = api.metadata(&repo.url(&n)).map_err(|e| hub_error(req, &n, e))?;
            Ok(Entry { size: m.size() as u64, etag: m.etag().to_string(), name: n })
        })
        .collect()
}

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
    let text = std::fs::read(&manifest).ok()?;
    let entries: Vec<Entry> = serde_json::from_slice(&text).ok()?;
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

fn partial_dir(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".incomplete");
    dir.with_file_name(name)
}

/// Checks a downloaded file against the hub's size and hash.
fn verify(path: &Path, e: &Entry) -> Result<()> {
    let len = std::fs::metadata(path).map_err(|err| Error::bundle(path, format!("cannot read: {err}")))?.len();
    if len != e.size {
        return Err(Error::invalid(format!("{}: {len} bytes on disk, the hub says {}: the download is damaged; run again to fetch it anew", e.name, e.size)));
    }
    let tag = e.etag.trim_matches('"').to_ascii_lowercase();
    let is_hex = |n: usize| tag.len() == n && tag.bytes().all(|c| c.is_ascii_hexdigit());
    let got = if is_hex(64) {
        hash_file::<sha2::Sha256>(path, b"")?
    } else if is_hex(40) {
        // a git blob's id: sha1 of "blob <len>\0" and the content
        hash_file::<sha1::Sha1>(path, format!("blob {len}\0").as_bytes())?
    } else {
        return Ok(()); // no hash given: the size is all we can check
    };
    if got != tag {
        return Err(Error::invalid(format!("{}: content does not match the hub's hash ({tag}, got {got}): the bytes were corrupted on the way; run again to fetch it anew", e.name)));
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

/// hf-hub's progress hook: forwards to ours and stops the download when cancelled.
struct Hook<'a> {
    outer: &'a mut dyn Progress,
    cancel: Arc<AtomicBool>,
    name: String,
    size: u64,
    /// Bytes of the file on disk.
    done: u64,
    /// What was on disk when this run began (a resumed .part file): the
    /// crate reports it as the first update.
    resumed: Option<u64>,
    /// This run's bytes over all files.
    fetched: &'a mut u64,
}

impl hf_hub::api::Progress for Hook<'_> {
    fn init(&mut self, size: usize, _filename: &str) {
        self.size = size as u64;
    }
    fn update(&mut self, n: usize) {
        self.done += n as u64;
        match self.resumed {
            None => self.resumed = Some(n as u64),
            Some(_) => *self.fetched += n as u64,
        }
        if self.cancel.load(Ordering::Relaxed) {
            // unwinds out of hf-hub's copy loop; the .part file stays for the next run
            std::panic::panic_any(Cancelled);
        }
        self.outer.file(&self.name, self.done, self.size, *self.fetched);
    }
    fn finish(&mut self) {}
}

struct Cancelled;

/// Downloads the bundle `req` names into `req.dir`; returns the folder.
/// `cancel` stops it between chunks (what was fetched stays for a resume).
pub fn download(req: &Request, progress: &mut dyn Progress, cancel: Arc<AtomicBool>) -> Result<PathBuf> {
    if req.dir.join("config.json").is_file() && !req.dir.join(MANIFEST).exists() {
        return Err(Error::invalid(format!("{} already holds a model: choose another --dir, or delete it first", req.dir.display())));
    }
    let api = api(req)?;
    let repo = api.repo(Repo::with_revision(req.repo.clone(), RepoType::Model, req.revision.clone()));
    let files = plan(req, &api, &repo)?;
    let cache = req.cache.clone().map(hf_hub::Cache::new).unwrap_or_else(hf_hub::Cache::from_env);
    let cached = cache.repo(Repo::with_revision(req.repo.clone(), RepoType::Model, req.revision.clone()));
    let part = partial_dir(&req.dir);
    std::fs::create_dir_all(&part).map_err(|e| Error::bundle(&part, format!("cannot create: {e}")))?;
    std::fs::write(part.join(MANIFEST), serde_json::to_vec_pretty(&files).unwrap_or_default()).map_err(|e| Error::bundle(&part, format!("cannot write: {e}")))?;

    // what is still to fetch (a file complete in the cache counts as there;
    // a .part file counts as what it holds)
    let have = |e: &Entry| cached.get(&e.name).and_then(|p| std::fs::metadata(p).ok()).is_some_and(|m| m.len() == e.size);
    let to_fetch: u64 = files.iter().filter(|e| !have(e)).map(|e| e.size).sum();
    let free = free_space(cache.path());
    // the blobs, plus a copy into the folder if it is on another disk (links otherwise)
    if to_fetch > free {
        return Err(Error::invalid(format!(
            "the download needs {} more, but only {} is free at {}: free some space (or set HF_HOME to a larger disk) and run again",
            crate::limits::gib(to_fetch),
            crate::limits::gib(free),
            cache.path().display()
        )));
    }
    progress.start(&files, to_fetch);

    let mut fetched = 0u64;
    for e in &files {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        let path = match cached.get(&e.name).filter(|_| have(e)) {
            Some(p) => p,
            None => {
                let hook = Hook { outer: progress, cancel: cancel.clone(), name: e.name.clone(), size: e.size, done: 0, resumed: None, fetched: &mut fetched };
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| repo.download_with_progress(&e.name, hook)));
                let p = match r {
                    Ok(r) => r.map_err(|err| hub_error(req, &e.name, err))?,
                    Err(p) if p.is::<Cancelled>() => return Err(Error::Cancelled),
                    Err(p) => std::panic::resume_unwind(p),
                };
                progress.verifying(&e.name);
                if let Err(err) = verify(&p, e) {
                    // drop the bad blob so the next run fetches it again
                    if let Ok(blob) = std::fs::canonicalize(&p) {
                        let _ = std::fs::remove_file(blob);
                    }
                    let _ = std::fs::remove_file(&p);
                    return Err(err);
                }
                p
            }
        };
        place(&path, &part.join(&e.name))?;
    }
    // complete: the folder becomes a bundle in one rename
    let _ = std::fs::remove_file(part.join(MANIFEST));
    if req.dir.exists() {
        std::fs::remove_dir_all(&req.dir).map_err(|e| Error::bundle(&req.dir, format!("cannot replace: {e}")))?;
    }
    std::fs::rename(&part, &req.dir).map_err(|e| Error::bundle(&req.dir, format!("cannot move the finished download in place: {e}")))?;
    Ok(req.dir.clone())
}

/// Puts a cached file into the bundle folder: a hard link (no second copy),
/// else a copy through a temporary.
fn place(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::bundle(parent, format!("cannot create: {e}")))?;
    }
    let src = std::fs::canonicalize(from).unwrap_or_else(|_| from.to_path_buf());
    if let Ok(m) = std::fs::metadata(to) {
        if m.len() == std::fs::metadata(&src).map(|s| s.len()).unwrap_or(u64::MAX) {
            return Ok(());
        }
        let _ = std::fs::remove_file(to);
    }
    if std::fs::hard_link(&src, to).is_ok() {
        return Ok(());
    }
    let tmp = to.with_extension("copying");
    std::fs::copy(&src, &tmp).and_then(|_| std::fs::rename(&tmp, to)).map_err(|e| Error::bundle(to, format!("cannot copy from the hub cache: {e}")))?;
    Ok(())
}
