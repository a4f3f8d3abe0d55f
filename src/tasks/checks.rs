//! Checks of a job's parameters that need no model run, shared by the front
//! ends that build jobs from what a user typed: the CLI names its flags
//! (`--width`), the server its JSON fields (`` `width` ``). Each check takes
//! that label, so its message points at what the user wrote.

use crate::error::{Error, Result};
use crate::image_io;

/// Largest feather, in pixels (beyond any image side the tool accepts).
pub const MAX_FEATHER: f32 = 4096.0;

/// An image side: a positive multiple of the VQ factor `f`, within the
/// largest side; `note` follows the value in the message (" (the default)").
pub fn side(label: &str, v: usize, note: &str, f: usize) -> Result<()> {
    let max = image_io::MAX_SIDE as usize;
    if v == 0 || v % f != 0 || v > max {
        return Err(Error::invalid(format!("{label} {v}{note}: use a multiple of {f} from {f} to {}", max / f * f)));
    }
    Ok(())
}

/// A feather width in pixels: finite, 0 to [`MAX_FEATHER`].
pub fn feather(label: &str, px: f32) -> Result<()> {
    if !px.is_finite() || !(0.0..=MAX_FEATHER).contains(&px) {
        return Err(Error::invalid(format!("{label} {px}: use a number of pixels from 0 to {MAX_FEATHER}")));
    }
    Ok(())
}

/// An answer's length and its blocks: 1 to the longest answer, in whole
/// blocks. Labels: (answer length, block length).
pub fn answer(labels: (&str, &str), gen_length: usize, block_length: usize) -> Result<()> {
    let max = super::budget::MAX_ANSWER;
    if gen_length == 0 || gen_length > max {
        return Err(Error::invalid(format!("{} {gen_length}: use 1 to {max}", labels.0)));
    }
    if block_length == 0 || gen_length % block_length != 0 {
        return Err(Error::invalid(format!("{} {block_length}: use a divisor of {} {gen_length}, at least 1", labels.1, labels.0)));
    }
    Ok(())
}

/// An answer's steps: a whole number per block, at most 16 per position.
pub fn answer_steps(label: &str, steps: usize, gen_length: usize, block_length: usize) -> Result<()> {
    let blocks = gen_length / block_length.max(1);
    if steps == 0 || steps % blocks.max(1) != 0 || steps > 16 * gen_length {
        return Err(Error::invalid(format!("{label} {steps}: use a multiple of the {blocks} block(s), at most {}", 16 * gen_length)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_check_names_its_label_and_passes_good_values() {
        assert!(side("--width", 48, "", 16).is_ok());
        let e = side("--width", 50, " (the default)", 16).unwrap_err().to_string();
        assert!(e.contains("--width 50 (the default): use a multiple of 16"), "{e}");
        assert!(side("`height`", 0, "", 16).unwrap_err().to_string().contains("`height` 0"));
        assert!(feather("--feather", 8.0).is_ok());
        for bad in [f32::NAN, -1.0, 5000.0] {
            assert!(feather("`feather`", bad).unwrap_err().to_string().contains("`feather`"));
        }
        assert!(answer(("--gen-length", "--block-length"), 64, 32).is_ok());
        let e = answer(("--gen-length", "--block-length"), 64, 7).unwrap_err().to_string();
        assert!(e.contains("--block-length 7: use a divisor of --gen-length 64"), "{e}");
        assert!(answer(("`gen_length`", "`b`"), 0, 1).unwrap_err().to_string().contains("`gen_length` 0"));
        assert!(answer_steps("--steps", 64, 64, 32).is_ok());
        assert!(answer_steps("--steps", 3, 64, 32).unwrap_err().to_string().contains("--steps 3: use a multiple of the 2 block(s)"));
        assert!(answer_steps("--steps", 0, 8, 8).is_err());
    }
}
