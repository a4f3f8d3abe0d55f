//! The document's unit tests: versions and undo, and the regions' edits.

use image::RgbImage;

use super::*;
use crate::mask_paint::rectangle;

#[test]
fn undo_restores_image_and_mask_and_redo_reapplies() {
    let mut d = Document::new(RgbImage::new(8, 8), None, "original");
    d.edit_mask(|m| crate::mask_paint::rectangle(m, (0.0, 0.0), (4.0, 4.0), false));
    let painted = d.mask.clone();
    d.add_version(Version::new(
        RgbImage::from_pixel(8, 8, image::Rgb([9, 9, 9])),
        "r",
    ));
    assert_eq!(d.current, 1);
    assert!(d.undo());
    assert_eq!(d.current, 0);
    assert_eq!(d.mask, painted);
    assert!(d.undo());
    assert!(d.mask_is_empty());
    assert!(d.redo());
    assert!(d.redo());
    assert_eq!(d.current, 1);
}

fn doc() -> Document {
    Document::new(RgbImage::new(16, 16), None, "t")
}

#[test]
fn painting_a_region_takes_its_pixels_from_the_others() {
    let mut d = doc();
    d.edit_mask(|m| rectangle(m, (0.0, 0.0), (10.0, 10.0), false));
    assert_eq!(d.add_region(), Some(1));
    d.edit_mask(|m| rectangle(m, (5.0, 5.0), (16.0, 16.0), false));
    assert_eq!(d.region_mask(0).get_pixel(2, 2)[0], 255);
    assert_eq!(d.region_mask(0).get_pixel(7, 7)[0], 0, "region 2 took it");
    assert_eq!(d.region_mask(1).get_pixel(7, 7)[0], 255);
    assert_eq!(d.region_at(7, 7), Some(1));
    assert_eq!(d.region_at(2, 2), Some(0));
    // undo gives the pixels back to region 1
    assert!(d.undo());
    assert_eq!(d.region_mask(0).get_pixel(7, 7)[0], 255);
    assert!(d.region_is_empty(1));
}

#[test]
fn deleting_a_region_is_undone_with_its_mask_and_prompt() {
    let mut d = doc();
    d.set_region_prompt(0, "sky");
    d.add_region();
    d.set_region_prompt(1, "hat");
    d.edit_mask(|m| rectangle(m, (1.0, 1.0), (4.0, 4.0), false));
    let painted = d.mask.clone();
    d.delete_region(1);
    assert_eq!(d.regions().len(), 1);
    assert_eq!(d.selected_region(), 0);
    assert!(d.undo());
    assert_eq!(d.regions().len(), 2);
    assert_eq!(d.regions()[1].prompt, "hat");
    assert_eq!(d.selected_region(), 1);
    assert_eq!(d.region_mask(1), &painted);
    assert!(d.redo());
    assert_eq!(d.regions().len(), 1);
    assert_eq!(d.regions()[0].prompt, "sky");
}

#[test]
fn moving_keeps_the_selection_on_the_same_region() {
    let mut d = doc();
    d.add_region();
    d.add_region();
    d.select_region(0);
    d.rename_region(0, "first");
    d.move_region(0, 2);
    assert_eq!(d.regions()[2].name, "first");
    assert_eq!(d.selected_region(), 2);
    d.move_region(1, 0);
    assert_eq!(d.selected_region(), 2);
    assert!(d.undo() && d.undo());
    assert_eq!(d.regions()[0].name, "first");
}

#[test]
fn extend_moves_the_regions_and_adds_the_border_as_its_own() {
    let mut d = doc();
    d.edit_mask(|m| rectangle(m, (0.0, 0.0), (4.0, 4.0), false));
    d.extend(8, 0, 0, 0).unwrap();
    assert_eq!(d.regions().len(), 2);
    assert_eq!(d.regions()[1].name, "Border");
    assert_eq!(d.selected_region(), 1);
    assert_eq!(d.region_mask(0).get_pixel(9, 1)[0], 255, "moved right by 8");
    assert_eq!(d.region_mask(0).get_pixel(1, 1)[0], 0);
    assert!(d.region_mask(1).get_pixel(1, 1)[0] > 127, "the border");
    assert!(d.undo());
    assert_eq!(d.regions().len(), 1);
    assert_eq!(d.size(), (16, 16));
}
