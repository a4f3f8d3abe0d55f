//! Where a job's time goes (`--profile`): phase timers and counters of
//! forwards, tokens computed and bytes copied from the device to the host.
//! Recording is per thread and off unless [`start`] was called on it (a job
//! runs on one thread; candle's own worker threads never report), so the
//! layers below can count without knowing who listens.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Profile {
    /// Wall time per phase, milliseconds. `forwards` is inside `sampling`.
    pub phases_ms: BTreeMap<&'static str, f64>,
    /// Transformer passes (one per step: the guidance branches run as one batch).
    pub forwards: u64,
    /// Positions computed over all forwards (ML-Cache partial passes count their rows).
    pub tokens: u64,
    /// Sampler steps.
    pub steps: u64,
    /// Bytes the sampler copied from the model's device to the host.
    pub device_to_host_bytes: u64,
    pub device_to_host_bytes_per_step: f64,
}

thread_local! {
    static CURRENT: RefCell<Option<Profile>> = const { RefCell::new(None) };
}

fn with(f: impl FnOnce(&mut Profile)) {
    CURRENT.with(|c| {
        if let Some(p) = c.borrow_mut().as_mut() {
            f(p)
        }
    });
}

/// Starts recording on this thread (replacing a profile in progress).
pub fn start() {
    CURRENT.with(|c| *c.borrow_mut() = Some(Profile::default()));
}

/// Stops recording and returns what was recorded, if [`start`] was called.
pub fn finish() -> Option<Profile> {
    CURRENT.with(|c| c.borrow_mut().take()).map(|mut p| {
        p.device_to_host_bytes_per_step = if p.steps > 0 { p.device_to_host_bytes as f64 / p.steps as f64 } else { 0.0 };
        p
    })
}

pub fn forward(tokens: usize) {
    with(|p| {
        p.forwards += 1;
        p.tokens += tokens as u64;
    });
}

pub fn step() {
    with(|p| p.steps += 1);
}

pub fn device_to_host(bytes: usize) {
    with(|p| p.device_to_host_bytes += bytes as u64);
}

/// Times a phase until dropped: `let _t = profile::phase("decode");`.
pub struct Phase(&'static str, Instant);

pub fn phase(name: &'static str) -> Phase {
    Phase(name, Instant::now())
}

impl Drop for Phase {
    fn drop(&mut self) {
        let ms = self.1.elapsed().as_secs_f64() * 1e3;
        with(|p| *p.phases_ms.entry(self.0).or_insert(0.0) += ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_recorded_unless_started_and_phases_add_up() {
        forward(10);
        assert!(finish().is_none());
        start();
        forward(10);
        forward(5);
        step();
        device_to_host(64);
        {
            let _a = phase("decode");
        }
        {
            let _b = phase("decode");
        }
        let p = finish().unwrap();
        assert_eq!((p.forwards, p.tokens, p.steps, p.device_to_host_bytes), (2, 15, 1, 64));
        assert_eq!(p.device_to_host_bytes_per_step, 64.0);
        assert!(p.phases_ms.contains_key("decode"));
        assert!(finish().is_none(), "finish ends recording");
    }
}
