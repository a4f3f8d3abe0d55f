//! The background worker: streaming, cancellation, failures, seeds, compositing.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use unmask::sampler::ImageSettings;
use unmask::crop::Context;
use unmask::tasks::{Job, Output};
use unmask::worker::{Event, PreviewOptions, Worker};
use unmask::DeviceChoice;

const WAIT: Duration = Duration::from_secs(60);

fn loaded(worker: &Worker) {
    worker.load(common::fixture_model(), DeviceChoice::Cpu);
    loop {
        match worker.events().recv_timeout(WAIT).expect("worker event") {
            Event::Loaded(info) => {
                assert_eq!(info.vocab, 398);
                return;
            }
            Event::LoadFailed { message, .. } => panic!("load failed: {message}"),
            _ => {}
        }
    }
}

/// Events of job `id` up to and including its final one.
fn events_of(worker: &Worker, id: u64) -> Vec<Event> {
    let mut out = Vec::new();
    loop {
        let e = worker.events().recv_timeout(WAIT).expect("worker event");
        if e.job() != Some(id) {
            continue;
        }
        let done = matches!(e, Event::Finished { .. } | Event::Failed { .. } | Event::Cancelled { .. });
        out.push(e);
        if done {
            return out;
        }
    }
}

fn t2i(steps: usize, temperature: f32, seed: u64) -> Job {
    Job::Generate {
        prompt: "a red circle on the left".into(),
        width: 40,
        height: 24,
        settings: ImageSettings { steps, cfg: 4.0, cfg_img: 0.0, temperature, seed, cache: None },
    }
}

fn codes(events: &[Event]) -> Vec<u32> {
    match events.last() {
        Some(Event::Finished { output, .. }) => match output.as_ref() {
            Output::Image { codes, .. } => codes.as_ref().expect("codes of a generated image").codes.clone(),
            _ => panic!("image expected"),
        },
        other => panic!("finished expected, got {other:?}"),
    }
}

#[test]
fn streams_one_progress_event_per_step_with_previews() {
    let mut w = Worker::spawn();
    loaded(&w);
    let id = w.submit(t2i(7, 0.0, 0), PreviewOptions { every: Some(Duration::ZERO), ..Default::default() });
    let ev = events_of(&w, id);
    assert!(matches!(ev[0], Event::Started { kind: "generate", .. }));
    let progress: Vec<(usize, usize, bool)> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Progress { step, unmasked, preview, .. } => Some((*step, *unmasked, preview.is_some())),
            _ => None,
        })
        .collect();
    let cases = common::cases_json();
    let want: Vec<usize> = cases["t2i"]["unmasked_after_step"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    assert_eq!(progress.iter().map(|p| p.1).collect::<Vec<_>>(), want);
    assert_eq!(progress.iter().map(|p| p.0).collect::<Vec<_>>(), (0..7).collect::<Vec<_>>());
    assert!(progress.iter().all(|p| p.2), "a preview after every step when unthrottled");
    let want_codes: Vec<u32> = cases["t2i"]["codes"].as_array().unwrap().iter().flat_map(|r| r.as_array().unwrap().iter().map(|c| c.as_u64().unwrap() as u32)).collect();
    assert_eq!(codes(&ev), want_codes);
}

#[test]
fn cancel_after_step_k_stops_within_one_step() {
    // The notify hook runs on the worker thread right after each event, so
    // cancelling there lands exactly between step k and step k+1.
    let k = 3usize;
    let seen = Arc::new(AtomicUsize::new(0));
    let slot: Arc<Mutex<Option<unmask::worker::Canceller>>> = Arc::new(Mutex::new(None));
    let (s2, slot2) = (seen.clone(), slot.clone());
    let mut w = Worker::spawn_with_notify(Arc::new(move || {
        // events: Loading, Loaded, Started, Progress(0..)
        let n = s2.fetch_add(1, Ordering::SeqCst) + 1;
        if n == 3 + k + 1 {
            if let Some(c) = slot2.lock().unwrap().as_ref() {
                c.cancel(1);
            }
        }
    }));
    *slot.lock().unwrap() = Some(w.canceller());
    loaded(&w);
    let id = w.submit(t2i(50, 0.0, 0), PreviewOptions { every: None, ..Default::default() });
    assert_eq!(id, 1);
    let ev = events_of(&w, id);
    let steps = ev.iter().filter(|e| matches!(e, Event::Progress { .. })).count();
    assert_eq!(steps, k + 1, "no step after the one in flight");
    assert!(matches!(ev.last(), Some(Event::Cancelled { .. })));
    // and the worker serves the next job
    let next = w.submit(t2i(3, 0.0, 0), PreviewOptions::default());
    assert!(matches!(events_of(&w, next).last(), Some(Event::Finished { .. })));
}

#[test]
fn a_failing_job_leaves_the_worker_serving() {
    let mut w = Worker::spawn();
    let early = w.submit(t2i(3, 0.0, 0), PreviewOptions::default());
    match events_of(&w, early).last() {
        Some(Event::Failed { message, .. }) => assert!(message.contains("no model loaded"), "{message}"),
        other => panic!("failure expected, got {other:?}"),
    }
    loaded(&w);
    let image = unmask::image_io::open_rgb(&common::case("input.png")).unwrap();
    let bad = Job::Inpaint {
        regions: vec![unmask::tasks::Region::new(image::GrayImage::new(8, 8), "a red circle")],
        image,
        codes: None,
        grow: 0,
        cover: Default::default(),
        feather: 0.0,
        context: Context::Auto,
        content: None,
        settings: ImageSettings::default(),
    };
    let id = w.submit(bad, PreviewOptions::default());
    match events_of(&w, id).last() {
        Some(Event::Failed { message, .. }) => assert!(message.contains("mask is 8x8"), "{message}"),
        other => panic!("failure expected, got {other:?}"),
    }
    // a bad model folder keeps the loaded model
    w.load("/nonexistent/model", DeviceChoice::Cpu);
    let id = w.submit(t2i(3, 0.0, 0), PreviewOptions::default());
    assert!(matches!(events_of(&w, id).last(), Some(Event::Finished { .. })));
}

#[test]
fn seeds_make_sampling_repeatable() {
    let mut w = Worker::spawn();
    loaded(&w);
    let mut run = |seed| {
        let id = w.submit(t2i(6, 1.0, seed), PreviewOptions { every: None, ..Default::default() });
        codes(&events_of(&w, id))
    };
    let a = run(11);
    let b = run(11);
    let c = run(12);
    assert_eq!(a, b, "same seed, same codes");
    assert_ne!(a, c, "another seed, other codes");
}

#[test]
fn compositing_keeps_every_pixel_beyond_the_band() {
    let mut w = Worker::spawn();
    loaded(&w);
    let image = unmask::image_io::open_rgb(&common::case("input.png")).unwrap();
    // a round blob, not aligned to cells
    let mask = image::GrayImage::from_fn(40, 24, |x, y| {
        let (dx, dy) = (x as f32 - 20.0, y as f32 - 12.0);
        image::Luma([if dx * dx + dy * dy < 49.0 { 255 } else { 0 }])
    });
    let job = Job::Inpaint {
        regions: vec![unmask::tasks::Region::new(mask.clone(), "a red circle on the left")],
        image: image.clone(),
        codes: None,
        grow: 1,
        cover: Default::default(),
        feather: 3.0,
        // the cells of the whole image at scale 1, as the test reads them
        context: Context::Whole,
        content: None,
        settings: ImageSettings { steps: 4, temperature: 0.0, ..Default::default() },
    };
    let id = w.submit(job, PreviewOptions::default());
    let ev = events_of(&w, id);
    let Some(Event::Finished { output, .. }) = ev.last() else { panic!("finished expected") };
    let Output::Image { image: out, .. } = output.as_ref() else { panic!() };
    // the painted blob is the changed area: the grown cells around it ran, but only painted pixels change
    let mut changed = 0;
    for (x, y, p) in out.enumerate_pixels() {
        if mask.get_pixel(x, y)[0] == 0 {
            assert_eq!(p, image.get_pixel(x, y), "pixel {x},{y} outside the painted blob changed");
        } else if p != image.get_pixel(x, y) {
            changed += 1;
        }
    }
    assert!(changed > 0, "the region was regenerated");
}

#[test]
fn dropping_the_worker_stops_running_and_queued_jobs() {
    let mut w = Worker::spawn();
    loaded(&w);
    // a 40 x 24 grid for 1000 steps: far longer than the 5 s allowed below
    let big = || Job::Generate {
        prompt: "a red circle on the left".into(),
        width: 160,
        height: 96,
        settings: ImageSettings { steps: 1000, cfg: 4.0, temperature: 0.0, ..Default::default() },
    };
    let id = w.submit(big(), PreviewOptions { every: None, ..Default::default() });
    w.submit(big(), PreviewOptions { every: None, ..Default::default() });
    // wait until the first job is under way
    loop {
        if let Event::Progress { id: j, .. } = w.events().recv_timeout(WAIT).expect("event") {
            if j == id {
                break;
            }
        }
    }
    let t = std::time::Instant::now();
    drop(w);
    assert!(t.elapsed() < Duration::from_secs(5), "drop took {:?}", t.elapsed());
}
