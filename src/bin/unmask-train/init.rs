//! Seeded initial weights. candle's CPU initialisers draw from the thread's
//! RNG, which cannot be seeded (`Device::Cpu.set_seed` is an error), and
//! that was the only thing that made two runs of the recipe differ: every
//! batch already came from a seeded RNG, and candle's CPU kernels (gemm,
//! im2col convolutions, reductions) give the same floats for the same
//! inputs on every run. So every random weight is drawn here instead, from
//! `--seed`, in the order of the variables' names.

use candle_core::{Device, Tensor, Var};
use candle_nn::VarMap;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal, Uniform};

/// A tensor of `shape` drawn from `dist`.
fn draw(rng: &mut StdRng, dist: &impl Distribution<f32>, shape: &[usize], dev: &Device) -> candle_core::Result<Tensor> {
    let n = shape.iter().product();
    let vals: Vec<f32> = (0..n).map(|_| dist.sample(rng)).collect();
    Tensor::from_vec(vals, shape, dev)
}

fn normal(std: f64) -> candle_core::Result<Normal<f32>> {
    Normal::new(0.0, std as f32).map_err(|e| candle_core::Error::Msg(e.to_string()))
}

/// N(0, std) values for a matrix, from `rng`.
pub fn normal_matrix(rng: &mut StdRng, rows: usize, cols: usize, std: f64, dev: &Device) -> candle_core::Result<Var> {
    Var::from_tensor(&draw(rng, &normal(std)?, &[rows, cols], dev)?)
}

/// The RNG of the initial weights of `stage` (1 transformer, 2 VQ-VAE).
pub fn rng(seed: u64, stage: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ 0x1417_0000 ^ (stage << 40))
}

/// Redraws every convolution of a freshly built VQ-VAE with candle's own
/// initialisation for it (`candle_nn::conv2d`: Kaiming-normal weights,
/// std sqrt(2 / fan_in); biases uniform in +-1/sqrt(in_channels)), seeded.
/// GroupNorm scales and shifts (constants) and the designed codebook are
/// left as they are.
pub fn reseed_convs(varmap: &VarMap, rng: &mut StdRng) -> candle_core::Result<()> {
    let data = crate::varmap_data(varmap)?;
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    for name in names {
        let t = data[name].as_tensor();
        let dims = t.dims().to_vec();
        if let [_, cin, kh, kw] = dims[..] {
            let v = draw(rng, &normal((2.0 / (cin * kh * kw) as f64).sqrt())?, &dims, t.device())?;
            data[name].set(&v)?;
        } else if let Some(prefix) = name.strip_suffix(".bias") {
            let Some(w) = data.get(&format!("{prefix}.weight")) else { continue };
            if let [_, cin, _, _] = w.as_tensor().dims()[..] {
                let bound = 1.0 / (cin as f32).sqrt();
                let u = Uniform::new(-bound, bound).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
                data[name].set(&draw(rng, &u, &dims, t.device())?)?;
            }
        }
    }
    Ok(())
}
