//! Sampling algorithms over a loaded model: pure (no files, no threads),
//! cancellable between steps, reporting every step through [`Control`].

pub mod image;
pub mod layout;
mod pick;
pub mod schedule;
pub mod text;

use std::sync::atomic::{AtomicBool, Ordering};

pub use image::{sample_image, sample_image_with, CacheSettings, ImageSettings, ImageStep, SamplerOptions};
pub use layout::{ImageLayout, Prompter, TextLayout};
pub use text::{sample_text, TextSettings, TextStep};

/// What a sampler asks of its caller between steps.
pub trait Control {
    /// Checked before every step; `true` ends the run with `Error::Cancelled`.
    fn cancelled(&self) -> bool {
        false
    }
    fn image_step(&mut self, _step: &ImageStep<'_>) {}
    fn text_step(&mut self, _step: &TextStep<'_>) {}
}

/// Runs to the end, reporting nothing.
pub struct Quiet;
impl Control for Quiet {}

/// A cancel flag plus step callbacks, for callers that want closures.
pub struct Callbacks<'a> {
    pub cancel: Option<&'a AtomicBool>,
    pub on_image: Option<Box<dyn FnMut(&ImageStep<'_>) + 'a>>,
    pub on_text: Option<Box<dyn FnMut(&TextStep<'_>) + 'a>>,
}

impl<'a> Callbacks<'a> {
    pub fn new() -> Self {
        Self { cancel: None, on_image: None, on_text: None }
    }
    pub fn cancel(mut self, flag: &'a AtomicBool) -> Self {
        self.cancel = Some(flag);
        self
    }
    pub fn on_image(mut self, f: impl FnMut(&ImageStep<'_>) + 'a) -> Self {
        self.on_image = Some(Box::new(f));
        self
    }
    pub fn on_text(mut self, f: impl FnMut(&TextStep<'_>) + 'a) -> Self {
        self.on_text = Some(Box::new(f));
        self
    }
}

impl Default for Callbacks<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl Control for Callbacks<'_> {
    fn cancelled(&self) -> bool {
        self.cancel.is_some_and(|c| c.load(Ordering::Relaxed))
    }
    fn image_step(&mut self, step: &ImageStep<'_>) {
        if let Some(f) = self.on_image.as_mut() {
            f(step)
        }
    }
    fn text_step(&mut self, step: &TextStep<'_>) {
        if let Some(f) = self.on_text.as_mut() {
            f(step)
        }
    }
}
