//! Text-to-image timings with and without the ML-Cache: on the fixture model
//! (its t2i case), and at the mid-size config for a 32 x 32 grid, 16 steps,
//! guidance 4. Prints milliseconds and the cache's speed-up as a ratio.
//!
//! `cargo bench --bench generate`

mod common;

use unmask::bundle::SpecialTokens;
use unmask::model::Llada;
use unmask::sampler::{sample_image, sample_image_with, CacheSettings, ImageLayout, ImageSettings, Prompter, Quiet, SamplerOptions};
use unmask::{DeviceChoice, Engine};

fn time(llada: &Llada, special: &SpecialTokens, layout: &ImageLayout, s: &ImageSettings, reps: usize) -> f64 {
    common::median_ms(reps, || {
        sample_image(llada, special, layout, s, &mut Quiet).expect("sample");
    })
}

fn compare(what: &str, llada: &Llada, special: &SpecialTokens, layout: &ImageLayout, base: ImageSettings, cache: CacheSettings, reps: usize) {
    let plain = time(llada, special, layout, &base, reps);
    let cached = time(llada, special, layout, &ImageSettings { cache: Some(cache), ..base.clone() }, reps);
    println!(
        "{what}: {} steps, cfg {}: no cache {plain:.1} ms, ML-Cache {:.2}/{:.2}/{} {cached:.1} ms, speed-up x{:.2}",
        base.steps, base.cfg, cache.ratio, cache.warmup_ratio, cache.refresh_interval, plain / cached
    );
}

fn main() {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/tiny-dimoo/model");
    if fixture.is_dir() {
        let e = Engine::load(&fixture, DeviceChoice::Cpu).expect("fixture model");
        let p = Prompter::new(&e.tokenizer, e.special);
        let layout = p.text_to_image("a red circle on the left", 6, 10).expect("layout");
        let base = ImageSettings { steps: 10, cfg: 4.0, temperature: 0.0, ..Default::default() };
        let cache = CacheSettings { ratio: 0.7, warmup_ratio: 0.3, refresh_interval: 3 };
        compare("fixture t2i 6x10", &e.llada, &e.special, &layout, base, cache, 21);
    } else {
        println!("fixture model not found at {}: skipped", fixture.display());
    }

    let model = common::mid_model();
    let special = SpecialTokens {
        mask: 3, newline: 4, boi: 5, eoi: 6, uncondition: 7, answer_start: 8, answer_end: 9, eos: 1, bos: 0,
        answer_pad: 10, image_offset: 1024, codebook_size: 8192,
    };
    let prompt: Vec<u32> = (0..40).map(|i| 20 + i * 13 % 900).collect();
    let uncond: Vec<u32> = (0..28).map(|i| 20 + i * 7 % 900).collect();
    let layout = ImageLayout { cond: prompt, text_free: Some(uncond), image_free: None, height: 32, width: 32, cells: vec![None; 1024] };
    let base = ImageSettings { steps: 16, cfg: 4.0, temperature: 1.0, seed: 1, ..Default::default() };
    // `cargo bench --bench generate -- issue17`: only the comparison at the end
    let only_issue17 = std::env::args().any(|a| a == "issue17");
    if !only_issue17 {
        compare("mid-size 32x32", &model, &special, &layout, base.clone(), CacheSettings::default(), 1);
    }
    // greedy: the pick runs on the model's device (temperature > 0 picks on the host)
    let greedy = ImageSettings { temperature: 0.0, ..base.clone() };
    if !only_issue17 {
    let t_greedy = time(&model, &special, &layout, &greedy, 3);
    let t_host = time(&model, &special, &layout, &base, 3);
    println!("mid-size 32x32, 16 steps, cfg 4: greedy {t_greedy:.0} ms, temperature 1 {t_host:.0} ms, ratio x{:.2}", t_host / t_greedy);
    }

    // issue 17: the sampler before it (a forward per branch, greedy picks on
    // the host) vs now (one batched forward a step, picks on the device);
    // same codes, CPU time as a ratio, device-to-host bytes per step
    let before = SamplerOptions { batch_branches: false, host_pick: true };
    let now = SamplerOptions::default();
    // (8 steps, one timed run after a warm-up: each run is tens of seconds on 2 cores)
    for cache in [None, Some(CacheSettings::default())] {
        let s = ImageSettings { steps: 8, cache, ..greedy.clone() };
        let run = |o: SamplerOptions| {
            unmask::profile::start();
            let t0 = std::time::Instant::now();
            let g = sample_image_with(&model, &special, &layout, &s, o, &mut Quiet).expect("sample");
            (g, unmask::profile::finish().expect("profile"), t0.elapsed().as_secs_f64() * 1e3)
        };
        run(now); // warm-up
        let ((a, pa, t_before), (b, pb, t_now)) = (run(before), run(now));
        assert_eq!(a.codes, b.codes, "the same codes both ways");
        println!(
            "mid-size 32x32, 8 steps, cfg 4, greedy, {}: before {t_before:.0} ms ({} forwards, {:.0} B/step to host), now {t_now:.0} ms ({} forwards, {:.0} B/step), speed-up x{:.2}",
            if cache.is_some() { "ML-Cache" } else { "no cache" },
            pa.forwards, pa.device_to_host_bytes_per_step, pb.forwards, pb.device_to_host_bytes_per_step, t_before / t_now
        );
    }
}
