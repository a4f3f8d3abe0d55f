//! The VQ-VAE's three phases: joint (encoder and decoder, each supervised by
//! the rendered scene), decoder polish (edges weighted), robust encoder (on
//! drawings that vary as real ones do). Each checkpoints as it goes and
//! stops between steps when the transformer's half failed.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use candle_core::Device;
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarMap};
use unmask::model::VqModel;
use unmask::Result;

use crate::{cell_vq, err, lr_at, vq_train, Args, Ckpt};

/// The joint phase from step `start`, then the polish; the robust phase is
/// separate because a VQ-VAE taken from a bundle (`--vq-from`) runs it alone.
pub fn joint_and_polish(a: &Args, vq: &VqModel, vq_map: &VarMap, start: usize, ckpt: &Ckpt, stop: &AtomicBool, dev: &Device) -> Result<()> {
    joint(a, vq, vq_map, start, ckpt, stop, dev)?;
    polish_decoder(a, vq, vq_map, ckpt, stop, dev)
}

/// Trains the VQ-VAE from step `start` (encoder and decoder together, each
/// supervised by the rendered scene), then reports how often the encoder
/// gives the designed codes.
fn joint(a: &Args, vq: &VqModel, vq_map: &VarMap, start: usize, ckpt: &Ckpt, stop: &AtomicBool, dev: &Device) -> Result<()> {
    if start >= a.vq_steps {
        return Ok(());
    }
    let mut opt = AdamW::new(cell_vq::trainable(vq_map).map_err(err)?, ParamsAdamW { lr: a.vq_lr, weight_decay: 0.0, beta2: 0.95, ..Default::default() }).map_err(err)?;
    let t0 = Instant::now();
    for s in start..a.vq_steps {
        crate::check_stop(stop)?;
        opt.set_learning_rate(lr_at(s, a.vq_steps, a.vq_lr));
        let mut rng = vq_train::step_rng(a.seed, 1, s);
        let scenes = cell_vq::training_scenes(&mut rng, a.vq_batch);
        let (enc, dec) = cell_vq::step(vq, &mut opt, &scenes, dev).map_err(err)?;
        if s % 25 == 0 || s + 1 == a.vq_steps {
            eprintln!("vq step {s}/{}: encoder mse {enc:.5}, decoder rgb mse {dec:.5}, {:.1} s", a.vq_steps, t0.elapsed().as_secs_f64());
        }
        if s % 100 == 99 || s + 1 == a.vq_steps {
            ckpt.save("vq", vq_map, s + 1)?;
        }
    }
    let mut rng = vq_train::step_rng(a.seed, 6, 0);
    let (own, foreign) = cell_vq::encoder_errors(vq, &mut rng, 200)?;
    eprintln!("vq: encoder codes differ from the designed ones on {own}/200 held-out scenes, {foreign}/200 drawn by the foreign renderer");
    Ok(())
}

/// VQ phase 2, decoder polish: the decoder alone (encoder and codebook
/// frozen), edge pixels weighted (`cell_vq::edge_weights`).
fn polish_decoder(a: &Args, vq: &VqModel, vq_map: &VarMap, ckpt: &Ckpt, stop: &AtomicBool, dev: &Device) -> Result<()> {
    let done = if a.resume { ckpt.load_step("vq-polish") } else { 0 };
    if done >= a.vq_polish_steps {
        return Ok(());
    }
    let lr = a.vq_lr / 3.0;
    let mut opt = AdamW::new(cell_vq::decoder_vars(vq_map).map_err(err)?, ParamsAdamW { lr, weight_decay: 0.0, beta2: 0.95, ..Default::default() }).map_err(err)?;
    let t0 = Instant::now();
    for s in done..a.vq_polish_steps {
        crate::check_stop(stop)?;
        opt.set_learning_rate(lr_at(s, a.vq_polish_steps, lr));
        let mut rng = vq_train::step_rng(a.seed, 5, s);
        let scenes = cell_vq::training_scenes(&mut rng, a.vq_batch);
        let rec = cell_vq::decoder_step(vq, &mut opt, &scenes, dev).map_err(err)?;
        if s % 50 == 0 || s + 1 == a.vq_polish_steps {
            eprintln!("decoder polish step {s}/{}: rgb mse {rec:.5}, {:.1} s", a.vq_polish_steps, t0.elapsed().as_secs_f64());
        }
        if s % 100 == 99 || s + 1 == a.vq_polish_steps {
            ckpt.save("vq", vq_map, a.vq_steps)?;
            ckpt.save_step("vq-polish", s + 1)?;
        }
    }
    Ok(())
}

/// VQ phase 3: the encoder alone on varied drawings (`cell_vq::encoder_step`),
/// then how often it gives the designed codes, drawn by the world and by
/// the foreign renderer of `unmask eval`.
pub fn robust_encoder(a: &Args, vq: &VqModel, vq_map: &VarMap, ckpt: &Ckpt, stop: &AtomicBool, dev: &Device) -> Result<()> {
    let done = if a.resume && a.vq_from.is_none() { ckpt.load_step("vq-robust") } else { 0 };
    // twice the joint phase's: at 1/3 of it, 900 steps left 39/200 foreign
    // scenes misread; at 2x, 1500 steps left 1/200
    let lr = a.vq_lr * 2.0;
    let mut opt = AdamW::new(cell_vq::encoder_vars(vq_map).map_err(err)?, ParamsAdamW { lr, weight_decay: 0.0, beta2: 0.95, ..Default::default() }).map_err(err)?;
    let t0 = Instant::now();
    for s in done..a.vq_robust_steps {
        crate::check_stop(stop)?;
        opt.set_learning_rate(lr_at(s, a.vq_robust_steps, lr));
        let mut rng = vq_train::step_rng(a.seed, 7, s);
        let scenes = cell_vq::training_scenes(&mut rng, a.vq_batch);
        let enc = cell_vq::encoder_step(vq, &mut opt, &scenes, &mut rng, dev).map_err(err)?;
        if s % 25 == 0 || s + 1 == a.vq_robust_steps {
            eprintln!("robust encoder step {s}/{}: encoder mse {enc:.5}, {:.1} s", a.vq_robust_steps, t0.elapsed().as_secs_f64());
        }
        if s % 100 == 99 || s + 1 == a.vq_robust_steps {
            ckpt.save("vq", vq_map, a.vq_steps)?;
            ckpt.save_step("vq-robust", s + 1)?;
        }
    }
    let mut rng = vq_train::step_rng(a.seed, 6, 0);
    let (own, foreign) = cell_vq::encoder_errors(vq, &mut rng, 200)?;
    eprintln!("vq: after {:.0} s of robust steps, encoder codes differ on {own}/200 held-out scenes, {foreign}/200 drawn by the foreign renderer", t0.elapsed().as_secs_f64());
    Ok(())
}
