//! Random weights in the checkpoint layout, for benchmarks and tests that
//! need a model of a given size without files.

use std::collections::HashMap;

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};

use super::config::LladaConfig;
use super::vq::VqConfig;

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

/// Random weights for a VQ-VAE of `cfg`, made on demand under every name
/// [`crate::model::VqModel::load`] asks for: the loaders' own initialisers
/// (Kaiming-normal convolutions, uniform biases, unit norms), and a
/// normal(0, 1) codebook (its default would be zeros). Plain tensors, not
/// `Var`s, so the model runs its inference path.
pub fn random_vq_weights(cfg: &VqConfig, dtype: DType, device: &Device) -> candle_core::Result<VarBuilder<'static>> {
    let _ = cfg; // every shape comes from the loader's requests
    Ok(VarBuilder::from_backend(Box::new(RandomVq), dtype, device.clone()))
}

struct RandomVq;

impl SimpleBackend for RandomVq {
    fn get(&self, s: Shape, name: &str, h: Init, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let t = if name == "quantize.embedding.weight" {
            Tensor::randn(0f32, 1.0, s, dev)?
        } else {
            h.var(s, DType::F32, dev)?.as_detached_tensor()
        };
        t.to_dtype(dtype)
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _dev: &Device) -> candle_core::Result<Tensor> {
        candle_core::bail!("random VQ weights: `{name}` has no shape")
    }

    fn contains_tensor(&self, _name: &str) -> bool {
        true
    }
}
