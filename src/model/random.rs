//! Random weights in the checkpoint layout, for benchmarks and tests that
//! need a model of a given size without files.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use super::config::LladaConfig;

/// Normal(0, 1/sqrt(fan_in)) matrices and unit norms for every tensor of `cfg`.
pub fn random_llada_weights(cfg: &LladaConfig, dtype: DType, device: &Device) -> candle_core::Result<VarBuilder<'static>> {
    let mut map = HashMap::new();
    for (name, shape) in cfg.expected_tensors() {
        let t = if shape.len() == 1 {
            Tensor::ones(shape[0], DType::F32, device)?
        } else {
            let std = 1.0 / (shape[1] as f64).sqrt();
            Tensor::randn(0f32, std as f32, (shape[0], shape[1]), device)?
        };
        map.insert(name, t.to_dtype(dtype)?);
    }
    Ok(VarBuilder::from_tensors(map, dtype, device))
}
