//! Unmask Studio: the desktop front end. It holds no tensors and talks to the
//! engine only through [`backend::Backend`]: `unmask::worker::Worker` in this
//! process, or `unmask::remote::RemoteWorker` on a server.

pub mod app;
pub mod backend;
mod canvas;
pub mod document;
pub mod mask_paint;
pub mod models;
mod panels;
pub mod session;
pub mod settings;

pub use app::{Mode, Studio, StudioOptions, Tool};
