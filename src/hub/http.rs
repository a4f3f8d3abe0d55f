//! The hub's HTTP routes, fetched with ureq directly (issue 30): hf-hub 0.5
//! has no timeouts, follows relative redirects without a limit, panics on
//! a redirect without `Location`, and copies a body to the end however long
//! it is. Here every exchange has a deadline, redirects are followed by hand
//! (at most [`MAX_REDIRECTS`], each with a usable `Location`, the token only
//! to the endpoint's own host) and a body is never written past its size.

use std::io::{Read, Write};
use std::time::Duration;

use ureq::http::{Response, StatusCode};
use ureq::{Agent, Body};

use super::check;
use crate::error::{Error, Result};

pub const MAX_REDIRECTS: usize = 5;
/// The repo listing's largest body (the real hub's are kilobytes).
const MAX_LISTING: u64 = 16 << 20;

pub struct Client {
    endpoint: String,
    token: Option<String>,
    /// Small answers (the listing, metadata): the whole exchange within the timeout.
    meta: Agent,
    /// Bodies: no byte for the timeout fails the read.
    body: Agent,
    timeout: Duration,
    repo: String,
    revision: String,
}

/// The repo at a revision: its commit and its files.
pub struct Info {
    pub commit: String,
    pub files: std::collections::HashSet<String>,
}

/// One file as the resolve route describes it.
pub struct Meta {
    pub etag: String,
    pub size: u64,
}

/// Why a body fetch stopped early.
pub enum Stop {
    Cancelled,
    /// What arrived is kept for a resume.
    Failed(Error),
    /// More bytes than the file's size: the partial file is not to be trusted.
    Overlong(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Failed(e)
    }
}

fn agent(timeout: Duration, whole: bool) -> Agent {
    let t = Some(timeout);
    let b = Agent::config_builder()
        .http_status_as_error(false)
        // redirects are ours to follow (see the module doc)
        .max_redirects(0)
        .max_redirects_will_error(false)
        // byte ranges of the stored file, never a re-encoded body
        .accept_encoding("identity")
        .user_agent(format!("unmask/{}", env!("CARGO_PKG_VERSION")))
        .timeout_resolve(t)
        .timeout_connect(t)
        .timeout_send_request(t)
        .timeout_recv_response(t)
        .timeout_per_read(t);
    let b = if whole { b.timeout_global(t) } else { b };
    b.build().into()
}

fn header<'a>(r: &'a Response<Body>, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

fn is_redirect(s: StatusCode) -> bool {
    matches!(s.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// `scheme://host[:port]` of an absolute URL.
fn origin(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let end = rest.find('/').unwrap_or(rest.len());
    Some(&url[..url.len() - rest.len() + end])
}

impl Client {
    pub fn new(endpoint: String, token: Option<String>, timeout: Duration, repo: &str, revision: &str) -> Result<Self> {
        if let Some(t) = &token {
            if t.is_empty() || !t.bytes().all(|c| c.is_ascii_graphic()) {
                return Err(Error::invalid("the hub token has characters an HTTP header cannot carry (spaces, line breaks, non-ASCII): check HF_TOKEN, --token or the token file"));
            }
        }
        Ok(Self { endpoint, token, meta: agent(timeout, true), body: agent(timeout, false), timeout, repo: repo.into(), revision: revision.into() })
    }

    fn resolve_url(&self, commit: &str, name: &str) -> String {
        format!("{}/{}/resolve/{commit}/{}", self.endpoint, self.repo, check::encode(name, true))
    }

    /// One request, no redirect followed; the token goes only to the endpoint's origin.
    fn send(&self, agent: &Agent, url: &str, range: Option<&str>, what: &str) -> Result<Response<Body>> {
        let mut r = agent.get(url);
        if let Some(range) = range {
            r = r.header("Range", range);
        }
        if let (Some(t), Some(o)) = (&self.token, origin(url)) {
            if Some(o) == origin(&self.endpoint) {
                r = r.header("Authorization", format!("Bearer {t}"));
            }
        }
        r.call().map_err(|e| self.net_error(what, e))
    }

    /// Where a redirect points, absolute: its `Location`, resolved against `base`.
    fn location(&self, r: &Response<Body>, base: &str, what: &str) -> Result<String> {
        let at = &self.endpoint;
        let code = r.status().as_u16();
        let Some(loc) = header(r, "location").filter(|l| !l.is_empty()) else {
            return Err(Error::invalid(format!("{what}: the hub at {at} answered a redirect (HTTP {code}) without a Location: refused; try again later")));
        };
        let bad = || Error::invalid(format!("{what}: the hub at {at} redirected to {}, which is not a usable address: refused", check::shown(loc)));
        if loc.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let url = if loc.starts_with("http://") || loc.starts_with("https://") {
            loc.to_string()
        } else if let Some(rest) = loc.strip_prefix("//") {
            format!("{}://{rest}", base.split_once("://").map(|(s, _)| s).unwrap_or("https"))
        } else if loc.starts_with('/') {
            format!("{}{loc}", origin(base).ok_or_else(bad)?)
        } else if loc.contains("://") || loc.contains(':') && !loc.contains('/') {
            return Err(bad()); // another scheme (file:, ftp:, ...)
        } else {
            let path = base.split(['?', '#']).next().unwrap_or(base);
            format!("{}{loc}", &path[..path.rfind('/').map(|i| i + 1).unwrap_or(path.len())])
        };
        if !url.parse::<ureq::http::Uri>().is_ok_and(|u| u.host().is_some()) {
            return Err(bad());
        }
        if base.starts_with("https://") && url.starts_with("http://") {
            return Err(Error::invalid(format!("{what}: the hub at {at} redirected from https to plain http ({}): refused", check::shown(&url))));
        }
        Ok(url)
    }

    fn too_many(&self, what: &str) -> Error {
        Error::invalid(format!("{what}: the hub at {} redirected more than {MAX_REDIRECTS} times: refused; check --endpoint, or try again later", self.endpoint))
    }

    /// GET `url`, following redirects; the final answer, a success.
    fn get(&self, agent: &Agent, mut url: String, range: Option<&str>, what: &str) -> Result<Response<Body>> {
        for _ in 0..=MAX_REDIRECTS {
            let r = self.send(agent, &url, range, what)?;
            if is_redirect(r.status()) {
                url = self.location(&r, &url, what)?;
                continue;
            }
            self.status(&r, what)?;
            return Ok(r);
        }
        Err(self.too_many(what))
    }

    /// The repo's commit at the revision and its file names.
    pub fn info(&self) -> Result<Info> {
        #[derive(serde::Deserialize)]
        struct Sibling {
            rfilename: String,
        }
        #[derive(serde::Deserialize)]
        struct Raw {
            sha: Option<String>,
            siblings: Vec<Sibling>,
        }
        let what = "listing the repo";
        let url = format!("{}/api/models/{}/revision/{}", self.endpoint, self.repo, check::encode(&self.revision, false));
        let r = self.get(&self.meta, url, None, what)?;
        let bytes = r.into_body().into_with_config().limit(MAX_LISTING).read_to_vec().map_err(|e| self.net_error(what, e))?;
        let raw: Raw = serde_json::from_slice(&bytes)
            .map_err(|e| Error::invalid(format!("{what}: the hub at {} answered something that is not a repo listing ({e}): is --endpoint a Hugging Face hub?", self.endpoint)))?;
        let sha = raw.sha.unwrap_or_default();
        let commit = check::commit(&sha).ok_or_else(|| {
            Error::invalid(format!("{what}: the hub at {} gave {} as the commit of {} (revision {}), not 40 hex digits: refused", self.endpoint, check::shown(&sha), self.repo, self.revision))
        })?;
        Ok(Info { commit, files: raw.siblings.into_iter().map(|s| s.rfilename).collect() })
    }

    /// What the resolve route says of `name` at `commit` (a one-byte range
    /// request, as the hub's tools make): its ETag and size, both checked,
    /// and its commit, which must be `commit`.
    pub fn metadata(&self, commit: &str, name: &str) -> Result<Meta> {
        let at = &self.endpoint;
        let mut url = self.resolve_url(commit, name);
        let range = Some("bytes=0-0");
        // relative redirects (a renamed repo) are followed; the first one
        // elsewhere (the hub's file store) carries the file's headers
        let mut hops = 0;
        let (r, away) = loop {
            let r = self.send(&self.meta, &url, range, name)?;
            // 416: an empty file has no byte 0; Content-Range says `*/0`
            if !is_redirect(r.status()) && r.status().as_u16() != 416 {
                self.status(&r, name)?;
                break (r, None);
            }
            if !is_redirect(r.status()) {
                break (r, None);
            }
            let next = self.location(&r, &url, name)?;
            hops += 1;
            if hops > MAX_REDIRECTS {
                return Err(self.too_many(name));
            }
            if origin(&next) != origin(&url) {
                break (r, Some(next));
            }
            url = next;
        };
        let raw = header(&r, "x-linked-etag").or_else(|| header(&r, "etag")).unwrap_or("");
        let etag = check::etag(raw).ok_or_else(|| {
            Error::invalid(format!("{name}: the hub at {at} gave the ETag {}, not a sha256 or git hash: refused (it would name a file in the cache)", check::shown(raw)))
        })?;
        let raw = header(&r, "x-repo-commit").unwrap_or("");
        match check::commit(raw) {
            Some(c) if c == commit => {}
            Some(c) => {
                return Err(Error::invalid(format!(
                    "{name}: the hub at {at} answered for commit {c}, but {} (revision {}) is at {commit}: the repo changed while downloading; run again",
                    self.repo, self.revision
                )))
            }
            None => return Err(Error::invalid(format!("{name}: the hub at {at} gave {} as its commit, not 40 hex digits: refused", check::shown(raw)))),
        }
        let size = match (header(&r, "x-linked-size"), away) {
            (Some(s), _) => check::size(s),
            (None, Some(next)) => {
                drop(r);
                let r = self.get(&self.meta, next, range, name)?;
                total_size(&r)
            }
            (None, None) => total_size(&r),
        };
        let size = size.ok_or_else(|| Error::invalid(format!("{name}: the hub at {at} gave no usable size (Content-Range or X-Linked-Size): refused")))?;
        Ok(Meta { etag, size })
    }

    /// Appends `name`'s bytes to `file`, which holds `start` of its `size`
    /// bytes, until it holds them all; never writes past `size`. `step(done)`
    /// after each chunk; `false` stops it (cancelled). Returns how many bytes
    /// the file holds when it stops.
    pub fn fetch(&self, commit: &str, name: &str, size: u64, file: &mut std::fs::File, start: u64, step: &mut dyn FnMut(u64) -> bool) -> std::result::Result<(), (Stop, u64)> {
        let r = self.get(&self.body, self.resolve_url(commit, name), Some(&format!("bytes={start}-")), name).map_err(|e| (Stop::Failed(e), start))?;
        let at = &self.endpoint;
        let mut done = start;
        match r.status().as_u16() {
            206 => {
                let want = format!("bytes {start}-{}/{size}", size - 1);
                let got = header(&r, "content-range").unwrap_or("");
                if got != want {
                    let e = Error::invalid(format!("{name}: the hub at {at} answered the range {} to a request for {want}: refused; run again", check::shown(got)));
                    return Err((Stop::Failed(e), start));
                }
            }
            200 if start > 0 => {
                // the whole file again (the range was ignored): start over
                file.set_len(0).map_err(|e| (Stop::Failed(Error::invalid(format!("{name}: cannot restart the partial file: {e}"))), start))?;
                done = 0;
            }
            200 => {}
            c => return Err((Stop::Failed(Error::invalid(format!("{name}: the hub at {at} answered HTTP {c} to a download: refused; try again later"))), start)),
        }
        // a body announced longer than the rest of the file is refused unread
        if header(&r, "content-encoding").is_none_or(|e| e.eq_ignore_ascii_case("identity")) {
            if let Some(len) = header(&r, "content-length").map(|l| check::size(l).unwrap_or(u64::MAX)) {
                if len > size - done {
                    let e = Error::invalid(format!(
                        "{name}: the hub at {at} announced a body of {len} bytes, more than the {} left of the {size} it gave as the file's size: refused unread; run again",
                        size - done
                    ));
                    return Err((Stop::Failed(e), done));
                }
            }
        }
        let overlong = || {
            Stop::Overlong(Error::invalid(format!(
                "{name}: the hub at {at} sent more than the {size} bytes it gave as the file's size: refused, nothing past them was written and the partial file was dropped; run again to fetch it anew"
            )))
        };
        let mut body = r.into_body().into_reader();
        let mut buf = vec![0u8; 256 << 10];
        while done < size {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => return Err((Stop::Failed(self.body_error(name, e, done, size)), done)),
            };
            let keep = n.min((size - done) as usize);
            if let Err(e) = file.write_all(&buf[..keep]) {
                return Err((Stop::Failed(Error::invalid(format!("{name}: cannot write to the hub cache: {e}"))), done));
            }
            done += keep as u64;
            if keep < n {
                return Err((overlong(), done));
            }
            if !step(done) {
                return Err((Stop::Cancelled, done));
            }
        }
        if done < size {
            let e = Error::invalid(format!(
                "{name}: the transfer broke off after {} (hub at {at}): what arrived is kept, run the download again to resume",
                amount(done, size)
            ));
            return Err((Stop::Failed(e), done));
        }
        // a byte after the announced end fails the file (a stall here is no excess)
        if matches!(body.read(&mut buf[..1]), Ok(n) if n > 0) {
            return Err((overlong(), done));
        }
        Ok(())
    }

    /// A failed read of a body, worded with what is kept.
    fn body_error(&self, name: &str, e: std::io::Error, done: u64, size: u64) -> Error {
        let timed_out = e.kind() == std::io::ErrorKind::TimedOut;
        let e = ureq::Error::from(e);
        let timed_out = timed_out || matches!(e, ureq::Error::Timeout(_));
        let kept = format!("the {} so far are kept", amount(done, size));
        match e {
            _ if timed_out => Error::invalid(format!(
                "{name}: no data from the hub at {} for {} s: {kept}; run the download again to resume (--timeout sets the wait)",
                self.endpoint,
                self.timeout.as_secs_f64()
            )),
            e => Error::invalid(format!("{name}: the transfer broke off ({e}; hub at {}): {kept}, run the download again to resume", self.endpoint)),
        }
    }

    /// An HTTP status that is not a success, as one line naming the endpoint and what to do.
    fn status(&self, r: &Response<Body>, what: &str) -> Result<()> {
        let c = r.status().as_u16();
        if (200..300).contains(&c) {
            return Ok(());
        }
        let at = &self.endpoint;
        Err(Error::invalid(match c {
            401 | 403 => format!(
                "the hub at {at} refused access to {} ({what}, HTTP {c}): the token is missing or wrong; set HF_TOKEN or pass --token",
                self.repo
            ),
            404 => format!("{what}: not found on {at} (repo {}, revision {}): check --repo and --revision", self.repo, self.revision),
            c => format!("{what}: the hub at {at} answered HTTP {c}; try again later"),
        }))
    }

    /// A request that got no answer, as one line.
    fn net_error(&self, what: &str, e: ureq::Error) -> Error {
        let at = &self.endpoint;
        Error::invalid(match e {
            ureq::Error::Timeout(_) => format!(
                "{what}: the hub at {at} did not answer within {} s: what was fetched so far is kept; run the download again to resume (--timeout sets the wait)",
                self.timeout.as_secs_f64()
            ),
            ureq::Error::BodyExceedsLimit(n) => format!("{what}: the hub at {at} sent more than {} for it: refused", crate::limits::gib(n)),
            ureq::Error::Io(_) | ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
                format!("cannot reach the hub at {at} ({what}: {e}); check your network, --endpoint or HF_ENDPOINT. Run the download again to resume")
            }
            e => format!("{what}: {e} (hub at {at}); run the download again to resume"),
        })
    }
}

/// `done` of `size` bytes for a message: exact below 1 MiB.
fn amount(done: u64, size: u64) -> String {
    if size < 1 << 20 {
        format!("{done} of {size} bytes")
    } else {
        format!("{} of {}", crate::limits::gib(done), crate::limits::gib(size))
    }
}

/// A file's size from a range answer: `Content-Range: bytes A-B/SIZE` (or
/// `*/SIZE`); a plain 200 gives its `Content-Length`.
fn total_size(r: &Response<Body>) -> Option<u64> {
    match header(r, "content-range") {
        Some(cr) => check::size(cr.strip_prefix("bytes ")?.rsplit_once('/')?.1),
        None if r.status().as_u16() == 200 => header(r, "content-length").and_then(check::size),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::origin;

    #[test]
    fn origins() {
        assert_eq!(origin("http://127.0.0.1:5/a/b"), Some("http://127.0.0.1:5"));
        assert_eq!(origin("https://huggingface.co"), Some("https://huggingface.co"));
        assert_eq!(origin("/a"), None);
    }
}
