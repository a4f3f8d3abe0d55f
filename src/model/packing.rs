//! The packed batch's layout: several sequences (guidance branches, or the
//! sequences of a batch) laid end to end in one tensor. A leaf module, so
//! the model, its cache and the samplers share it without importing each other.

/// Where each part of a packed batch starts: the prefix sums of `lens`.
pub fn starts(lens: &[usize]) -> Vec<usize> {
    lens.iter()
        .scan(0, |acc, &l| {
            let at = *acc;
            *acc += l;
            Some(at)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn parts_start_at_the_prefix_sums() {
        assert_eq!(super::starts(&[3, 0, 5, 2]), vec![0, 3, 3, 8]);
        assert!(super::starts(&[]).is_empty());
    }
}
