//! The values a document's regions are made of (their edits are in
//! `regions`): a region's name, prompt, colour and mask, and the state an
//! undo step restores.

use std::sync::Arc;

use image::GrayImage;

/// Colours given to new regions, in order (the first region shows the
/// overlay colour setting, so one region looks as the single mask did).
pub const REGION_PALETTE: [[u8; 3]; 7] =
    [[60, 140, 255], [50, 205, 90], [255, 165, 0], [185, 85, 255], [0, 205, 205], [255, 85, 200], [230, 225, 40]];

/// One region of a document.
#[derive(Debug, Clone)]
pub struct Region {
    pub name: String,
    /// What the region becomes. For the selected region the Studio's prompt
    /// field is the live text; it is written back here before anything reads it.
    pub prompt: String,
    /// `None`: the overlay colour setting.
    pub color: Option<[u8; 3]>,
    /// Not drawn and not run.
    pub hidden: bool,
    /// `None` while the region is selected (its mask is `Document::mask`).
    pub(super) mask: Option<Arc<GrayImage>>,
}

impl Region {
    pub(super) fn first() -> Self {
        Self { name: "Region 1".into(), prompt: String::new(), color: None, hidden: false, mask: None }
    }

    /// A region read back from a session (its mask is given beside it).
    pub fn restored(name: &str, prompt: &str, color: Option<[u8; 3]>, hidden: bool) -> Self {
        Self { name: name.into(), prompt: prompt.into(), color, hidden, mask: None }
    }
}

/// What an undo step restores: every region and which one is selected.
#[derive(Debug, Clone)]
pub(super) struct RegionState {
    pub(super) mask: GrayImage,
    pub(super) regions: Vec<Region>,
    pub(super) selected: usize,
}

/// Regions at most, as the engine takes in one job.
pub const MAX_REGIONS: usize = unmask::tasks::MAX_REGIONS;
