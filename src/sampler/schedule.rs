//! Step arithmetic shared by the samplers, evaluated exactly as the reference
//! does (f32 where it uses f32), since off-by-one counts change every token.

/// Cells to leave masked after step `s` of `total` when `n` started masked
/// (spec section 5): `max(1, floor(n * cos(pi/2 * (s+1)/total)))` in f32, and 0
/// after the last step.
pub fn keep_masked(n: usize, s: usize, total: usize) -> usize {
    if s + 1 >= total {
        return 0;
    }
    let t = ((s + 1) as f64 / total as f64) as f32;
    let frac = ((0.5 * std::f64::consts::PI) as f32 * t).cos();
    ((n as f32 * frac).floor() as usize).max(1)
}

/// ML-Cache schedule (spec section 6): is step `s` a full (refresh) step?
pub fn is_full_step(s: usize, total: usize, warmup_ratio: f64, refresh_interval: usize) -> bool {
    let warm = (total as f64 * warmup_ratio) as usize;
    s <= warm || (s - warm) % refresh_interval.max(1) == 0
}

/// `torch.quantile` with linear interpolation, in f32 like the reference.
pub fn quantile(values: &[f32], q: f32) -> f32 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = q * (v.len() - 1) as f32;
    let lo = rank as usize;
    let hi = (lo + 1).min(v.len() - 1);
    let w = rank - lo as f32;
    let (a, b) = (v[lo], v[hi]);
    // torch.lerp's two-sided form
    if w < 0.5 {
        a + w * (b - a)
    } else {
        b - (b - a) * (1.0 - w)
    }
}

/// Tokens to unmask at each step of one block of the text sampler:
/// `floor(n/k)`, plus one for the first `n mod k` steps.
pub fn text_block_schedule(n: usize, k: usize) -> Vec<usize> {
    let (base, rem) = (n / k, n % k);
    (0..k).map(|i| base + usize::from(i < rem)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_counts_follow_the_cosine_and_end_at_zero() {
        // 60 cells in 7 steps: masked counts of the fixture's t2i case
        let kept: Vec<usize> = (0..7).map(|s| keep_masked(60, s, 7)).collect();
        assert_eq!(kept.iter().map(|k| 60 - k).collect::<Vec<_>>(), vec![2, 6, 14, 23, 34, 47, 60]);
        assert_eq!(keep_masked(1, 0, 64), 1);
    }

    #[test]
    fn cache_schedule_matches_spec_example() {
        // 10 steps, warmup 0.3 -> warm 3; refresh every 3 after it
        let full: Vec<bool> = (0..10).map(|s| is_full_step(s, 10, 0.3, 3)).collect();
        assert_eq!(full, vec![true, true, true, true, false, false, true, false, false, true]);
    }

    #[test]
    fn quantile_interpolates_linearly() {
        assert_eq!(quantile(&[4.0, 1.0, 3.0, 2.0], 0.5), 2.5);
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.0), 1.0);
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0, 5.0], 1.0), 5.0);
    }

    #[test]
    fn text_schedule_spreads_the_remainder_first() {
        assert_eq!(text_block_schedule(8, 4), vec![2, 2, 2, 2]);
        assert_eq!(text_block_schedule(7, 3), vec![3, 2, 2]);
    }
}
