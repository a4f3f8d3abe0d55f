//! The hub cache in hf-hub's (and the Python hub library's) layout, so the
//! hub's own tools share it: `HUB/models--OWNER--NAME/` with `blobs/ETAG`
//! (`ETAG.part` while it downloads, `ETAG.lock` held meanwhile),
//! `snapshots/COMMIT/NAME` (relative links to the blobs) and
//! `refs/REVISION` (the commit). Every part of a path here was checked
//! first (`check.rs`): etags and commits are hex, names stay inside.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub struct CacheRepo {
    /// `HUB/models--OWNER--NAME`
    root: PathBuf,
}

/// The hub cache: `cache`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`.
pub fn hub_dir(cache: Option<&Path>) -> Result<PathBuf> {
    if let Some(c) = cache {
        return Ok(c.to_path_buf());
    }
    if let Some(h) = std::env::var_os("HF_HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(h).join("hub"));
    }
    // hf-hub panics here without a home folder; say what to set instead
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".cache/huggingface/hub"))
        .ok_or_else(|| Error::invalid("no home folder for the hub cache: set HF_HOME"))
}

/// The token file beside the cache (`HF_HOME/token`), trimmed; `None` when absent or empty.
pub fn token_file(hub: &Path) -> Option<String> {
    let path = hub.parent()?.join("token");
    let bytes = crate::input::read_capped(&path, 64 << 10, "hub token").ok()?;
    let t = String::from_utf8_lossy(&bytes).trim().to_string();
    (!t.is_empty()).then_some(t)
}

impl CacheRepo {
    /// `repo` was checked by `check::repo_id` (no `/` but the one separator).
    pub fn new(hub: &Path, repo: &str) -> Self {
        Self { root: hub.join(format!("models--{}", repo.replace('/', "--"))) }
    }

    pub fn blob(&self, etag: &str) -> PathBuf {
        self.root.join("blobs").join(etag)
    }

    /// Where a blob is assembled (hf-hub's name, so either resumes the other's).
    pub fn part(&self, etag: &str) -> PathBuf {
        self.root.join("blobs").join(format!("{etag}.part"))
    }

    /// Holds hf-hub's lock on a blob while it is fetched: two downloads
    /// appending to one `.part` would interleave their bytes.
    pub fn lock(&self, etag: &str, name: &str) -> Result<Lock> {
        let dir = self.root.join("blobs");
        std::fs::create_dir_all(&dir).map_err(|e| Error::bundle(&dir, format!("cannot create the hub cache folder: {e}")))?;
        let path = dir.join(format!("{etag}.lock"));
        let file = std::fs::File::create(&path).map_err(|e| Error::bundle(&path, format!("cannot create: {e}")))?;
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: a valid open file descriptor.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                return Err(Error::invalid(format!(
                    "{name}: another download is fetching it into the same cache ({}): let it finish, then run again",
                    self.root.display()
                )));
            }
        }
        let _ = name;
        Ok(Lock(file))
    }

    /// `snapshots/COMMIT/NAME` -> the blob, as a relative link; for the
    /// hub's tools only (the bundle is made from the blobs), so failing to
    /// make it is not an error.
    pub fn link(&self, commit: &str, name: &str, etag: &str) {
        let at = self.root.join("snapshots").join(commit).join(name);
        let depth = name.split('/').count() + 1; // NAME's folders and COMMIT
        let target = format!("{}blobs/{etag}", "../".repeat(depth));
        if std::fs::read_link(&at).is_ok_and(|t| t == Path::new(&target)) {
            return;
        }
        if let Some(parent) = at.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        // replaces a stale link or file of ours, never a folder
        if std::fs::symlink_metadata(&at).is_ok_and(|m| !m.is_dir()) {
            let _ = std::fs::remove_file(&at);
        }
        #[cfg(unix)]
        let _ = std::os::unix::fs::symlink(&target, &at);
    }

    /// `refs/REVISION` holds the commit a branch or tag was at (not written
    /// for a commit asked by its id, as the hub's tools do).
    pub fn set_ref(&self, revision: &str, commit: &str) {
        if revision.eq_ignore_ascii_case(commit) {
            return;
        }
        let at = self.root.join("refs").join(revision);
        if let Some(parent) = at.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        if !std::fs::symlink_metadata(&at).is_ok_and(|m| m.is_dir()) {
            let _ = std::fs::write(&at, commit);
        }
    }
}

/// Released (closed) when dropped.
pub struct Lock(#[allow(dead_code)] std::fs::File);
