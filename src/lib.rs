//! Unmask engine: loads Lumina-DiMOO bundles and runs their transformer,
//! VQ-VAE and samplers with candle. Knows nothing of any user interface.
//!
//! Layers, each using only those above it: [`model`] (tensors) <- `sampler`
//! (algorithms) <- `worker` (jobs and threads) <- front ends (CLI, `ui/`,
//! [`remote`]: the server and its clients).

pub mod alloc;
pub mod threads;
pub mod bundle;
pub mod codes;
pub mod composite;
pub mod crop;
pub mod device_memory;
pub mod engine;
pub mod error;
pub mod hub;
pub mod image_io;
pub mod input;
pub mod limits;
pub mod mask;
pub mod model;
pub mod output;
pub mod plan;
pub mod profile;
pub mod quantize;
pub mod remote;
pub mod sampler;
pub mod shapes;
pub mod tasks;
pub mod worker;

pub use bundle::{Bundle, SpecialTokens};
pub use engine::{DeviceChoice, Engine, ModelInfo};
pub use error::{Error, Result};
