//! The model over the network: `unmask serve` ([`server`]) and its clients
//! ([`client`]), speaking [`protocol`] (docs/server-protocol.md).
//!
//! A front end of the engine, beside the CLI and the Studio: it drives the
//! same [`crate::worker::Worker`] with the same [`crate::tasks::Job`]s. No
//! layer below (`model`, `sampler`, `tasks`, `worker`) knows it exists.

pub mod client;
pub mod protocol;
pub mod server;

pub use client::{Client, RemoteWorker};
pub use server::{ServeConfig, Server};
