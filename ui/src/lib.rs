//! Unmask Studio: the desktop front end. It holds no tensors and talks to the
//! engine only through `unmask::worker::Worker`.

pub mod app;
mod canvas;
pub mod document;
pub mod mask_paint;
pub mod models;
mod panels;
pub mod session;
pub mod settings;

pub use app::{Mode, Studio, StudioOptions, Tool};
