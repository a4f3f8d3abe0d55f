//! The step progress bar every task shows on stderr (the runner's and
//! `ask`'s), kept apart so `run.rs` and `runner.rs` both use it without
//! importing each other.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use unmask::sampler::{Control, ImageStep, TextStep};
use unmask::tasks::Progress;

/// A progress bar on stderr when it is a terminal. Ctrl-C ends the process;
/// outputs are written atomically, so nothing is left half-written.
pub struct Bar {
    pub bar: ProgressBar,
}

impl Bar {
    pub fn new(total: usize, what: &str) -> Self {
        let bar = if std::io::stderr().is_terminal() { ProgressBar::new(total as u64) } else { ProgressBar::hidden() };
        bar.set_style(
            ProgressStyle::with_template("{msg:10} [{bar:30}] {pos}/{len} steps, {elapsed} (eta {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(what.to_string());
        Self { bar }
    }
}

impl Control for Bar {
    fn image_step(&mut self, s: &ImageStep<'_>) {
        self.bar.set_position(s.step as u64 + 1);
    }
    fn text_step(&mut self, s: &TextStep<'_>) {
        self.bar.set_position(s.step as u64 + 1);
    }
}

impl Progress for Bar {}
