//! Several regions in one inpaint job (issue 32): each region's mask
//! regenerates from its own prompt, in order, in one run; pixels outside
//! every region stay bit-identical. On the embedded model's own world (a
//! 48 x 48 sketch, 16 px cells) where it draws what it is told.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use image::{GrayImage, Luma, RgbImage};
use unmask::shapes::detect::classify_pixel;
use unmask::shapes::render::render;
use unmask::shapes::world::{Color, Object, Pos, Scene, Shape, Size};
use unmask::tasks::{self, Job, Output, Region};
use unmask::{DeviceChoice, Engine};

fn embedded() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/unmask-shapes")
}

fn settings(e: &Engine) -> unmask::sampler::ImageSettings {
    let d = &e.bundle.defaults;
    unmask::sampler::ImageSettings { steps: d.steps.unwrap(), cfg: d.cfg.unwrap(), temperature: d.temperature.unwrap(), ..Default::default() }
}

/// A sketch with a green triangle in the center: the part no region touches.
fn base() -> RgbImage {
    render(&Scene { objects: vec![Object { shape: Shape::Triangle, color: Color::Green, size: Size::Large, pos: Pos(4) }] }, 48)
}

/// One 16 px layout cell of the 3 x 3 grid, painted white.
fn cell_mask(pos: u32) -> GrayImage {
    let (cx, cy) = ((pos % 3) * 16, (pos / 3) * 16);
    GrayImage::from_fn(48, 48, |x, y| Luma([if x >= cx && x < cx + 16 && y >= cy && y < cy + 16 { 255 } else { 0 }]))
}

const RED: &str = "a large red circle at the top left";
const BLUE: &str = "a large blue square at the bottom right";

/// The palette colour most pixels under `mask` have (white and mixtures aside).
fn dominant(img: &RgbImage, mask: &GrayImage) -> Option<Color> {
    let mut counts: Vec<(Color, usize)> = Vec::new();
    for (x, y, p) in img.enumerate_pixels() {
        if mask.get_pixel(x, y)[0] > 127 {
            if let Some(c) = classify_pixel(p.0) {
                match counts.iter_mut().find(|e| e.0 == c) {
                    Some(e) => e.1 += 1,
                    None => counts.push((c, 1)),
                }
            }
        }
    }
    counts.into_iter().max_by_key(|e| e.1).map(|e| e.0)
}

fn outside_all_unchanged(before: &RgbImage, after: &RgbImage, masks: &[&GrayImage]) {
    for (x, y, p) in after.enumerate_pixels() {
        if masks.iter().all(|m| m.get_pixel(x, y)[0] == 0) {
            assert_eq!(p, before.get_pixel(x, y), "pixel ({x}, {y}) outside every region changed");
        }
    }
}

#[test]
fn two_regions_each_draw_their_own_prompt_in_one_run() {
    let e = Engine::load(embedded(), DeviceChoice::Cpu).unwrap();
    let (img, a, b) = (base(), cell_mask(0), cell_mask(8));
    let job = Job::Inpaint {
        regions: vec![Region::new(a.clone(), RED), Region::new(b.clone(), BLUE)],
        image: img.clone(),
        codes: None,
        grow: 0,
        cover: Default::default(),
        feather: 0.0,
        context: unmask::crop::Context::Whole,
        content: None,
        settings: settings(&e),
    };
    // progress counts over both regions: the step total is both crops' steps
    let mut totals = Vec::new();
    let mut regions_seen = Vec::new();
    struct Watch<'a>(&'a mut Vec<usize>, &'a mut Vec<usize>);
    impl unmask::sampler::Control for Watch<'_> {
        fn image_step(&mut self, s: &unmask::sampler::ImageStep<'_>) {
            self.0.push(s.total);
        }
    }
    impl tasks::Progress for Watch<'_> {
        fn image_preview(&mut self, _: &Engine, st: &tasks::PreviewState<'_>) {
            if let Some(p) = st.placement {
                self.1.push(p.region);
            }
        }
    }
    let out = tasks::run(&e, &job, &mut Watch(&mut totals, &mut regions_seen)).unwrap();
    let Output::Image { image: after, parameters, work, .. } = out else { panic!("an image") };
    let steps = settings(&e).steps;
    assert!(totals.iter().all(|&t| t == 2 * steps), "progress counts both regions' steps: {totals:?}");
    assert_eq!(regions_seen.first(), Some(&0));
    assert_eq!(regions_seen.last(), Some(&1), "previews follow the region being worked on");
    assert_eq!(work.region_of, vec![0, 1]);
    assert_eq!(dominant(&after, &a), Some(Color::Red), "region 1 draws its red circle");
    assert_eq!(dominant(&after, &b), Some(Color::Blue), "region 2 draws its blue square");
    outside_all_unchanged(&img, &after, &[&a, &b]);
    assert!(parameters.starts_with(&format!("Region 1: {RED}\nRegion 2: {BLUE}\n")), "{parameters}");
    assert!(parameters.contains("Crop 2 (region 2)"), "{parameters}");
}

#[test]
fn a_region_that_selects_nothing_or_has_another_size_is_named_before_any_work() {
    let e = Engine::load(embedded(), DeviceChoice::Cpu).unwrap();
    let job = |regions: Vec<Region>| Job::Inpaint {
        regions,
        image: base(),
        codes: None,
        grow: 0,
        cover: Default::default(),
        feather: 0.0,
        context: Default::default(),
        content: None,
        settings: settings(&e),
    };
    let err = |j: Job| tasks::run(&e, &j, &mut unmask::sampler::Quiet).unwrap_err().to_string();
    let m = err(job(vec![Region::new(cell_mask(0), RED), Region::new(GrayImage::new(48, 48), "a hat")]));
    assert!(m.contains("region 2 (\"a hat\")") && m.contains("mask is empty"), "{m}");
    // painted, but under half of every cell with --cover half
    let speck = GrayImage::from_fn(48, 48, |x, y| Luma([if x < 3 && y < 3 { 255 } else { 0 }]));
    let mut j = job(vec![Region::new(cell_mask(0), RED), Region::new(speck, "a hat")]);
    if let Job::Inpaint { cover, .. } = &mut j {
        *cover = tasks::Cover::Half;
    }
    let m = err(j);
    assert!(m.contains("region 2 (\"a hat\")") && m.contains("selects no token cell"), "{m}");
    let m = err(job(vec![Region::new(cell_mask(0), RED), Region::new(GrayImage::new(40, 48), "a hat")]));
    assert!(m.contains("region 2") && m.contains("40x48"), "{m}");
    let m = err(job(Vec::new()));
    assert!(m.contains("at least one region"), "{m}");
    let many = (0..tasks::MAX_REGIONS + 1).map(|_| Region::new(cell_mask(0), RED)).collect();
    assert!(err(job(many)).contains("the limit is"));
}

fn unmask(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_unmask")).args(args).env_remove("UNMASK_MODEL").output().expect("run unmask")
}

#[test]
fn cli_runs_two_region_pairs_and_a_regions_file_alike() {
    let dir = common::scratch("regions-cli");
    let (input, a, b) = (dir.join("in.png"), dir.join("a.png"), dir.join("b.png"));
    base().save(&input).unwrap();
    cell_mask(0).save(&a).unwrap();
    cell_mask(8).save(&b).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (out1, out2) = (dir.join("pairs.png"), dir.join("file.png"));
    let o = unmask(&["inpaint", "--image", &s(&input), "--region", &s(&a), RED, "--region", &s(&b), BLUE, "--context", "whole", "--feather", "0", "--out", &s(&out1)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("region 1 \"") && err.contains("region 2 \""), "each region's crops are announced: {err}");
    let after = image::open(&out1).unwrap().to_rgb8();
    assert_eq!(dominant(&after, &cell_mask(0)), Some(Color::Red));
    assert_eq!(dominant(&after, &cell_mask(8)), Some(Color::Blue));
    outside_all_unchanged(&base(), &after, &[&cell_mask(0), &cell_mask(8)]);
    // the same job from a regions file (mask paths beside it) gives the same pixels
    std::fs::write(dir.join("regions.json"), format!(r#"[{{"mask": "a.png", "prompt": "{RED}"}}, {{"mask": "b.png", "prompt": "{BLUE}"}}]"#)).unwrap();
    let o = unmask(&["inpaint", "--image", &s(&input), "--regions", &s(&dir.join("regions.json")), "--context", "whole", "--feather", "0", "--out", &s(&out2)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(image::open(&out2).unwrap().to_rgb8(), after);
    // a mask of another size names its flag; nothing is written
    let small = dir.join("small.png");
    GrayImage::new(40, 40).save(&small).unwrap();
    let out3 = dir.join("never.png");
    let o = unmask(&["inpaint", "--image", &s(&input), "--region", &s(&a), RED, "--region", &s(&small), BLUE, "--out", &s(&out3)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("--region") && err.contains("2nd") && err.contains("40x40"), "{err}");
    assert!(!out3.exists());
    // --region and --mask do not mix
    let o = unmask(&["inpaint", "--image", &s(&input), "--mask", &s(&a), "--prompt", RED, "--region", &s(&b), BLUE, "--out", &s(&out3)]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
}
