//! Unmask Studio: the desktop front end. It holds no tensors and talks to the
//! engine only through [`backend::Backend`]: `unmask::worker::Worker` in this
//! process, or `unmask::remote::RemoteWorker` on a server.
//!
//! Modules depend one way only (ARCHITECTURE.md, "ui/"): `panels` and
//! `canvas` draw the `studio`; the `studio` holds `viewport`, documents,
//! settings, the session and the backend; none of these knows the ones above.

pub mod backend;
mod canvas;
pub mod document;
pub mod mask_paint;
pub mod models;
mod panels;
pub mod session;
pub mod settings;
pub mod studio;
mod viewport;

pub use studio::{Mode, PathKind, Studio, StudioOptions, Tool};
