//! Tensors only: the transformer, its ML-Cache state and the VQ-VAE. No I/O
//! beyond what loading needs; nothing here knows about tasks or front ends.

pub mod attention;
pub mod cache;
pub mod config;
pub mod conv;
pub mod llada;
pub mod packing;
pub mod random;
pub mod vq;

pub use cache::BranchCache;
pub use config::LladaConfig;
pub use llada::Llada;
pub use vq::{CodeGrid, Rgb, VqConfig, VqModel};
