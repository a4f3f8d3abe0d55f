//! The shapes world of the embedded default model: scenes, their texts, a
//! renderer and a detector for evaluation.

pub mod detect;
pub mod eval;
pub mod render;
pub mod world;
