//! One error type for the engine. Every variant's message names the file, tensor
//! or field at fault and, where it helps, what to do about it: front ends print
//! it as is.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model bundle file is missing, unreadable or does not match the config.
    #[error("{}: {msg}", path.display())]
    Bundle { path: PathBuf, msg: String },
    /// An input image or mask could not be used.
    #[error("{}: {msg}", path.display())]
    Image { path: PathBuf, msg: String },
    /// A setting or argument is out of range (names the field).
    #[error("{0}")]
    Invalid(String),
    /// The caller asked the run to stop.
    #[error("cancelled")]
    Cancelled,
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}", describe_tensor_error(.0))]
    Tensor(#[from] candle_core::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn bundle(path: impl AsRef<Path>, msg: impl Into<String>) -> Self {
        Error::Bundle { path: path.as_ref().to_path_buf(), msg: msg.into() }
    }
    pub fn image(path: impl AsRef<Path>, msg: impl Into<String>) -> Self {
        Error::Image { path: path.as_ref().to_path_buf(), msg: msg.into() }
    }
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io { path: path.as_ref().to_path_buf(), source }
    }
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }
}

/// Out-of-memory is the one tensor failure a user can act on, so say how.
fn describe_tensor_error(e: &candle_core::Error) -> String {
    let text = e.to_string();
    let lower = text.to_lowercase();
    if lower.contains("out of memory") || lower.contains("alloc") && lower.contains("fail") {
        format!("out of memory while running the model ({text}): use a smaller image, fewer variants, or the CPU")
    } else {
        format!("tensor error: {text}")
    }
}
