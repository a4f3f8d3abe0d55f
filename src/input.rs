//! Reading untrusted files with a size cap. A user can point any flag at
//! `/dev/zero`, a FIFO or a 3 GB sparse file: each is refused before its
//! contents are read, naming the file and the limit, so no input can make us
//! allocate without bound.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// An image file (PNG, JPEG, ...): a 16384^2 PNG of noise is about 800 MB.
pub const IMAGE_FILE: u64 = 1 << 30;
/// CODES.json: a 1024 x 1024 grid of 5-digit codes is about 6 MB.
pub const CODES_FILE: u64 = 64 << 20;
/// config.json, the weight index, unmask.json, the VQ config.
pub const JSON_FILE: u64 = 16 << 20;
/// tokenizer.json (Lumina-DiMOO's is about 10 MB).
pub const TOKENIZER_FILE: u64 = 256 << 20;

fn mib(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{} MiB", b >> 20)
    } else {
        format!("{b} bytes")
    }
}

/// Checks that `path` is a regular file (through links) of at most `cap`
/// bytes; `what` names it in messages ("image", "CODES.json").
pub fn check_file(path: &Path, cap: u64, what: &str) -> Result<u64> {
    let meta = std::fs::metadata(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::image(path, format!("no such file (the {what})"))
        } else {
            Error::io(path, e)
        }
    })?;
    if meta.is_dir() {
        return Err(Error::image(path, format!("is a folder, not the {what} file")));
    }
    if !meta.is_file() {
        return Err(Error::image(path, format!("is not a regular file (a device, FIFO or socket): give the {what} as a file")));
    }
    if meta.len() > cap {
        return Err(Error::image(path, format!("is {}; the limit for the {what} is {}", mib(meta.len()), mib(cap))));
    }
    Ok(meta.len())
}

/// The whole file, refused when it is not a regular file or exceeds `cap`
/// (checked again while reading: a file that grows is cut off, not trusted).
pub fn read_capped(path: &Path, cap: u64, what: &str) -> Result<Vec<u8>> {
    let len = check_file(path, cap, what)?;
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut buf = Vec::with_capacity(len as usize);
    f.take(cap + 1).read_to_end(&mut buf).map_err(|e| Error::io(path, e))?;
    if buf.len() as u64 > cap {
        return Err(Error::image(path, format!("grew past the limit for the {what} ({}) while being read", mib(cap))));
    }
    Ok(buf)
}

/// [`read_capped`] as UTF-8 text.
pub fn read_text_capped(path: &Path, cap: u64, what: &str) -> Result<String> {
    let bytes = read_capped(path, cap, what)?;
    String::from_utf8(bytes).map_err(|e| Error::image(path, format!("the {what} is not UTF-8 text: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_fifos_folders_and_oversized_files_are_refused_before_reading() {
        let e = read_capped(Path::new("/dev/zero"), 1 << 20, "image").unwrap_err().to_string();
        assert!(e.contains("/dev/zero") && e.contains("not a regular file"), "{e}");
        let dir = std::env::temp_dir().join(format!("unmask-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = read_capped(&dir, 1 << 20, "image").unwrap_err().to_string();
        assert!(e.contains("is a folder"), "{e}");
        // a 3 GB sparse file costs nothing to make and is refused by its size
        let big = dir.join("sparse.png");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(3 << 30).unwrap();
        let e = read_capped(&big, IMAGE_FILE, "image").unwrap_err().to_string();
        assert!(e.contains("3072 MiB") && e.contains("limit for the image is 1024 MiB"), "{e}");
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo only reads the NUL-terminated path
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_capped(&fifo, 1 << 20, "CODES.json").unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
