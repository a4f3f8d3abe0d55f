//! Writing results all-or-nothing (issue 16): every output path is checked
//! before the run; at the end every output is written to a temporary file
//! beside its target, and only when all of them are complete are they renamed
//! over their targets. Nothing that is not a regular file (a device, FIFO or
//! symbolic link) is ever replaced, and a failed write leaves no temporary
//! file behind.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// What may be written where: `exts` are the accepted file extensions.
pub fn check_target(path: &Path, what: &str, exts: &[&str]) -> Result<()> {
    let shown = path.display().to_string();
    if shown.ends_with('/') || path.is_dir() {
        return Err(Error::image(path, format!("is a folder: give the {what} a file name, e.g. {}", Path::new(&shown).join(format!("out.{}", exts[0])).display())));
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(Error::image(path, "is a symbolic link: refusing to replace it; write to the file it points to, or remove the link"));
        }
        Ok(m) if !m.is_file() => {
            return Err(Error::image(path, "exists and is not a regular file (a device, FIFO or socket): refusing to replace it"));
        }
        _ => {}
    }
    let ext = path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase());
    if !ext.as_deref().is_some_and(|e| exts.contains(&e)) {
        return Err(Error::image(
            path,
            format!("the {what} is written as {}: name it .{}", exts[0].to_uppercase(), exts[0]),
        ));
    }
    let dir = parent(path);
    if !dir.is_dir() {
        return Err(Error::io(path, std::io::Error::new(std::io::ErrorKind::NotFound, "output folder does not exist")));
    }
    if let Ok(m) = std::fs::metadata(path) {
        if m.permissions().readonly() {
            return Err(Error::image(path, format!("is read-only: refusing to replace it; give the {what} another name, or make the file writable")));
        }
    }
    // the folder must take the temporary file the result is written through:
    // found out now, not after a run of minutes
    let probe = temp_for(path);
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(Error::image(
            path,
            format!("cannot be written: its folder {} refuses new files ({e}); choose a folder you can write to", dir.display()),
        )),
    }
}

fn parent(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

fn temp_for(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    parent(path).join(format!(".{name}.{}.tmp", std::process::id()))
}

/// Writes every `(path, bytes)` or none: all temporaries first (synced),
/// then the renames. On failure the temporaries are removed and the targets
/// are as they were.
pub fn write_all(outputs: &[(&Path, &[u8])]) -> Result<()> {
    let mut temps: Vec<PathBuf> = Vec::new();
    let cleanup = |temps: &[PathBuf]| {
        for t in temps {
            let _ = std::fs::remove_file(t);
        }
    };
    for (path, bytes) in outputs {
        // checked again: the run may have taken long
        if let Ok(m) = std::fs::symlink_metadata(path) {
            if !m.is_file() || m.file_type().is_symlink() {
                cleanup(&temps);
                return Err(Error::image(path, "is no longer a regular file: refusing to replace it"));
            }
        }
        let tmp = temp_for(path);
        temps.push(tmp.clone());
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .and_then(|mut f| f.write_all(bytes).and_then(|_| f.sync_all()));
        if let Err(e) = written {
            cleanup(&temps);
            return Err(Error::io(path, e));
        }
    }
    for (i, (path, _)) in outputs.iter().enumerate() {
        if let Err(e) = std::fs::rename(&temps[i], path) {
            cleanup(&temps[i..]);
            return Err(Error::io(path, e));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_with_the_right_extension_are_targets() {
        let dir = std::env::temp_dir().join(format!("unmask-output-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(check_target(&dir.join("a.png"), "image", &["png"]).is_ok());
        let e = check_target(&dir.join("a.jpg"), "image", &["png"]).unwrap_err().to_string();
        assert!(e.contains("name it .png"), "{e}");
        let e = check_target(Path::new("/dev/full"), "image", &["full"]).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let link = dir.join("link.png");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        let e = check_target(&link, "image", &["png"]).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        let e = check_target(Path::new(&format!("{}/", dir.display())), "image", &["png"]).unwrap_err().to_string();
        assert!(e.contains("is a folder"), "{e}");
        let e = check_target(&dir.join("missing/a.png"), "image", &["png"]).unwrap_err().to_string();
        assert!(e.contains("output folder does not exist"), "{e}");
        let ro = dir.join("kept.png");
        std::fs::write(&ro, b"user's file").unwrap();
        let mut p = std::fs::metadata(&ro).unwrap().permissions();
        p.set_readonly(true);
        std::fs::set_permissions(&ro, p).unwrap();
        let e = check_target(&ro, "image", &["png"]).unwrap_err().to_string();
        assert!(e.contains("read-only") && e.contains("kept.png"), "{e}");
        assert_eq!(std::fs::read(&ro).unwrap(), b"user's file");
        let mut p = std::fs::metadata(&ro).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        p.set_readonly(false);
        std::fs::set_permissions(&ro, p).unwrap();
        assert!(check_target(&ro, "image", &["png"]).is_ok());
        // a folder without write permission (root may write anyway: then only the probe ran)
        let locked = dir.join("locked");
        std::fs::create_dir_all(&locked).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
        let writable = std::fs::File::create(locked.join("x")).is_ok();
        let r = check_target(&locked.join("a.png"), "image", &["png"]);
        if writable {
            assert!(r.is_ok());
        } else {
            let e = r.unwrap_err().to_string();
            assert!(e.contains("cannot be written") && e.contains("locked"), "{e}");
        }
        assert_eq!(std::fs::read_dir(&locked).unwrap().filter(|e| e.as_ref().unwrap().file_name() != "x").count(), 0, "the probe is removed");
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
        // a folder no one may create files in, even root
        let e = check_target(Path::new("/proc/unmask-out.png"), "image", &["png"]).unwrap_err().to_string();
        assert!(e.contains("cannot be written") && e.contains("/proc"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
