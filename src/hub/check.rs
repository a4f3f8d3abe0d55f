//! Every value that reaches a path, a URL or a size is checked here first
//! (issue 30): `--repo`, `--revision`, `--endpoint`, and what the hub sends
//! (commit ids, ETags, file names, sizes). hf-hub 0.5 joined the ETag, the
//! `X-Repo-Commit` header, the revision and file names into cache paths as
//! they came, so a hostile hub could write outside the cache.

use crate::error::{Error, Result};

/// A value for a message: quoted, escaped, at most 80 characters.
pub fn shown(v: &str) -> String {
    let cut: String = v.chars().take(80).collect();
    if cut.len() < v.len() {
        format!("{cut:?}...")
    } else {
        format!("{cut:?}")
    }
}

fn is_hex(s: &str) -> bool {
    s.bytes().all(|c| c.is_ascii_hexdigit())
}

/// A commit id as the hub gives it: 40 hex digits (lowercased).
pub fn commit(v: &str) -> Option<String> {
    (v.len() == 40 && is_hex(v)).then(|| v.to_ascii_lowercase())
}

/// An ETag as the hub gives it: a sha256 (64 hex digits, LFS files) or a git
/// blob sha1 (40), bare or in quotes; lowercased, quotes dropped. It names
/// the blob in the cache, so nothing else is accepted.
pub fn etag(v: &str) -> Option<String> {
    let t = v.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(v);
    ((t.len() == 64 || t.len() == 40) && is_hex(t)).then(|| t.to_ascii_lowercase())
}

/// A size header: decimal digits only, no sign, no spaces.
pub fn size(v: &str) -> Option<u64> {
    if v.is_empty() || v.len() > 20 || !v.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// A file's path inside the repo: `/`-separated names, none empty, `.` or
/// `..`; not absolute; no backslash (a separator elsewhere) and no control
/// characters. `Err` says why.
pub fn file_name(name: &str) -> std::result::Result<(), &'static str> {
    if name.is_empty() || name.len() > 1024 {
        return Err("is empty or longer than 1024 bytes");
    }
    if name.starts_with('/') {
        return Err("is an absolute path");
    }
    if name.contains('\\') {
        return Err("has a backslash");
    }
    if name.chars().any(char::is_control) {
        return Err("has a control character");
    }
    if name.split('/').any(|p| p.is_empty() || p == "." || p == "..") {
        return Err("has a `..`, `.` or empty part");
    }
    Ok(())
}

/// `--repo`: `owner/name` or `name`, the hub's own rules (letters, digits,
/// `-`, `_`, `.`; no `--` or `..`; not starting or ending with `-` or `.`).
pub fn repo_id(repo: &str) -> Result<()> {
    let parts: Vec<&str> = repo.split('/').collect();
    let ok = (1..=2).contains(&parts.len())
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 96
                && p.bytes().all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c))
                && !p.contains("--")
                && !p.contains("..")
                && !p.starts_with(['-', '.'])
                && !p.ends_with(['-', '.'])
        });
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "--repo {}: not a repo id; give OWNER/NAME with letters, digits, `-`, `_` and `.` (e.g. {})",
            shown(repo),
            super::DEFAULT_REPO
        )))
    }
}

/// `--revision`: a branch, tag or commit: letters, digits, `-`, `_`, `.`, and
/// `/` between names (`refs/pr/1`); no `.` or `..` part. It becomes a file
/// under `refs/` in the cache.
pub fn revision(rev: &str) -> Result<()> {
    let ok = !rev.is_empty()
        && rev.len() <= 200
        && rev.bytes().all(|c| c.is_ascii_alphanumeric() || b"-_./".contains(&c))
        && rev.split('/').all(|p| !p.is_empty() && p != "." && p != "..");
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "--revision {}: not a branch, tag or commit; use letters, digits, `-`, `_`, `.` and `/` between names (no `..`), e.g. main",
            shown(rev)
        )))
    }
}

/// `--endpoint` / `HF_ENDPOINT`: an http(s) address with a host; returned
/// without a trailing `/`.
pub fn endpoint(e: &str) -> Result<String> {
    let t = e.trim_end_matches('/');
    let ok = (t.starts_with("http://") || t.starts_with("https://"))
        && !t.chars().any(|c| c.is_whitespace() || c.is_control())
        && t.parse::<ureq::http::Uri>().ok().is_some_and(|u| u.host().is_some_and(|h| !h.is_empty()));
    if ok {
        Ok(t.to_string())
    } else {
        Err(Error::invalid(format!("--endpoint {}: not an http:// or https:// address (HF_ENDPOINT is read the same way)", shown(e))))
    }
}

/// Percent-encodes `s` for a URL path, keeping `/` when `keep_slash`.
pub fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_values_of_the_wrong_form_are_refused() {
        let h40 = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(commit(h40).as_deref(), Some(h40));
        assert_eq!(commit(&h40.to_uppercase()).as_deref(), Some(h40));
        for bad in ["../../../../ESCAPED", "", "main", &h40[..39], &format!("{h40}0"), &format!("\"{h40}\"")] {
            assert!(commit(bad).is_none(), "{bad}");
        }
        let h64 = "ab".repeat(32);
        assert_eq!(etag(&format!("\"{h64}\"")).as_deref(), Some(h64.as_str()));
        assert_eq!(etag(h40).as_deref(), Some(h40));
        for bad in ["\"../../../ESCAPED_BY_ETAG\"", "../x", "\"\"", "W/\"abc\"", &"a".repeat(32), &format!("\"{h64}"), "\"ab/cd\""] {
            assert!(etag(bad).is_none(), "{bad}");
        }
        assert_eq!(size("723"), Some(723));
        for bad in ["", "-1", "+5", " 5", "1e3", "99999999999999999999999"] {
            assert!(size(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn names_stay_inside_the_repo() {
        for ok in ["config.json", "vqvae/config.json", "model-00001-of-00002.safetensors", "a b.json"] {
            assert!(file_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "../x", "a/../../x", "/etc/passwd", "a\\..\\x", "a//b", "./a", "a/.", "a\n", "a/"] {
            assert!(file_name(bad).is_err(), "{bad}");
        }
        for ok in ["main", "v1.0", "refs/pr/1", "0123456789abcdef0123456789abcdef01234567"] {
            assert!(revision(ok).is_ok(), "{ok}");
        }
        for bad in ["", "../..", "a/../b", "/main", "main/", "a\\b", "a b", ".", "a//b"] {
            assert!(revision(bad).is_err(), "{bad}");
        }
        for ok in ["Alpha-VLLM/Lumina-DiMOO", "gpt2", "test-org/tiny-dimoo", "a_b/c.d"] {
            assert!(repo_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "../x", "a/b/c", "a/..", "-a/b", "a--b/c", "a/b.", "a b/c", "a/b\\c"] {
            assert!(repo_id(bad).is_err(), "{bad}");
        }
        assert_eq!(endpoint("http://127.0.0.1:8/").unwrap(), "http://127.0.0.1:8");
        for bad in ["127.0.0.1:8", "file:///etc", "http://", "https://a b"] {
            assert!(endpoint(bad).is_err(), "{bad}");
        }
        assert_eq!(encode("refs/pr/1", false), "refs%2Fpr%2F1");
        assert_eq!(encode("vqvae/a b#.json", true), "vqvae/a%20b%23.json");
    }
}
