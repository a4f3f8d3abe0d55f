//! Retouching photos larger than the model's working area (issue 15): context
//! crops, paste back at full resolution, outpaint, token reuse. Images are made
//! in the test; the fixture model runs with a small working area so each crop
//! is a few hundred tokens.

mod common;

use image::{GrayImage, RgbImage};
use unmask::crop::{Context, WorkArea};
use unmask::model::CodeGrid;
use unmask::sampler::{ImageSettings, Quiet};
use unmask::tasks::{self, inpaint, Job, Output};
use unmask::{DeviceChoice, Engine};

fn engine(work: WorkArea) -> Engine {
    let mut e = Engine::load(common::fixture_model(), DeviceChoice::Cpu).expect("load fixture bundle");
    e.info.work_area = work;
    e
}

fn settings() -> ImageSettings {
    ImageSettings { steps: 4, cfg: 4.0, cfg_img: 0.0, temperature: 0.0, seed: 0, cache: None }
}

/// A photo-like image: smooth gradients plus a fine texture, so resampling
/// anywhere would change pixels.
fn photo(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let t = ((x * 7 + y * 13) % 17) as u8;
        image::Rgb([((x * 255) / w) as u8 ^ t, ((y * 255) / h) as u8, (((x + y) * 3) % 256) as u8])
    })
}

fn disc(mask: &mut GrayImage, cx: u32, cy: u32, r: u32) {
    for y in cy - r..cy + r {
        for x in cx - r..cx + r {
            let (dx, dy) = (x as i64 - cx as i64, y as i64 - cy as i64);
            if dx * dx + dy * dy < (r * r) as i64 {
                mask.put_pixel(x, y, image::Luma([255]));
            }
        }
    }
}

fn inpaint_job(image: RgbImage, mask: GrayImage, codes: Option<CodeGrid>, context: Context, feather: f32) -> Job {
    Job::Inpaint { regions: vec![unmask::tasks::Region::new(mask, "a red circle on the left")], image, codes, grow: 0, cover: Default::default(), feather, context, content: None, settings: settings() }
}

fn run(e: &Engine, job: &Job) -> (RgbImage, Option<CodeGrid>, tasks::Work, String) {
    match tasks::run(e, job, &mut Quiet).expect("job runs") {
        Output::Image { image, codes, work, parameters } => (image, codes, work, parameters),
        _ => panic!("image expected"),
    }
}

#[test]
fn two_far_islands_on_a_large_photo_change_only_their_painted_pixels() {
    let e = engine(WorkArea { area: 64 * 64, max_upscale: 4.0 });
    let (w, h) = (3000, 2000);
    let input = photo(w, h);
    let mut mask = GrayImage::new(w, h);
    disc(&mut mask, 300, 300, 40);
    disc(&mut mask, 2600, 1700, 40);
    let job = inpaint_job(input.clone(), mask.clone(), None, Context::Auto, 6.0);
    // progress counts across both crops: 2 x 4 steps, in order
    let steps = std::cell::RefCell::new(Vec::new());
    let mut cb = unmask::sampler::Callbacks::new().on_image(|s| steps.borrow_mut().push((s.step, s.total)));
    tasks::run(&e, &job, &mut cb).expect("job runs");
    drop(cb);
    let steps = steps.into_inner();
    assert_eq!(steps, (0..8).map(|i| (i, 8)).collect::<Vec<_>>(), "one count over both crops");
    let (out, codes, work, params) = run(&e, &job);
    assert_eq!(out.dimensions(), (w, h));
    assert_eq!(work.crops.len(), 2, "one crop per far island: {:?}", work.crops);
    assert!(codes.is_none(), "scaled crops leave no codes at the photo's scale");
    assert!(params.contains("Crop 2:") && params.contains("Working size: 64x64"), "{params}");
    let mut changed = 0usize;
    // the painted area is the changed area: the cells around each disc ran,
    // but a pixel outside the painted discs keeps the input's value exactly
    for (x, y, p) in out.enumerate_pixels() {
        let orig = input.get_pixel(x, y);
        if mask.get_pixel(x, y)[0] == 0 {
            assert_eq!(p, orig, "pixel {x},{y} outside the painted area changed");
        } else if p != orig {
            changed += 1;
        }
    }
    assert!(changed > 1000, "both regions were regenerated ({changed} pixels changed)");
    // everything outside the crops is untouched, and the photo's corners in particular
    assert_eq!(out.get_pixel(1500, 1000), input.get_pixel(1500, 1000));
}

#[test]
fn the_whole_image_context_matches_the_golden_inpaint_case() {
    // the release's working area: the 40 x 24 fixture fits at scale 1
    let e = engine(WorkArea::RELEASE);
    let case = &common::cases_json()["inpaint"];
    let image = unmask::image_io::open_rgb(&common::case("input.png")).unwrap();
    let mask = unmask::image_io::open(&common::case("mask.png")).unwrap().to_luma8();
    let mut job = inpaint_job(image, mask, None, Context::Whole, 0.0);
    if let Job::Inpaint { settings, regions, .. } = &mut job {
        settings.steps = case["steps"].as_u64().unwrap() as usize;
        regions[0].prompt = case["prompt"].as_str().unwrap().into();
    }
    let (_, codes, work, _) = run(&e, &job);
    assert_eq!(work.crops.len(), 1);
    assert!(work.crops[0].native());
    let want: Vec<u32> = case["codes"].as_array().unwrap().iter().flat_map(|r| r.as_array().unwrap().iter().map(|c| c.as_u64().unwrap() as u32)).collect();
    assert_eq!(codes.expect("codes at scale 1").codes, want);
}

#[test]
fn outpaint_keeps_the_input_and_grows_the_canvas() {
    let e = engine(WorkArea { area: 64 * 64, max_upscale: 4.0 });
    let input = photo(120, 80);
    let (canvas, mask, content) = inpaint::extend_canvas(&input, 30, 50, 0, 20).unwrap();
    assert_eq!(canvas.dimensions(), (200, 100));
    let job = Job::Inpaint {
        regions: vec![unmask::tasks::Region::new(mask, "a red circle")],
        image: canvas,
        codes: None,
        grow: 0,
        cover: Default::default(),
        feather: 0.0,
        context: Context::Auto,
        content: Some(content),
        settings: settings(),
    };
    let (out, _, work, _) = run(&e, &job);
    assert_eq!(out.dimensions(), (200, 100));
    // every border pixel was painted by the model (none keeps the edge fill)...
    let mut border_kept = 0;
    for (x, y, p) in out.enumerate_pixels() {
        let inside = x >= 30 && x < 150 && y < 80;
        if inside {
            // ...and every input pixel is kept exactly: the border is the painted area
            assert_eq!(p, input.get_pixel(x - 30, y), "input pixel {},{} changed", x - 30, y);
        } else {
            let fill = input.get_pixel((x.saturating_sub(30)).min(119), y.min(79));
            border_kept += (p == fill) as usize;
        }
    }
    let border = 200 * 100 - 120 * 80;
    assert!(border_kept * 20 < border, "{border_kept} of {border} border pixels still hold the edge fill");
    assert!(!work.crops.is_empty());
}

#[test]
fn native_crops_reuse_the_images_own_codes() {
    let e = engine(WorkArea { area: 64 * 64, max_upscale: 4.0 });
    // a model-made 160 x 96 image (40 x 24 cells)
    let gen = Job::Generate { prompt: "a red circle on the left".into(), width: 160, height: 96, settings: settings() };
    let (_, codes, _, _) = run(&e, &gen);
    let codes = codes.expect("generated codes");
    let mut mask = GrayImage::new(160, 96);
    disc(&mut mask, 40, 40, 6);
    // pixels that are NOT the image: codes that came from encoding them would differ
    let garbage = RgbImage::from_fn(160, 96, |x, y| image::Rgb([(x * 37 % 256) as u8, (y * 91 % 256) as u8, 7]));
    let (out, out_codes, work, _) = run(&e, &inpaint_job(garbage.clone(), mask.clone(), Some(codes.clone()), Context::Auto, 0.0));
    assert_eq!(work.crops.len(), 1);
    let c = work.crops[0];
    assert!(c.native() && c.source.w < 160, "a cell-aligned crop at scale 1: {c:?}");
    let out_codes = out_codes.expect("native crops keep codes for the whole image");
    let (_, gw, cells) = inpaint::crop_cells(&mask, &c, 4, 0, Default::default(), None).unwrap();
    let mut kept = 0;
    for (i, (a, b)) in codes.codes.iter().zip(&out_codes.codes).enumerate() {
        let (r, col) = ((i / 40) as u32, (i % 40) as u32);
        let in_crop = col * 4 >= c.source.x && col * 4 < c.source.x1() && r * 4 >= c.source.y && r * 4 < c.source.y1();
        let regenerated = in_crop && cells[((r * 4 - c.source.y) / 4) as usize * gw + ((col * 4 - c.source.x) / 4) as usize];
        if !regenerated {
            assert_eq!(a, b, "kept cell {r},{col} keeps the model's own code");
            kept += 1;
        }
    }
    assert!(kept > 900);
    // outside the crop the output is the input's pixels (garbage here, by design)
    assert_eq!(out.get_pixel(150, 90), garbage.get_pixel(150, 90));
}

#[test]
fn a_huge_mask_island_count_is_merged_into_a_bounded_number_of_runs() {
    let mut mask = GrayImage::new(4000, 3000);
    for i in 0..40 {
        disc(&mut mask, 100 + (i % 8) * 480, 150 + (i / 8) * 600, 20);
    }
    let crops = unmask::crop::plan(&mask, 16, Context::Auto, WorkArea::RELEASE, false).unwrap();
    assert!(!crops.is_empty() && crops.len() <= unmask::crop::MAX_CROPS, "{}", crops.len());
}

/// The tiny fixture's VQ factor is 4, so the release's 1024^2 working area
/// would be 65,536 cells a crop, four times what a layout may hold: the
/// planner's area is shrunk to the cell limit, so every crop runs.
#[test]
fn the_crop_plan_never_exceeds_the_models_cell_limit() {
    let e = engine(WorkArea::RELEASE);
    let f = e.vq.factor();
    let s = settings();
    let work = tasks::budget::fitted_work_area(&e, &s);
    assert!(work.area / (f * f) <= unmask::sampler::layout::MAX_CELLS, "{work:?}");
    let img = photo(2400, 1600);
    let mut m = GrayImage::new(2400, 1600);
    disc(&mut m, 1200, 800, 500);
    for context in [Context::Auto, Context::Whole, Context::Margin(300)] {
        for c in inpaint::plan(&e, &img, &m, None, context, &s).unwrap() {
            let cells = (c.work_w as usize / f) * (c.work_h as usize / f);
            assert!(cells <= unmask::sampler::layout::MAX_CELLS, "{context}: {c:?}");
        }
    }
}
