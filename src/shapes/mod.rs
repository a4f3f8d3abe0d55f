//! The shapes world of the embedded default model: scenes, their texts, a
//! renderer, a foreign renderer and a detector for evaluation.

pub mod detect;
pub mod eval;
pub mod foreign;
pub mod render;
pub mod world;
