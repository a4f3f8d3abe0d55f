//! What a job costs over `unmask serve` beyond the same job in process, on
//! the fixture model: a generate (6 x 10 cells) and an inpaint of a 640 x 480
//! photo, previews off and every step. The server runs in this process on
//! 127.0.0.1; the in-process side is the engine's `Worker` (what the Studio
//! runs locally). Prints ms per job, the overhead per job and per step, and
//! the ratio.
//!
//! `cargo bench --bench remote`

use std::time::Duration;

use unmask::remote::{Client, ServeConfig, Server};
use unmask::sampler::ImageSettings;
use unmask::tasks::{Job, Output};
use unmask::worker::{Event, PreviewOptions, Worker};

const TOKEN: &str = "bench-token-0123456789abcdef";

fn local(w: &mut Worker, job: &Job, preview: PreviewOptions) {
    let id = w.submit(job.clone(), preview);
    loop {
        match w.events().recv_timeout(Duration::from_secs(120)).expect("event") {
            Event::Finished { id: i, .. } if i == id => return,
            Event::Failed { message, .. } => panic!("{message}"),
            _ => {}
        }
    }
}

fn remote(c: &Client, job: &Job, preview: PreviewOptions) {
    let out = c.run(job, preview, &mut |_| true).expect("remote job");
    assert!(matches!(out, Output::Image { .. }));
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/tiny-dimoo/model");
    if !fixture.is_dir() {
        println!("fixture model not found at {}: skipped", fixture.display());
        return;
    }
    let mut w = Worker::spawn();
    w.load(&fixture, unmask::DeviceChoice::Cpu);
    let mut cfg = ServeConfig::new(&fixture, "127.0.0.1:0".parse().unwrap(), TOKEN);
    cfg.device = unmask::DeviceChoice::Cpu;
    let server = Server::start(cfg).expect("server");
    let client = Client::new(&format!("http://{}", server.addr), TOKEN).unwrap();

    let steps = 16;
    let settings = ImageSettings { steps, cfg: 4.0, temperature: 0.0, ..Default::default() };
    let photo = image::RgbImage::from_fn(640, 480, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8]));
    let mut mask = image::GrayImage::new(640, 480);
    for y in 200..216 {
        for x in 300..316 {
            mask.put_pixel(x, y, image::Luma([255]));
        }
    }
    let jobs = [
        ("generate 40x24", Job::Generate { prompt: "a red circle on the left".into(), width: 40, height: 24, settings: settings.clone() }),
        (
            "inpaint 640x480 photo",
            Job::Inpaint {
                regions: vec![unmask::tasks::Region::new(mask, "a blue square")],
                image: photo,
                codes: None,
                grow: 0,
                cover: Default::default(),
                feather: 2.0,
                context: unmask::crop::Context::Margin(8),
                content: None,
                settings,
            },
        ),
    ];
    let previews = [
        ("previews off", PreviewOptions { every: None, ..Default::default() }),
        // the server's floor: both sides decode the same previews
        ("a preview every 50 ms", PreviewOptions { every: Some(Duration::from_millis(50)), ..Default::default() }),
    ];
    for (what, job) in &jobs {
        for (pw, p) in &previews {
            // alternated, so both sides see the same machine state
            let (mut a, mut b) = (Vec::new(), Vec::new());
            local(&mut w, job, *p);
            remote(&client, job, *p);
            for _ in 0..11 {
                let t = std::time::Instant::now();
                local(&mut w, job, *p);
                a.push(t.elapsed().as_secs_f64() * 1e3);
                let t = std::time::Instant::now();
                remote(&client, job, *p);
                b.push(t.elapsed().as_secs_f64() * 1e3);
            }
            let (here, there) = (median(a), median(b));
            println!(
                "{what}, {steps} steps, {pw}: in process {here:.1} ms, through the server {there:.1} ms; overhead {:.1} ms a job, {:.2} ms a step; ratio x{:.2}",
                there - here,
                (there - here) / steps as f64,
                there / here
            );
        }
    }
}
