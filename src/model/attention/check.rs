//! The fused kernel's self-check. The kernel is often written where no GPU
//! is at hand, so a mistake must not reach a user: when a CUDA model loads,
//! the kernel and [`super::reference`] (in f32) run the same small random
//! problems of every shape kind our passes use, and the model keeps the
//! fused kernel only if every one agrees within bf16 tolerance.

use candle_core::{DType, Device, Tensor};

use super::Spans;

/// The largest error allowed, relative to the largest reference value: bf16
/// keeps 8 bits of mantissa (0.4% per rounding) and the kernel rounds the
/// probabilities and the output once each; a wrong index or a missing
/// sequence boundary errs by the size of the values themselves.
pub const TOLERANCE: f32 = 2e-2;

/// How far one output is from the reference.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Agreement {
    /// `max |fused - reference| / max |reference|`; infinite when either
    /// holds a NaN or an infinity or their lengths differ.
    pub rel_err: f32,
}

impl Agreement {
    pub fn ok(&self) -> bool {
        self.rel_err <= TOLERANCE
    }
}

/// Compares two outputs value by value.
pub fn agreement(fused: &[f32], reference: &[f32]) -> Agreement {
    if fused.len() != reference.len() || fused.iter().chain(reference).any(|v| !v.is_finite()) {
        return Agreement { rel_err: f32::INFINITY };
    }
    let scale = reference.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    let err = fused.iter().zip(reference).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    Agreement { rel_err: err / scale }
}

/// One problem of the check: heads, kv heads and each sequence's (query
/// rows, keys).
pub struct Case {
    pub name: &'static str,
    pub heads: usize,
    pub kv_heads: usize,
    pub seqs: &'static [(usize, usize)],
}

/// Every shape kind the model's passes use: one sequence, sequences of
/// different lengths packed (guidance branches), partial passes (fewer
/// query rows than keys, one sequence with none) and grouped-query heads.
/// Lengths are off the kernel's tile sizes so edges are exercised.
pub const CASES: &[Case] = &[
    Case { name: "full", heads: 4, kv_heads: 4, seqs: &[(150, 150)] },
    Case { name: "packed", heads: 4, kv_heads: 4, seqs: &[(70, 70), (130, 130), (1, 1)] },
    Case { name: "partial", heads: 4, kv_heads: 4, seqs: &[(10, 200), (0, 50), (37, 90)] },
    Case { name: "gqa", heads: 8, kv_heads: 2, seqs: &[(100, 100), (60, 65)] },
];

/// An attention implementation under test, with [`super::reference`]'s
/// arguments.
pub type Attention<'a> = &'a dyn Fn(&Tensor, &Tensor, &Tensor, &Spans, usize, usize, usize, f64) -> candle_core::Result<Tensor>;

/// Runs `fused` (inputs in `dtype`) against the f32 reference on every case;
/// the first case that errs or disagrees, with why, or `Ok`.
pub fn run_cases(fused: Attention, device: &Device, dtype: DType, hd: usize) -> std::result::Result<(), String> {
    for (i, case) in CASES.iter().enumerate() {
        let spans = Spans::packed(&case.seqs.iter().map(|s| s.0).collect::<Vec<_>>(), &case.seqs.iter().map(|s| s.1).collect::<Vec<_>>());
        let (rows, keys): (usize, usize) = (case.seqs.iter().map(|s| s.0).sum(), case.seqs.iter().map(|s| s.1).sum());
        let inputs = (|| -> candle_core::Result<_> {
            // sharp scores (x3 on q) so the running maximum matters
            let q = (seeded(rows, case.heads * hd, 11 + i as u64, device)? * 3.0)?;
            let k = seeded(keys, case.kv_heads * hd, 23 + i as u64, device)?;
            let v = seeded(keys, case.kv_heads * hd, 37 + i as u64, device)?;
            Ok((q.to_dtype(dtype)?, k.to_dtype(dtype)?, v.to_dtype(dtype)?))
        })();
        let (q, k, v) = inputs.map_err(|e| format!("{}: inputs: {}", case.name, first_line(&e)))?;
        let scale = 1.0 / (hd as f64).sqrt();
        let got = fused(&q, &k, &v, &spans, case.heads, case.kv_heads, hd, scale)
            .and_then(|t| t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>())
            .map_err(|e| format!("{}: {}", case.name, first_line(&e)))?;
        let up = |t: &Tensor| t.to_dtype(DType::F32);
        let want = (|| super::reference(&up(&q)?, &up(&k)?, &up(&v)?, &spans, case.heads, case.kv_heads, hd, scale)?.flatten_all()?.to_vec1::<f32>())()
            .map_err(|e| format!("{}: reference: {}", case.name, first_line(&e)))?;
        let a = agreement(&got, &want);
        if !a.ok() {
            return Err(format!("{}: error {:.3e} of the largest value (tolerance {TOLERANCE:.0e})", case.name, a.rel_err));
        }
    }
    Ok(())
}

/// Which attention a CUDA model uses: the fused kernel if it passes
/// [`run_cases`] on `device` for head dim `hd`; otherwise the reference, with
/// one line on stderr saying why. `UNMASK_ATTENTION=reference` skips the
/// kernel altogether.
pub fn self_check(device: &Device, hd: usize) -> bool {
    if !device.is_cuda() {
        return false;
    }
    if std::env::var("UNMASK_ATTENTION").is_ok_and(|v| v == "reference") {
        return false;
    }
    let fused = |q: &Tensor, k: &Tensor, v: &Tensor, s: &Spans, h: usize, kv: usize, d: usize, scale: f64| super::flash::fused(q, k, v, s, h, kv, d, scale as f32);
    match run_cases(&fused, device, DType::BF16, hd) {
        Ok(()) => true,
        Err(why) => {
            eprintln!("unmask: fused attention failed its self-check ({why}); using the reference attention (slower, same results)");
            false
        }
    }
}

/// An error's first line (candle appends a backtrace when RUST_BACKTRACE is set).
fn first_line(e: &candle_core::Error) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// `[rows, cols]` of N(0, 1)-like values from a seed (an LCG on the host:
/// the check is the same on every run and device).
fn seeded(rows: usize, cols: usize, seed: u64, device: &Device) -> candle_core::Result<Tensor> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let v: Vec<f32> = (0..rows * cols)
        .map(|_| {
            // sum of four uniforms, centred and scaled: close enough to normal
            (0..4)
                .map(|_| {
                    s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    (s >> 40) as f32 / (1u64 << 24) as f32
                })
                .sum::<f32>()
                * 1.732
                - 3.464
        })
        .collect();
    Tensor::from_vec(v, (rows, cols), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::attention::Span;

    #[test]
    fn agreement_flags_nan_length_and_large_errors() {
        let r = [1.0, -2.0, 0.5];
        assert!(agreement(&r, &r).ok());
        assert!(agreement(&[1.01, -2.0, 0.5], &r).ok()); // 0.5% of the largest value
        assert!(!agreement(&[1.1, -2.0, 0.5], &r).ok()); // 5%
        assert!(!agreement(&[f32::NAN, -2.0, 0.5], &r).ok());
        assert!(!agreement(&[1.0, -2.0], &r).ok());
        assert_eq!(agreement(&[1.0, -2.0, f32::INFINITY], &r).rel_err, f32::INFINITY);
    }

    #[test]
    fn the_reference_passes_its_own_check_on_the_cpu() {
        let reference = |q: &Tensor, k: &Tensor, v: &Tensor, s: &Spans, h, kv, d, sc| super::super::reference(q, k, v, s, h, kv, d, sc);
        for hd in [16, 64, 128] {
            assert_eq!(run_cases(&reference, &Device::Cpu, DType::F32, hd), Ok(()));
        }
    }

    /// The mistakes a kernel is likely to make, each caught by some case.
    #[test]
    fn kernel_mistakes_are_caught() {
        let dev = Device::Cpu;
        // ignores sequence boundaries: every row attends to all keys
        let unbounded = |q: &Tensor, k: &Tensor, v: &Tensor, s: &Spans, h, kv, d, sc| {
            let all = Spans(vec![Span { q_start: 0, q_len: q.dim(0)?, k_start: 0, k_len: k.dim(0)? }]);
            let _ = s;
            super::super::reference(q, k, v, &all, h, kv, d, sc)
        };
        let e = run_cases(&unbounded, &dev, DType::F32, 32).unwrap_err();
        assert!(e.starts_with("packed"), "{e}");
        // reads kv head h % kv_heads instead of h / group
        let wrong_group = |q: &Tensor, k: &Tensor, v: &Tensor, s: &Spans, h: usize, kv: usize, d: usize, sc| {
            if h == kv {
                return super::super::reference(q, k, v, s, h, kv, d, sc);
            }
            let rep = h / kv;
            let perm = |x: &Tensor| -> candle_core::Result<Tensor> {
                let n = x.dim(0)?;
                // [n, kv, d] -> [n, h, d] with head j reading kv head j % kv
                x.reshape((n, 1, kv, d))?.broadcast_as((n, rep, kv, d))?.reshape((n, h * d))
            };
            super::super::reference(q, &perm(k)?, &perm(v)?, s, h, h, d, sc)
        };
        let e = run_cases(&wrong_group, &dev, DType::F32, 32).unwrap_err();
        assert!(e.starts_with("gqa"), "{e}");
        // drops the last key tile of each sequence (an off-by-one on the edge)
        let short = |q: &Tensor, k: &Tensor, v: &Tensor, s: &Spans, h, kv, d, sc| {
            let cut = Spans(s.iter().map(|x| Span { k_len: (x.k_len.saturating_sub(1)).max(1), ..*x }).collect());
            super::super::reference(q, k, v, &cut, h, kv, d, sc)
        };
        let e = run_cases(&short, &dev, DType::F32, 32).unwrap_err();
        assert!(e.starts_with("full"), "{e}");
        // NaN out of a bad read
        let nan = |q: &Tensor, _: &Tensor, _: &Tensor, _: &Spans, h: usize, _, d: usize, _| q.zeros_like()?.narrow(1, 0, h * d)? / 0.0;
        assert!(run_cases(&nan, &dev, DType::F32, 16).is_err());
    }

    #[test]
    fn spans_must_cover_the_rows() {
        let s = Spans::packed(&[3, 0, 2], &[3, 4, 5]);
        assert!(s.check(5, 12).is_ok());
        assert!(s.check(6, 12).is_err()); // a row no span writes
        assert!(s.check(5, 11).is_err()); // keys past the end
        assert!(Spans::packed(&[1], &[0]).check(1, 0).is_err()); // queries with no keys
    }
}
