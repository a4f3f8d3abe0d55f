//! Regions (issue 32): a document holds an ordered list of regions, each a
//! painted mask with its own prompt, name and colour. One retouch runs every
//! painted, shown region in list order; the regions survive cancel, undo and
//! a killed session; their labels sit beside them on the canvas; Describe
//! and Ask look at a region's crop. The embedded model (48 x 48, 3 x 3
//! cells of 16 px, one shape per cell) runs the jobs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod common;

use egui_kittest::kittest::Queryable;
use image::{GrayImage, RgbImage};
use unmask::shapes::detect::classify_pixel;
use unmask::shapes::world::Color;
use unmask_studio::mask_paint::rectangle;
use unmask_studio::{Mode, Studio, StudioOptions};

/// One layout cell of the 48 x 48 world: (x0, y0, x1, y1), ends exclusive.
type Cell = (u32, u32, u32, u32);
const TOP_LEFT: Cell = (0, 0, 16, 16);
const TOP_RIGHT: Cell = (32, 0, 48, 16);
const CENTER: Cell = (16, 16, 32, 32);
const BOTTOM: Cell = (16, 32, 32, 48);
const BOTTOM_RIGHT: Cell = (32, 32, 48, 48);

fn studio(open: Option<PathBuf>, session_dir: Option<PathBuf>) -> Studio {
    let mut s = Studio::new(StudioOptions { settings_path: None, model_dir: unmask::bundle::default_model_dir(), open, ctx: None, session_dir });
    assert!(s.wait_idle(Duration::from_secs(30)), "model loads");
    assert!(s.model_info().is_some(), "embedded model loaded: {:?}", s.notices);
    s.notices.retain(|n| n.is_error);
    s.settings.random_seed = false;
    s.settings.seed = 5;
    s
}

/// A 48 x 48 picture saved as PNG in `dir`.
fn saved(dir: &Path, img: &RgbImage) -> PathBuf {
    let p = dir.join("picture.png");
    img.save(&p).unwrap();
    p
}

fn white() -> RgbImage {
    RgbImage::from_pixel(48, 48, image::Rgb([255, 255, 255]))
}

/// Paints `c` into the selected region (one undo step).
fn paint(s: &mut Studio, c: Cell) {
    s.edit_mask(|m| rectangle(m, (c.0 as f32, c.1 as f32), (c.2 as f32, c.3 as f32), false));
}

fn wait(s: &mut Studio, what: &str) {
    assert!(s.wait_idle(Duration::from_secs(120)), "timed out waiting for {what}");
}

fn inside(c: Cell, x: u32, y: u32) -> bool {
    x >= c.0 && x < c.2 && y >= c.1 && y < c.3
}

/// Pixels of each palette colour in `c` (white and mixtures are not counted).
fn colours(img: &RgbImage, c: Cell) -> Vec<(Color, usize)> {
    let mut n: Vec<(Color, usize)> = Vec::new();
    for y in c.1..c.3 {
        for x in c.0..c.2 {
            if let Some(col) = classify_pixel(img.get_pixel(x, y).0) {
                match n.iter_mut().find(|e| e.0 == col) {
                    Some(e) => e.1 += 1,
                    None => n.push((col, 1)),
                }
            }
        }
    }
    n.sort_by_key(|e| std::cmp::Reverse(e.1));
    n
}

/// Pixels in `c` where one channel clearly dominates: (red-ish, blue-ish).
fn red_blue(img: &RgbImage, c: Cell) -> (usize, usize) {
    let (mut red, mut blue) = (0, 0);
    for y in c.1..c.3 {
        for x in c.0..c.2 {
            let [r, g, b] = img.get_pixel(x, y).0;
            if r > 150 && g < 100 && b < 100 {
                red += 1;
            }
            if b > 150 && r < 100 && g < 140 {
                blue += 1;
            }
        }
    }
    (red, blue)
}

/// Whether `col` is the dominant palette colour of `c`, with at least `min` pixels.
fn dominant(img: &RgbImage, c: Cell, col: Color, min: usize) -> bool {
    let n = colours(img, c);
    n.first().is_some_and(|e| e.0 == col && e.1 >= min)
}

/// A sketch of `prompt` with the embedded model (the first of `seeds` whose
/// picture passes `ok`), open as its own 48 x 48 document; the seed used.
fn sketch(s: &mut Studio, prompt: &str, seeds: std::ops::Range<u64>, ok: impl Fn(&RgbImage) -> bool) -> u64 {
    s.set_mode(Mode::Sketch);
    s.prompt = prompt.into();
    let mut tried = Vec::new();
    for seed in seeds {
        s.settings.seed = seed;
        s.start();
        wait(s, "the sketch");
        let img = s.doc.as_ref().expect("the sketch is open").image().clone();
        assert_eq!(img.dimensions(), (48, 48));
        if ok(&img) {
            s.set_mode(Mode::Retouch);
            return seed;
        }
        tried.push((seed, unmask::shapes::detect::detect(&img).into_iter().map(|f| format!("{:?} {:?} {:?} at {}", f.size, f.color, f.shape, f.pos.name())).collect::<Vec<_>>()));
    }
    panic!("no sketch of \"{prompt}\" showed it: {tried:?} ({:?})", s.notices);
}

/// Every region's (name, prompt as the user sees it, colour, hidden, mask).
fn regions_of(s: &Studio) -> Vec<(String, String, Option<[u8; 3]>, bool, GrayImage)> {
    let d = s.doc.as_ref().unwrap();
    d.regions().iter().enumerate().map(|(i, r)| (r.name.clone(), s.region_prompt(i), r.color, r.hidden, d.region_mask(i).clone())).collect()
}

const RED_CIRCLE_TL: &str = "a large red circle in the top left";
const BLUE_SQUARE_BR: &str = "a large blue square in the bottom right";

/// A white 48 x 48 document with region 1 on the top-left cell and region 2
/// on the bottom-right one, each with its prompt; region 2 is selected.
fn two_regions(dir: &Path, session: Option<PathBuf>) -> Studio {
    let mut s = studio(Some(saved(dir, &white())), session);
    paint(&mut s, TOP_LEFT);
    s.set_region_prompt(0, RED_CIRCLE_TL);
    s.new_region();
    paint(&mut s, BOTTOM_RIGHT);
    s.set_region_prompt(1, BLUE_SQUARE_BR);
    let d = s.doc.as_ref().unwrap();
    assert_eq!(d.regions().len(), 2);
    assert_eq!(d.selected_region(), 1);
    assert!(!d.region_is_empty(0) && !d.region_is_empty(1));
    s
}

#[test]
fn two_regions_one_run_each_toward_its_own_prompt() {
    let dir = common::scratch("regions-run");
    let mut s = two_regions(&dir, None);
    s.settings.variants = 1;
    s.settings.feather = 0.0;
    let before = s.doc.as_ref().unwrap().image().clone();
    s.start();
    let run = s.run.as_ref().expect("the run started");
    assert_eq!(run.jobs.len(), 1, "one job holds both regions");
    wait(&mut s, "the retouch");
    let d = s.doc.as_ref().unwrap();
    assert_eq!(d.versions.len(), 2, "one new version: {:?}", s.notices);
    let out = d.image();
    // each region toward its own prompt
    let (red1, blue1) = red_blue(out, TOP_LEFT);
    let (red2, blue2) = red_blue(out, BOTTOM_RIGHT);
    assert!(red1 >= 60 && red1 > 4 * blue1, "region 1 red: {red1} red, {blue1} blue px ({:?})", colours(out, TOP_LEFT));
    assert!(blue2 >= 60 && blue2 > 4 * red2, "region 2 blue: {blue2} blue, {red2} red px ({:?})", colours(out, BOTTOM_RIGHT));
    // nothing else changed, bit for bit
    let mut changed = Vec::new();
    for (x, y, p) in out.enumerate_pixels() {
        if !inside(TOP_LEFT, x, y) && !inside(BOTTOM_RIGHT, x, y) && p != before.get_pixel(x, y) {
            changed.push((x, y));
        }
    }
    assert!(changed.is_empty(), "{} pixels outside both regions changed, first {:?}", changed.len(), &changed[..changed.len().min(10)]);
    let params = d.version().parameters.clone().unwrap_or_default();
    assert!(
        params.contains(&format!("Region 1: {RED_CIRCLE_TL}\n")) && params.contains(&format!("Region 2: {BLUE_SQUARE_BR}\n")),
        "both prompts in the parameters: {params}"
    );
    // the regions stay for the next retouch
    assert_eq!(d.regions().len(), 2);
    assert_eq!(s.region_prompt(0), RED_CIRCLE_TL);
    assert_eq!(s.region_prompt(1), BLUE_SQUARE_BR);
}

#[test]
fn cancel_mid_run_keeps_the_document() {
    let dir = common::scratch("regions-cancel");
    let mut s = two_regions(&dir, None);
    s.settings.steps = 1000;
    let (image, versions) = {
        let d = s.doc.as_ref().unwrap();
        (d.image().clone(), d.versions.len())
    };
    let regions = regions_of(&s);
    s.start();
    assert!(s.is_running());
    let end = Instant::now() + Duration::from_secs(60);
    while s.run.as_ref().is_none_or(|r| r.progress_events == 0) {
        assert!(s.run.is_some(), "the run ended before any progress: {:?}", s.notices);
        assert!(Instant::now() < end, "no progress");
        s.poll();
        std::thread::sleep(Duration::from_millis(2));
    }
    s.cancel();
    wait(&mut s, "the cancel");
    let d = s.doc.as_ref().unwrap();
    assert_eq!(d.versions.len(), versions, "no version from a cancelled run: {:?}", s.notices);
    assert_eq!(d.image(), &image, "the image is as it was");
    assert!(s.variants.is_empty());
    assert_eq!(regions_of(&s), regions, "both regions' masks and prompts as they were");
    assert_eq!(d.selected_region(), 1);
    assert_eq!(s.prompt, BLUE_SQUARE_BR, "the prompt field still shows the selected region's prompt");
}

#[test]
fn undo_of_a_region_deletion_restores_mask_and_prompt() {
    let dir = common::scratch("regions-undo");
    let mut s = two_regions(&dir, None);
    let regions = regions_of(&s);
    // the selected one
    s.delete_region(1);
    {
        let d = s.doc.as_ref().unwrap();
        assert_eq!(d.regions().len(), 1);
        assert_eq!(d.selected_region(), 0);
        assert_eq!(d.mask, regions[0].4, "the one left is selected: its mask is where the tools paint");
        assert_eq!(d.region_at(40, 40), None, "the deleted region's pixels are no one's");
    }
    assert_eq!(s.prompt, RED_CIRCLE_TL, "the prompt field shows the region left");
    s.undo();
    assert_eq!(regions_of(&s), regions, "undo brings the region back with its mask and prompt");
    assert_eq!(s.doc.as_ref().unwrap().selected_region(), 1);
    assert_eq!(s.prompt, BLUE_SQUARE_BR);
    s.redo();
    assert_eq!(s.doc.as_ref().unwrap().regions().len(), 1);
    assert_eq!(s.prompt, RED_CIRCLE_TL);
    s.undo();
    assert_eq!(regions_of(&s), regions);
    // one that is not selected
    s.delete_region(0);
    {
        let d = s.doc.as_ref().unwrap();
        assert_eq!(d.regions().len(), 1);
        assert_eq!(d.regions()[0].prompt, BLUE_SQUARE_BR);
        assert_eq!(d.region_mask(0), &regions[1].4);
    }
    assert_eq!(s.prompt, BLUE_SQUARE_BR, "the selected region stays selected");
    s.undo();
    assert_eq!(regions_of(&s), regions);
    assert_eq!(s.doc.as_ref().unwrap().selected_region(), 1);
    assert_eq!(s.prompt, BLUE_SQUARE_BR);
    s.redo();
    assert_eq!(s.doc.as_ref().unwrap().regions().len(), 1);
    assert_eq!(s.region_prompt(0), BLUE_SQUARE_BR);
    // a prompt typed into the field but not yet written back is undone on its own, first
    s.undo();
    s.prompt = "a small green star in the bottom right".into();
    s.undo();
    assert_eq!(regions_of(&s), regions, "the typed prompt was one step");
    s.redo();
    assert_eq!(s.prompt, "a small green star in the bottom right", "redo brings the typed prompt back");
    assert_eq!(s.doc.as_ref().unwrap().regions()[1].prompt, s.prompt);
}

#[test]
fn restore_after_a_kill_gives_the_same_regions_prompts_and_order() {
    let dir = common::scratch("regions-session");
    let session = dir.join("session");
    let mut a = studio(Some(saved(&dir, &white())), Some(session.clone()));
    paint(&mut a, TOP_LEFT);
    a.rename_region(0, "sky");
    a.set_region_prompt(0, "a large blue circle in the top left");
    a.new_region();
    paint(&mut a, TOP_RIGHT);
    a.rename_region(1, "hat");
    a.set_region_prompt(1, "a large red star in the top right");
    a.new_region();
    paint(&mut a, BOTTOM);
    a.rename_region(2, "dog");
    a.set_region_prompt(2, "a large green square in the bottom");
    // dog runs first now, hat sits out
    a.move_region(2, 0);
    a.set_region_hidden(2, true);
    a.select_region(1);
    // typed into the field, never written back
    let typed = "a small yellow triangle in the top left";
    a.prompt = typed.into();
    let want = regions_of(&a);
    let names: Vec<&str> = want.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(names, ["dog", "sky", "hat"]);
    assert_eq!(want[1].1, typed);
    assert!(want[2].3, "hat is hidden");
    assert_eq!(a.doc.as_ref().unwrap().selected_region(), 1);
    assert!(a.flush_session(), "the session reached the disk");
    // a kill: no exit path runs
    std::mem::forget(a);

    let mut b = studio(None, Some(session.clone()));
    assert_eq!(b.restore_offer, Some(1), "the left session is offered");
    b.restore_session();
    let d = b.doc.as_ref().expect("a restored document");
    assert_eq!(d.selected_region(), 1, "the same region is selected");
    let got = regions_of(&b);
    assert_eq!(got.len(), 3);
    for (g, w) in got.iter().zip(&want) {
        assert_eq!((&g.0, &g.1, g.2, g.3), (&w.0, &w.1, w.2, w.3), "name, prompt, colour, hidden of {}", w.0);
        assert!(g.4 == w.4, "the mask of {}", w.0);
    }
    assert_eq!(d.regions()[1].prompt, typed, "the typed prompt is the region's own");
    assert_eq!(b.prompt, typed, "the prompt field shows the selected region's prompt");
    // and they run as they did: in their order, the hidden one sitting out
    b.settings.variants = 1;
    b.start();
    assert_eq!(b.run.as_ref().map(|r| r.jobs.len()), Some(1), "{:?}", b.notices);
    wait(&mut b, "the retouch");
    let d = b.doc.as_ref().unwrap();
    assert_eq!(d.versions.len(), 2, "{:?}", b.notices);
    let params = d.version().parameters.clone().unwrap_or_default();
    assert!(params.starts_with(&format!("Region 1: {}\nRegion 2: {typed}\nTask:", want[0].1)), "{params}");
    b.end_session();
}

/// The screen box of a region's painted pixels.
fn region_screen_box(s: &Studio, c: Cell) -> egui::Rect {
    egui::Rect::from_min_max(s.view_to_screen((c.0 as f32, c.1 as f32)), s.view_to_screen((c.2 as f32, c.3 as f32)))
}

#[test]
fn region_labels_snapshot() {
    let dir = common::scratch("regions-labels");
    // a scene of the world: a green triangle in the center
    let scene = unmask::shapes::world::Scene {
        objects: vec![unmask::shapes::world::Object {
            shape: unmask::shapes::world::Shape::Triangle,
            color: Color::Green,
            size: unmask::shapes::world::Size::Large,
            pos: unmask::shapes::world::Pos(4),
        }],
    };
    let img = unmask::shapes::render::render(&scene, 48);
    let mut s = studio(Some(saved(&dir, &img)), None);
    let regions = [(TOP_LEFT, RED_CIRCLE_TL), (BOTTOM_RIGHT, BLUE_SQUARE_BR), (TOP_RIGHT, "a small yellow star in the top right")];
    for (i, (c, p)) in regions.iter().enumerate() {
        if i > 0 {
            s.new_region();
        }
        paint(&mut s, *c);
        s.set_region_prompt(i, p);
    }
    let mut h = common::harness(s, 1100.0, 760.0);
    h.run_steps(3);
    h.snapshot("region_labels");
    let st = h.state();
    assert_eq!(st.doc.as_ref().unwrap().selected_region(), 2);
    for (i, (c, prompt)) in regions.iter().enumerate() {
        let name = format!("Region {}", i + 1);
        let region = region_screen_box(st, *c);
        let heads: Vec<egui::Rect> = h.query_all_by_label(&name).map(|n| n.rect()).collect();
        assert_eq!(heads.len(), 1, "one label head named {name}: {heads:?}");
        let head = heads[0];
        // the prompt: a text of its own in another region's label, the prompt field in the selected one's
        let texts: Vec<egui::Rect> = if i == 2 { h.query_all_by_value(prompt).map(|n| n.rect()).collect() } else { h.query_all_by_label(prompt).map(|n| n.rect()).collect() };
        // the side panel's field holds the selected prompt too: the label's is the one under its head
        let text = texts
            .iter()
            .copied()
            .filter(|r| r.top() >= head.bottom() - 1.0 && r.top() < head.bottom() + 40.0 && (r.left() - head.left()).abs() < 20.0)
            .collect::<Vec<_>>();
        assert_eq!(text.len(), 1, "{name}'s prompt \"{prompt}\" shown in its label on the canvas: head {head:?}, texts {texts:?}");
        let label = head.union(text[0]);
        assert!(!label.intersects(region), "{name}'s label {label:?} lies over its region {region:?}");
        // with room on the canvas, no label lies over another region either
        for (c, _) in &regions {
            let other = region_screen_box(st, *c);
            assert!(!label.intersects(other), "{name}'s label {label:?} lies over a region at {other:?}");
        }
        let gap = (region.left() - label.right()).max(label.left() - region.right()).max(region.top() - label.bottom()).max(label.top() - region.bottom());
        assert!(gap < 60.0, "{name}'s label {label:?} is beside its region {region:?} (gap {gap})");
    }
}

#[test]
fn describe_prefills_a_prompt_naming_shape_and_colour() {
    let mut s = studio(None, None);
    sketch(&mut s, "a large red circle in the center", 5..10, |img| dominant(img, CENTER, Color::Red, 60));
    assert_eq!(s.doc.as_ref().unwrap().regions().len(), 1);
    paint(&mut s, CENTER);
    assert!(s.region_crop(0).is_some(), "the region has a crop to describe");
    s.describe_region(0);
    assert!(s.is_running(), "Describe runs: {:?}", s.notices);
    wait(&mut s, "Describe");
    let p = s.region_prompt(0);
    assert!(p.contains("red") && p.contains("circle"), "the region's prompt names the shape and colour: {p:?} ({:?})", s.notices);
    assert_eq!(s.doc.as_ref().unwrap().regions()[0].prompt, p, "written into the region");
    assert_eq!(s.prompt, p, "the prompt field of the selected region shows it");
    // Ctrl+Z undoes it
    s.undo();
    assert_eq!(s.region_prompt(0), "");
}

/// The answer of the last Ask run.
fn ask(s: &mut Studio, q: &str) -> String {
    s.set_mode(Mode::Ask);
    s.question = q.into();
    s.start();
    assert!(s.is_running(), "Ask runs: {:?}", s.notices);
    wait(s, "the answer");
    s.chat.last().unwrap().answer.trim().to_string()
}

/// A world scene of one large object in the center cell, drawn by the
/// renderer the embedded model was trained on.
fn one_object(shape: unmask::shapes::world::Shape, color: Color) -> RgbImage {
    use unmask::shapes::world::{Object, Pos, Scene, Size};
    unmask::shapes::render::render(&Scene { objects: vec![Object { shape, color, size: Size::Large, pos: Pos(4) }] }, 48)
}

#[test]
fn ask_about_a_region_answers_about_its_crop() {
    let mut s = studio(None, None);
    sketch(&mut s, "a large red circle at the top left and a large blue square at the bottom right", 5..6, |img| {
        dominant(img, TOP_LEFT, Color::Red, 40) && dominant(img, BOTTOM_RIGHT, Color::Blue, 40) && unmask::shapes::detect::detect(img).len() == 2
    });
    // the whole sketch: two shapes
    s.ask_whole = true;
    assert_eq!(ask(&mut s, "how many shapes are there?"), "two");
    assert!(!s.chat.last().unwrap().question.starts_with('['), "about the whole image: {:?}", s.chat.last());
    // a region on the square: at 48 x 48 its context crop is the whole sketch
    s.ask_whole = false;
    s.set_mode(Mode::Retouch);
    paint(&mut s, BOTTOM_RIGHT);
    let (name, crop) = s.region_crop(0).expect("a crop");
    assert_eq!((name.as_str(), (crop.x, crop.y, crop.w, crop.h)), ("Region 1", (0, 0, 48, 48)));
    assert_eq!(ask(&mut s, "what color is the square?"), "blue");
    assert_eq!(s.chat.last().unwrap().question, "[Region 1] what color is the square?", "asked about the region");

    // two scenes side by side: a crop that holds one of them
    let dir = common::scratch("regions-ask");
    let mut pair = RgbImage::new(96, 48);
    image::imageops::replace(&mut pair, &one_object(unmask::shapes::world::Shape::Circle, Color::Red), 0, 0);
    image::imageops::replace(&mut pair, &one_object(unmask::shapes::world::Shape::Square, Color::Blue), 48, 0);
    let p = dir.join("pair.png");
    pair.save(&p).unwrap();
    assert!(s.open_path(&p), "{:?}", s.notices);
    s.set_mode(Mode::Retouch);
    // 16 px around the centre cell of each scene: exactly that scene
    s.settings.context = unmask::crop::Context::Margin(16);
    paint(&mut s, (64, 16, 80, 32));
    s.new_region();
    paint(&mut s, (16, 16, 32, 32));
    let boxes: Vec<_> = (0..2).map(|i| s.region_crop(i).map(|(_, r)| (r.x, r.y, r.w, r.h))).collect();
    assert_eq!(boxes, [Some((48, 0, 48, 48)), Some((0, 0, 48, 48))], "each region's crop is its scene");
    s.select_region(0);
    let square = (ask(&mut s, "what shape is in the image?"), ask(&mut s, "how many shapes are there?"), ask(&mut s, "what color is the square?"));
    s.set_mode(Mode::Retouch);
    s.select_region(1);
    let circle = (ask(&mut s, "what shape is in the image?"), ask(&mut s, "how many shapes are there?"), ask(&mut s, "what color is the circle?"));
    assert_eq!(s.chat.last().unwrap().question, "[Region 2] what color is the circle?");
    assert_eq!((square, circle), (("square".into(), "one".into(), "blue".into()), ("circle".into(), "one".into(), "red".into())), "each region's answers are about its own crop");
}

#[test]
fn n_adds_a_region_a_label_click_and_ctrl_click_select() {
    let dir = common::scratch("regions-keys");
    let mut s = studio(Some(saved(&dir, &white())), None);
    paint(&mut s, TOP_LEFT);
    s.set_region_prompt(0, RED_CIRCLE_TL);
    let mut h = common::harness(s, 1100.0, 760.0);
    // N on the canvas
    let centre = h.state().view_to_screen((24.0, 24.0));
    h.hover_at(centre);
    h.run_steps(1);
    h.key_press(egui::Key::N);
    h.run_steps(2);
    {
        let d = h.state().doc.as_ref().unwrap();
        assert_eq!(d.regions().len(), 2, "N added a region");
        assert_eq!(d.selected_region(), 1, "and selected it");
        assert_eq!(h.state().prompt, "", "the new region's prompt is empty");
    }
    h.state_mut().edit_mask(|m| rectangle(m, (32.0, 32.0), (48.0, 48.0), false));
    h.state_mut().set_region_prompt(1, BLUE_SQUARE_BR);
    h.run_steps(3);
    // clicking region 1's label selects it
    h.get_by_label("Region 1").click();
    h.run_steps(2);
    assert_eq!(h.state().doc.as_ref().unwrap().selected_region(), 0, "the label's click selected region 1");
    assert_eq!(h.state().prompt, RED_CIRCLE_TL);
    // Ctrl+click on region 2's paint selects it, and paints nothing
    let mask2 = h.state().doc.as_ref().unwrap().region_mask(1).clone();
    let mask1 = h.state().doc.as_ref().unwrap().region_mask(0).clone();
    let at = h.state().view_to_screen((40.0, 40.0));
    h.event(egui::Event::PointerMoved(at));
    h.step();
    h.event(egui::Event::PointerButton { pos: at, button: egui::PointerButton::Primary, pressed: true, modifiers: egui::Modifiers::COMMAND });
    h.step();
    h.event(egui::Event::PointerButton { pos: at, button: egui::PointerButton::Primary, pressed: false, modifiers: egui::Modifiers::COMMAND });
    h.run_steps(2);
    let d = h.state().doc.as_ref().unwrap();
    assert_eq!(d.selected_region(), 1, "Ctrl+click picked the region under the pointer");
    assert_eq!(h.state().prompt, BLUE_SQUARE_BR);
    assert_eq!(d.region_mask(0), &mask1, "nothing painted");
    assert_eq!(d.region_mask(1), &mask2, "nothing painted");
}

#[test]
fn a_small_regions_ask_crop_is_at_least_the_models_working_side() {
    // the embedded model answers a 16 px crop with nothing: the crop grows, centred, to 48 px
    let dir = common::scratch("regions-small-crop");
    let img = RgbImage::from_pixel(160, 120, image::Rgb([255, 255, 255]));
    let mut s = studio(Some(saved(&dir, &img)), None);
    s.settings.context = unmask::crop::Context::Margin(0);
    s.edit_mask(|m| rectangle(m, (70.0, 50.0), (86.0, 66.0), false));
    let (name, r) = s.region_crop(0).expect("a painted region has a crop");
    assert_eq!(name, "Region 1");
    assert_eq!((r.w, r.h), (48, 48), "{r:?}");
    assert!(r.x <= 70 && r.x1() >= 86 && r.y <= 50 && r.y1() >= 66, "the region inside its crop: {r:?}");
    // at an edge the box stays inside the image
    s.delete_region(0);
    s.edit_mask(|m| rectangle(m, (0.0, 110.0), (8.0, 120.0), false));
    let (_, r) = s.region_crop(0).unwrap();
    assert_eq!((r.x, r.w, r.y1(), r.h), (0, 48, 120, 48), "{r:?}");
}
