//! One training step's convolutions of the embedded VQ-VAE (forward and
//! backward, batch 8 at 48 x 48, the bundle's channels 8-64): candle's
//! `conv2d` against `unmask::model::conv::Conv`'s unfold form, same weights,
//! same run, as a ratio.
//!
//! `cargo bench --bench vq_train`

mod common;

use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{Conv2dConfig, VarBuilder, VarMap};
use unmask::model::conv::Conv;

fn main() {
    let dev = Device::Cpu;
    // (c_in, c_out, side, stride): the VQ-VAE's 3 x 3 convolutions level by level
    let layers = [(3, 8, 48, 1), (8, 8, 48, 1), (8, 8, 49, 2), (8, 16, 24, 1), (16, 16, 24, 1), (16, 32, 12, 1), (32, 32, 6, 1), (32, 64, 3, 1), (64, 64, 3, 1)];
    let (mut candle_total, mut unfold_total) = (0.0, 0.0);
    for (cin, cout, side, stride) in layers {
        let padding = if stride == 1 { 1 } else { 0 };
        let map = VarMap::new();
        let vb = VarBuilder::from_varmap(&map, DType::F32, &dev);
        let ours = Conv::load(cin, cout, 3, stride, padding, vb.pp("a")).expect("conv");
        let theirs = candle_nn::conv2d(cin, cout, 3, Conv2dConfig { padding, stride, ..Default::default() }, vb.pp("b")).expect("conv");
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (8, cin, side, side), &dev).expect("input")).expect("var");
        let step = |m: &dyn Module| {
            let y = m.forward(x.as_tensor()).expect("forward");
            y.sqr().expect("sqr").sum_all().expect("sum").backward().expect("backward");
        };
        let c = common::median_ms(7, || step(&theirs));
        let u = common::median_ms(7, || step(&ours));
        println!("{cin:>2} -> {cout:>2} at {side} px, stride {stride}: candle {c:.2} ms, unfold {u:.2} ms (x{:.1})", c / u);
        candle_total += c;
        unfold_total += u;
    }
    println!("all layers: candle {candle_total:.1} ms, unfold {unfold_total:.1} ms, candle / unfold x{:.2}", candle_total / unfold_total);
}
